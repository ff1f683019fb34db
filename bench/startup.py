"""Benchmark: start-up of each stage, and of Snakemake on a finished paper grid.

* Each ``svp`` stage's start-up (a fresh interpreter importing what the stage imports
  before it does any work), against ``python -c pass``, and whether it imports torch.
* A finished paper grid (``config/cifar10.yaml``) replayed to "Nothing to be done":
  in a temporary folder, every output is created empty and marked done with
  ``snakemake --touch``, then ``snakemake --cores 2 --resources gpu=1`` is timed;
  against ``python -c pass`` and against Snakemake's own floor, the replay of a trivial
  workflow with as many jobs. Also the plan (dry run) of the same grid with no outputs.
* Snakemake's own cost per job: a trivial workflow of as many jobs as the default run
  (each ``touch``es its output), run from scratch, less its replay, per job.

Run: .venv/bin/python bench/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, header, median, spread  # noqa: E402

from svp.report.summary import COLUMNS  # noqa: E402

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}

# What each `svp` command imports before it works (svp/cli.py imports lazily, per command).
STAGES = {
    "check-config (whole command)": None,
    "prepare": "import svp.cli, svp.config, svp.data",
    "train, score": "import svp.cli, svp.config, svp.training.gpus, svp.stages",
    "rank, select": "import svp.cli, svp.config, svp.selection.subsets",
    "summarize, show-summary": "import svp.cli, svp.config, svp.report.summary",
    "store-config": "import svp.cli, svp.config, svp.io",
    "report tables": "import svp.report.cli, svp.data, svp.report.tables",
    "report figures (summary, learning curves, error vs time, class composition)": "import svp.report.cli, svp.data, svp.report.figures",
    "report correlate": "import svp.report.cli, svp.data, svp.report.correlation",
    "report subsets": "import svp.report.cli, svp.data, svp.selection.diagnostics",
}
HEAVY = ("torch", "torchvision", "pandas", "pyarrow", "scipy", "matplotlib", "sklearn", "jsonschema")


def timed(command: list[str], cwd: Path | None = None, expect: str | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0 or (expect and expect not in result.stdout + result.stderr):
        raise RuntimeError(f"{' '.join(command)} failed or did not say {expect!r}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return seconds


def stage_command(code: str | None) -> list[str]:
    if code is None:
        return [sys.executable, "-m", "svp", "check-config", str(REPO / "config" / "config.yaml")]
    return [sys.executable, "-c", code]


def heavy_imports(code: str | None) -> list[str]:
    probe = (code or "from svp.cli import main; import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()): main(['check-config', 'config/config.yaml'])")
    probe += f"\nimport sys, json; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=ENV, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def in_turn(commands: dict[str, list[str]], repeats: int, **options) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for repeat in range(repeats):
        for name in commands if repeat % 2 == 0 else reversed(list(commands)):
            seconds[name].append(timed(commands[name], **options.get(name, {})))
    return seconds


def stage_startups(repeats: int) -> None:
    commands = {"pass": [sys.executable, "-c", "pass"], **{name: stage_command(code) for name, code in STAGES.items()}}
    seconds = in_turn(commands, repeats)
    base = median(seconds["pass"])
    print(f"\nStage start-up, fresh interpreter (median of {repeats}, in turn); baseline python -c pass: {spread(seconds['pass'])}")
    print("| stage | start-up | x python -c pass | heavy packages imported |")
    print("|---|---|---|---|")
    for name, code in STAGES.items():
        heavy = heavy_imports(code)
        print(f"| {name} | {median(seconds[name]):.2f} s | {median(seconds[name]) / base:.0f}x | {', '.join(heavy) or '-'} |")


def trivial_workflow(folder: Path, jobs: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "Snakefile").write_text(
        f'rule all:\n    input: expand("out/{{i}}.txt", i=range({jobs}))\n\n\n'
        'rule one:\n    output: "out/{i}.txt"\n    log: "logs/{i}.log"\n    shell: "touch {output} > {log} 2>&1"\n'
    )
    return folder


def finished_grid(folder: Path, config: str) -> int:
    """A copy of the workflow whose every output exists and is up to date; its job count."""
    for part in ("Snakefile", "workflow", "config"):
        source = REPO / part
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / part)
    listing = subprocess.run([*SNAKEMAKE, "--summary", "--cores", "1", "--configfile", config], cwd=folder, env=ENV,
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    outputs = [line.split("\t")[0] for line in listing.splitlines()[1:] if "\t" in line]
    for output in outputs:
        (folder / output).parent.mkdir(parents=True, exist_ok=True)
        (folder / output).touch()
        # The tables that a finished run prints at its end (onsuccess) need their header.
        if output.endswith("/summary.csv"):
            (folder / output).write_text(",".join(COLUMNS) + "\n")
        elif output.endswith("/report/subsets.csv"):
            (folder / output).write_text("subset,fraction\n")
    subprocess.run([*SNAKEMAKE, "--touch", "--cores", "1", "--configfile", config, "--quiet"], cwd=folder, env=ENV,
                   capture_output=True, check=True)  # fmt: skip
    plan = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1", "--configfile", config, "--forceall"], cwd=folder, env=ENV,
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    return int(plan.split("\ntotal")[1].split()[0])


def replay(repeats: int, config: str) -> None:
    with tempfile.TemporaryDirectory(prefix="svp-bench-startup-") as tmp:
        grid, empty = Path(tmp) / "grid", Path(tmp) / "empty"
        grid.mkdir()
        jobs = finished_grid(grid, config)
        shutil.copytree(grid, empty, ignore=shutil.ignore_patterns("results", ".snakemake"))
        floor = trivial_workflow(Path(tmp) / "trivial", jobs)
        subprocess.run([*SNAKEMAKE, "--cores", "2", "--quiet"], cwd=floor, env=ENV, capture_output=True, check=True)
        run = [*SNAKEMAKE, "--cores", "2", "--resources", "gpu=1", "--configfile", config]
        commands = {
            "pass": [sys.executable, "-c", "pass"],
            "replay": run,
            "trivial replay": [*SNAKEMAKE, "--cores", "2"],
            "plan": [*run, "--dry-run"],
            "slurm plugin": [sys.executable, "-c", "import snakemake_executor_plugin_slurm"],
        }
        options = {
            "replay": {"cwd": grid, "expect": "Nothing to be done"},
            "trivial replay": {"cwd": floor, "expect": "Nothing to be done"},
            "plan": {"cwd": empty},
        }
        seconds = in_turn(commands, repeats, **options)
    base = median(seconds["pass"])
    print(f"\nFinished paper grid ({config}, {jobs} jobs) replayed to 'Nothing to be done' (median of {repeats}, in turn):")
    print(f"  snakemake --cores 2 --resources gpu=1 --configfile {config}: {spread(seconds['replay'])}; goal under 2 s: "
          f"{'met' if median(seconds['replay']) < 2 else 'NOT met'}")  # fmt: skip
    print(f"  = {median(seconds['replay']) / base:.0f}x python -c pass ({spread(seconds['pass'])}), "
          f"{median(seconds['replay']) / median(seconds['trivial replay']):.2f}x Snakemake's floor: a trivial {jobs}-job workflow "
          f"replayed, {spread(seconds['trivial replay'])}")  # fmt: skip
    print(f"  plan of the same grid with no outputs (--dry-run): {spread(seconds['plan'])}")
    print(f"  of Snakemake's floor: importing the SLURM executor plugin, which every Snakemake start does (it imports "
          f"pandas): {median(seconds['slurm plugin']) - base:.2f} s more than python -c pass")  # fmt: skip


def per_job_overhead(repeats: int, jobs: int) -> None:
    scratch, again = [], []
    with tempfile.TemporaryDirectory(prefix="svp-bench-jobs-") as tmp:
        folder = trivial_workflow(Path(tmp) / "trivial", jobs)
        for _ in range(repeats):
            for leftover in ("out", "logs", ".snakemake"):
                shutil.rmtree(folder / leftover, ignore_errors=True)
            scratch.append(timed([*SNAKEMAKE, "--cores", "2"], cwd=folder))
            again.append(timed([*SNAKEMAKE, "--cores", "2"], cwd=folder, expect="Nothing to be done"))
    per_job = (median(scratch) - median(again)) / jobs
    print(f"\nSnakemake's own cost per job: a trivial {jobs}-job workflow (each job `touch`es its output), --cores 2, "
          f"from scratch {spread(scratch)}, replayed {spread(again)}: {per_job * 1000:.0f} ms per job")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", default="config/cifar10.yaml", help="the finished grid to replay")
    parser.add_argument("--jobs", type=int, default=37, help="jobs of the trivial workflow (the default run's)")
    args = parser.parse_args()
    header("Start-up", "bench/startup.py " + " ".join(sys.argv[1:]))
    stage_startups(args.repeats)
    replay(args.repeats, args.config)
    per_job_overhead(max(3, args.repeats // 2), args.jobs)


if __name__ == "__main__":
    main()
