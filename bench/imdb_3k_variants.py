"""Why the most uncertain half of 3,000 IMDB reviews did worse than chance.

Runs config/imdb-3k-fasttext.yaml four ways, each as its own results/<experiment>, and
prints each results table and who is in the subsets (bench/explain_text_selection.py):

- imdb3k_unbal: proxies and target 5 epochs at 0.5, no class balance (config/imdb.yaml's
  fastText setting, which gave 52.75 % against random's 35.80 % at 0.5);
- imdb3k_bal: the same with class-balanced subsets;
- imdb3k_bal_long: the target trained for 25 epochs, the proxies still for 5;
- imdb3k_bal_long_both: proxies and target for 25 epochs (the config itself);
- imdb3k_keep: the config with every keep policy (selection.keep: hardest, easiest, and
  the middle band that drops the hardest 10 %) and both entropy and EL2N, sharing its
  proxies.

About 3 minutes a variant on 2 cores; the variants' configs go to results/bench/imdb3k/.
Run from the repository root: .venv/bin/python bench/imdb_3k_variants.py
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
from pathlib import Path

import yaml

BASE = Path("config/imdb-3k-fasttext.yaml")
SHORT = [{"epochs": 5, "lr": 0.5}]


def variants(base: dict) -> dict[str, dict]:
    def variant(balanced: bool, proxy_schedule: list | None, target_schedule: list | None, keep=None, metrics=None):
        config = copy.deepcopy(base)
        config["selection"]["class_balanced"] = balanced
        if keep is not None:
            config["selection"]["keep"] = keep
        if metrics is not None:
            config["selection"]["metrics"] = metrics
        for role, schedule in (("proxies", proxy_schedule), ("targets", target_schedule)):
            if schedule is not None:
                config[role]["fasttext"]["training"]["lr_schedule"] = copy.deepcopy(schedule)
        return config

    return {
        "imdb3k_unbal": variant(False, SHORT, SHORT),
        "imdb3k_bal": variant(True, SHORT, SHORT),
        "imdb3k_bal_long": variant(True, SHORT, None),
        "imdb3k_bal_long_both": variant(True, None, None),
        "imdb3k_keep": variant(
            True, None, None, keep=["hardest", "easiest", {"middle": 0.1}], metrics=["entropy", "el2n"]
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="run only these variants")
    args = parser.parse_args()
    base = yaml.safe_load(BASE.read_text())
    folder = Path("results/bench/imdb3k")
    folder.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    chosen = variants(base)
    unknown = sorted(set(args.only or ()) - set(chosen))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {sorted(chosen)}")
    for experiment, config in chosen.items():
        if args.only and experiment not in args.only:
            continue
        config["experiment"] = experiment
        path = folder / f"{experiment}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        log = folder / f"{experiment}.log"
        with log.open("w") as out:
            command = [str(bin_dir / "snakemake"), "--cores", "all", "--resources", "gpu=1", "--configfile", str(path)]
            if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode:
                print(f"{experiment} failed: see {log}", file=sys.stderr)
                return 1
        print(f"== {experiment}")
        table = Path(f"results/{experiment}/report/results.md").read_text().splitlines()
        print("\n".join(line for line in table if line.startswith("| ") and "s (" not in line), flush=True)
        subprocess.run([sys.executable, "bench/explain_text_selection.py", f"results/{experiment}"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
