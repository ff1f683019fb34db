"""The GPU grid of ``bench/gpu.sh``: write its config, then print what it measured.

``config``: ``config/cifar10-gpu-fast.yaml`` (or the CIFAR-10 config ``--grid-config``
names, e.g. ``config/cifar10-cpu-grid.yaml``) with the data set's files under ``--data``
(absolute paths, since Snakemake runs in a work folder of its own), written to
``--config-out``. With ``--smoke`` the grid is shrunk to a seconds-long CPU check of the
same code path: the first ``--smoke-train`` training and ``--smoke-test`` test images
(copied to small .npz files), one epoch per run at batch 32, one seed of each model, fraction 0.5.

``report``: after the run, prints the results and subsets tables, the proxies' own test
error and time, the rank correlation of the orders and the jobs' wall time against their
training time, and copies the tables to ``--out``.

Run by ``bash bench/gpu.sh``; by hand:
    python bench/gpu_grid.py config --data ../shared/data/cifar10 --config-out /tmp/w/config.yaml
    python bench/gpu_grid.py report --workdir /tmp/w --config /tmp/w/config.yaml --out /tmp/svp-gpu
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "cifar10-gpu-fast.yaml"
SPLITS = {"train": ["train-0.npz", "train-1.npz"], "test": ["test.npz"]}


def check_data(folder: Path) -> None:
    missing = [name for name in [*SPLITS["train"], *SPLITS["test"], "classes.txt"] if not (folder / name).is_file()]
    if missing:
        raise SystemExit(
            f"CIFAR-10 data not found: {folder} lacks {', '.join(missing)}. Pass the folder of the npz copy "
            f"(train-0.npz, train-1.npz, test.npz, classes.txt; see ../shared/data/README.md) with --data or SVP_DATA."
        )


def write_config(
    data: Path, config_out: Path, smoke: bool, smoke_train: int, smoke_test: int, source: Path = CONFIG
) -> dict:
    config = yaml.safe_load(source.read_text())
    data = data.resolve()
    check_data(data)
    dataset = config["dataset"]
    dataset["train"] = [str(data / name) for name in SPLITS["train"]]
    dataset["test"] = [str(data / name) for name in SPLITS["test"]]
    dataset["classes"] = str(data / "classes.txt")
    if smoke:
        config = smoke_config(config, config_out.parent / "smoke-data", smoke_train, smoke_test)
    config_out.parent.mkdir(parents=True, exist_ok=True)
    config_out.write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def smoke_config(config: dict, folder: Path, n_train: int, n_test: int) -> dict:
    """The same grid, shrunk: a hundred images, one epoch, one seed of each model, fraction 0.5."""
    config = copy.deepcopy(config)
    folder.mkdir(parents=True, exist_ok=True)
    dataset = config["dataset"]
    for split, count in (("train", n_train), ("test", n_test)):
        with np.load(dataset[split][0]) as archive:
            x, y = archive["x"][:count], archive["y"][:count]
        np.savez(folder / f"{split}.npz", x=x, y=y)
        dataset[split] = [str(folder / f"{split}.npz")]
    config["experiment"] += "-smoke"
    for role in ("proxies", "targets"):
        for run in config[role].values():
            run["training"]["lr_schedule"] = [{"epochs": 1, "lr": run["training"]["lr_schedule"][0]["lr"]}]
            run["training"]["batch_size"] = 32
    for run in [*config["proxies"].values(), *config["targets"].values()]:
        run["seeds"] = run["seeds"][:1]
    config["selection"]["fractions"] = [0.5, 1.0]
    return config


def print_file(path: Path, title: str, max_lines: int | None = None) -> None:
    if not path.is_file():
        print(f"({title}: {path} was not written)")
        return
    lines = path.read_text().rstrip("\n").splitlines()
    print(f"--- {title} ({path.name})")
    print("\n".join(lines[:max_lines]))
    if max_lines is not None and len(lines) > max_lines:
        print(f"... {len(lines) - max_lines} more lines in {path}")


def report(workdir: Path, config_path: Path, out: Path, wall_seconds: float | None) -> None:
    config = yaml.safe_load(config_path.read_text())
    results = workdir / "results" / config["experiment"]
    report_dir = results / "report"
    print_file(report_dir / "results.md", "results")
    if not (report_dir / "results.md").is_file():
        print("--- target runs finished so far (test error, training seconds)")
        for metrics_path in sorted(results.glob("targets/*/*/*/seed*/metrics.json")):
            metrics = json.loads(metrics_path.read_text())
            run = metrics_path.parent.relative_to(results / "targets")
            print(f"{run}: {metrics['test_error']:.2f}%, {metrics['seconds']:.1f} s on {metrics['n_train']:,} examples")
    if (report_dir / "subsets.md").is_file():  # not asked for by the smoke check
        print_file(report_dir / "subsets.md", "subsets", max_lines=12)
    for matrix in sorted((report_dir / "correlation").glob("*.csv")):
        print_file(matrix, f"Pearson correlation of the example orders, {matrix.stem}")

    print("--- proxies (test error and training seconds of each run)")
    for metrics_path in sorted(results.glob("proxies/*/seed*/metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        print(
            f"{metrics_path.parent.parent.name} seed {metrics['seed']}: {metrics['model']}, {metrics['epochs']} epochs, "
            f"test error {metrics['test_error']:.2f}%, {metrics['seconds']:.1f} s training"
        )
    training = [json.loads(p.read_text())["seconds"] for p in results.glob("**/seed*/metrics.json")]
    jobs = list((results / "benchmarks").glob("**/*.tsv")) if (results / "benchmarks").is_dir() else []
    job_seconds = []
    for benchmark in jobs:
        rows = benchmark.read_text().splitlines()
        if len(rows) > 1:
            job_seconds.append(float(rows[1].split("\t")[0]))
    line = f"--- time: {len(training)} training runs, {sum(training):.0f} s of training in all"
    if job_seconds:
        line += f"; their {len(job_seconds)} benchmarked jobs (training and scoring) took {sum(job_seconds):.0f} s wall"
    if wall_seconds is not None:
        line += f"; the whole grid {wall_seconds:.0f} s end to end"
    print(line)

    out.mkdir(parents=True, exist_ok=True)
    for name, source in {
        "grid-summary.csv": results / "summary.csv",
        "grid-results.md": report_dir / "results.md",
        "grid-runs.csv": report_dir / "runs.csv",
    }.items():
        if source.is_file():
            shutil.copyfile(source, out / name)
    shutil.copyfile(config_path, out / "grid-config.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("config", help="write the grid's config")
    write.add_argument("--data", type=Path, required=True)
    write.add_argument("--config-out", type=Path, required=True)
    write.add_argument("--grid-config", type=Path, default=CONFIG, help="a config over the CIFAR-10 npz copy")
    write.add_argument("--smoke", action="store_true")
    write.add_argument("--smoke-train", type=int, default=128)
    write.add_argument("--smoke-test", type=int, default=64)
    show = commands.add_parser("report", help="print and copy what the grid measured")
    show.add_argument("--workdir", type=Path, required=True)
    show.add_argument("--config", type=Path, required=True)
    show.add_argument("--out", type=Path, required=True)
    show.add_argument("--wall-seconds", type=float, default=None)
    args = parser.parse_args()
    if args.command == "config":
        config = write_config(
            args.data, args.config_out, args.smoke, args.smoke_train, args.smoke_test, args.grid_config
        )
        targets = ", ".join(f"{name} ({run['model']}, seeds {run['seeds']})" for name, run in config["targets"].items())
        proxies = ", ".join(f"{name} ({run['model']}, seeds {run['seeds']})" for name, run in config["proxies"].items())
        print(f"grid {config['experiment']}: proxies {proxies}; targets {targets}; fractions {config['selection']['fractions']}")
    else:
        report(args.workdir, args.config, args.out, args.wall_seconds)


if __name__ == "__main__":
    sys.exit(main())
