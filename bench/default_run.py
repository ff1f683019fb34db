"""Benchmark: `make run` (the default digits config) from scratch, after set-up.

In a temporary copy of the repository (its tracked and untracked files, ``.venv``
linked, nothing installed) ``make run`` runs from scratch; reported: its wall and CPU
time, the jobs, and where the time goes (each rule's jobs' wall time from Snakemake's
log, and how much of it the training epochs took). Measured in the same run, to show
how busy the machine was: ``python -c "import torch"`` and a trivial workflow of as
many jobs. With ``--before REV``, the same run of that git revision, in turn with the
working tree's (what the changes since gained).

Run: .venv/bin/python bench/default_run.py [--repeats 1] [--before REV]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, header, median, spread  # noqa: E402
from startup import trivial_workflow  # noqa: E402

GOAL_SECONDS = 60


def copy_tree(destination: Path, revision: str | None = None) -> Path:
    """The working tree's files (or a git revision's) in ``destination``, with .venv linked."""
    destination.mkdir(parents=True)
    if revision:
        archive = subprocess.run(["git", "archive", revision], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "x", "-C", str(destination)], input=archive, check=True)
    else:
        listing = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True)
        for name in filter(None, listing.stdout.decode().split("\0")):
            if (REPO / name).is_file():
                (destination / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, destination / name)
    (destination / ".venv").symlink_to(REPO / ".venv")
    return destination


def make_run(folder: Path) -> dict:
    """``make run`` in ``folder``: wall and CPU seconds, and the Snakemake log's jobs."""
    # -o: the virtual environment counts as installed (this copy's files are newer).
    command = ["make", "-o", ".venv/.installed", "run"]
    env = {**os.environ, "PYTHONPATH": str(folder)}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"make run failed in {folder}:\n{output[-5000:]}")
    log = max((folder / ".snakemake" / "log").glob("*.log"), key=lambda p: p.stat().st_mtime).read_text()
    training = defaultdict(float)
    for metrics in (folder / "results").rglob("metrics.json"):
        run = json.loads(metrics.read_text())
        training["train_proxy" if run.get("role") == "proxy" else "train_target"] += run.get("seconds", 0.0)
    return {"wall": wall, "user": usage.ru_utime, "sys": usage.ru_stime, "jobs": job_times(log), "training": training}


def job_times(log: str) -> dict[str, list[float]]:
    """Each rule's jobs' wall seconds (second resolution), from a Snakemake log."""
    pattern = r"\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]"
    clock, pending, started, times = None, None, {}, defaultdict(list)
    for line in log.splitlines():
        if stamp := re.match(pattern, line):
            clock = datetime.datetime.strptime(stamp.group(1), "%a %b %d %H:%M:%S %Y")
        elif rule := re.match(r"(?:local)?rule (\w+):", line):
            pending = rule.group(1)
        elif (job := re.match(r"\s+jobid: (\d+)", line)) and pending:
            started[job.group(1)], pending = (pending, clock), None
        elif done := re.match(r"Finished jobid: (\d+) \(Rule: (\w+)\)", line):
            rule, begun = started[done.group(1)]
            times[rule].append((clock - begun).total_seconds())
    return times


def report(name: str, runs: list[dict]) -> None:
    walls = [run["wall"] for run in runs]
    last = runs[-1]
    jobs = sum(len(times) for times in last["jobs"].values())
    verdict = "met" if median(walls) < GOAL_SECONDS else "NOT met"
    print(f"\n{name}: {jobs} jobs, wall {spread(walls)} (goal under {GOAL_SECONDS} s: {verdict}); "
          f"CPU {last['user']:.0f} s user + {last['sys']:.0f} s sys (last run)")  # fmt: skip
    print("| rule | jobs | job wall time, sum | mean | training epochs, sum |")
    print("|---|---|---|---|---|")
    for rule, times in sorted(last["jobs"].items(), key=lambda item: -sum(item[1])):
        training = f"{last['training'][rule]:.1f} s" if rule in last["training"] else ""
        print(f"| {rule} | {len(times)} | {sum(times):.0f} s | {sum(times) / len(times):.1f} s | {training} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--before", help="also run this git revision's `make run`, in turn")
    args = parser.parse_args()
    header("Default run", "bench/default_run.py " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="svp-bench-run-") as tmp:
        runs: dict[str, list[dict]] = {"working tree": []}
        if args.before:
            runs[f"revision {args.before}"] = []
        torch_import, trivial = [], []
        for repeat in range(args.repeats):
            for name in runs if repeat % 2 == 0 else reversed(list(runs)):
                folder = copy_tree(Path(tmp) / f"{len(runs[name])}-{name.replace(' ', '-')}", args.before if name != "working tree" else None)
                runs[name].append(make_run(folder))
                shutil.rmtree(folder)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import torch"], check=True)
            torch_import.append(time.perf_counter() - started)
            folder = trivial_workflow(Path(tmp) / f"trivial{repeat}", sum(len(t) for t in runs["working tree"][-1]["jobs"].values()))
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--quiet"], cwd=folder, capture_output=True, check=True)
            trivial.append(time.perf_counter() - started)
    for name, measured in runs.items():
        report(f"make run, {name}", measured)
    if args.before:
        ratio = median([r["wall"] for r in runs[f"revision {args.before}"]]) / median([r["wall"] for r in runs["working tree"]])
        print(f"\nrevision {args.before} took {ratio:.2f}x the working tree's wall time")
    print(f"\nsame run, for scale: python -c 'import torch' {spread(torch_import)}; "
          f"a trivial workflow of as many jobs (touch), --cores 2: {spread(trivial)}")  # fmt: skip


if __name__ == "__main__":
    main()
