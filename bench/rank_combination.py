"""Benchmark: rank combination at Amazon Review Polarity size against plain NumPy sorting.

3.6M training examples scored by 5 proxy runs (random float64 scores: sorting costs
the same whatever they are):

* baseline: ``np.argsort`` of each run's scores, and of their mean (6 sorts of 3.6M);
  the sorting that any rank combination does at least;
* ``svp.selection.ranking``: ``ranks_from_scores`` per run (stable sort by decreasing score, then
  each example's rank) and ``combine_ranks`` (each example's mean rank, sorted again);
* the ``svp rank`` stage on 5 score parquet files of that size, as its own process
  (reading the files, the ranking, writing the ranks file), against ``python -c pass``
  and against the same plain sorts in a process that reads the same columns.

Seconds are medians of interleaved repeats; peak memory is the most that was allocated
at once above the inputs (tracemalloc, which sees NumPy's allocations) for the
in-process rows, and the process's peak resident memory (getrusage) for the stage.
Run: .venv/bin/python bench/rank_combination.py [--examples 3600000 --runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header, interleaved, median, ratio_line, spread  # noqa: E402

from svp.parquet import write_parquet  # noqa: E402
from svp.selection.ranking import combine_ranks, ranks_from_scores  # noqa: E402

PLAIN_STAGE = """
import sys
import numpy as np, pyarrow.parquet as pq
scores = [pq.read_table(path, columns=["entropy"]).column(0).to_numpy() for path in sys.argv[1:]]
orders = [np.argsort(-s) for s in scores]
np.argsort(np.mean(scores, axis=0))
"""


def plain(scores: np.ndarray) -> None:
    for run in scores:
        np.argsort(-run)
    np.argsort(scores.mean(axis=0))


def svp_ranking(scores: np.ndarray) -> np.ndarray:
    return combine_ranks(np.stack([ranks_from_scores(run) for run in scores]))


def peak_mib(function, scores: np.ndarray) -> float:
    tracemalloc.start()
    function(scores)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


# Runs a command and reports its seconds and peak resident memory. A small process of its
# own, since a child's peak counts what its parent held when it forked.
LAUNCHER = """
import resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
"""


def run_process(command: list[str]) -> tuple[float, float]:
    """(seconds, peak resident MiB) of one child process."""
    result = subprocess.run([sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True, check=True)
    seconds, mib = result.stdout.split()
    return float(seconds), float(mib)


def write_scores(folder: Path, scores: np.ndarray, seed: int = 0) -> list[Path]:
    """Score parquet files as ``svp score`` writes them (every column, random values)."""
    rng = np.random.default_rng(seed)
    n = scores.shape[1]
    labels = rng.integers(0, 2, n)
    paths = []
    for run, entropy in enumerate(scores):
        prediction = rng.integers(0, 2, n)
        frame = pd.DataFrame(
            {
                "index": np.arange(n, dtype=np.int64),
                "label": labels,
                "prediction": prediction,
                "correct": prediction == labels,
                "least_confidence": entropy / 2,
                "margin": entropy,
                "entropy": entropy,
            }
        )
        paths.append(folder / f"seed{run}.parquet")
        write_parquet(frame, paths[-1], {"role": "proxy", "seed": run})
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=3_600_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-stage", action="store_true", help="skip the svp rank stage on parquet files")
    args = parser.parse_args()
    header("Rank combination", "bench/rank_combination.py " + " ".join(sys.argv[1:]))
    scores = np.random.default_rng(0).random((args.runs, args.examples))
    print(f"{args.runs} runs x {args.examples:,} examples of float64 scores ({scores.nbytes / 2**20:.0f} MiB); "
          f"median of {args.repeats} interleaved repeats (min-max)")  # fmt: skip
    seconds = interleaved({"plain": lambda: plain(scores), "svp": lambda: svp_ranking(scores)}, args.repeats)
    print(f"  baseline, plain np.argsort x {args.runs + 1}: {spread(seconds['plain'])}, peak {peak_mib(plain, scores):,.0f} MiB")
    print(ratio_line("svp.selection.ranking (ranks_from_scores per run + combine_ranks)", seconds["svp"], seconds["plain"], goal=2.0)
          + f", peak {peak_mib(svp_ranking, scores):,.0f} MiB")  # fmt: skip
    if args.no_stage:
        return
    with tempfile.TemporaryDirectory(prefix="svp-bench-rank-") as tmp:
        started = time.perf_counter()
        paths = write_scores(Path(tmp), scores)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"svp rank on {args.runs} score files ({size:,.0f} MiB, written in {time.perf_counter() - started:.0f} s):")
        stage = [sys.executable, "-m", "svp", "rank", *map(str, paths), "--metric", "entropy", "--out", f"{tmp}/ranks.parquet"]
        results: dict[str, list[tuple[float, float]]] = {"pass": [], "plain": [], "stage": []}
        commands = {"pass": [sys.executable, "-c", "pass"], "plain": [sys.executable, "-c", PLAIN_STAGE, *map(str, paths)], "stage": stage}
        for repeat in range(args.repeats):
            for name in commands if repeat % 2 == 0 else reversed(commands):
                results[name].append(run_process(commands[name]))
        times = {name: [s for s, _ in runs] for name, runs in results.items()}
        peaks = {name: median([m for _, m in runs]) for name, runs in results.items()}
        print(f"  python -c pass: {spread(times['pass'])}, peak {peaks['pass']:,.0f} MiB")
        print(f"  plain process (read the {args.runs} entropy columns with pyarrow, the same sorts): "
              f"{spread(times['plain'])}, peak {peaks['plain']:,.0f} MiB")  # fmt: skip
        print(ratio_line("svp rank (whole process)", times["stage"], times["plain"], goal=2.0) + f" of the plain process, peak {peaks['stage']:,.0f} MiB")


if __name__ == "__main__":
    main()
