"""Benchmark: k-center greedy, svp's running distances against the SVP authors' dense matrix.

Both pick new centres after ``--initial`` random ones (the authors' CIFAR code starts
k-center from 1,000 random examples) from a pool of ``--points`` random normal float32
embeddings, for each of ``--dims``: ``--dense-budget`` centres each (one per dimension;
fewer than ``--budget`` where the dense method would take too long), and svp also
``--budget`` centres where that is more:

* dense, as the authors' code does it (selection-via-proxy,
  svp/common/selection/k_center_greedy.py; rewritten here, not copied): a float32
  matrix of (initial + budget) x pool distances, its first rows from one
  ``scipy.spatial.distance.cdist`` of the initial centres against the pool, then one row
  per pick, from ``cdist`` of the new centre against the columns not yet chosen, and a
  running minimum over the rows;
* ``svp.selection.kcenter.k_center_greedy``: one running squared distance per point.

Each method runs once per size, in a fresh process of its own, so that one's peak memory
cannot hide the other's: its seconds, and its peak resident memory (getrusage) above
what the process held before the call (the embeddings, NumPy, and torch for svp; each
method is first run on 10 points, so that its libraries are loaded). Both
run on 1 thread: ``cdist`` has only one, and on a shared 2-core machine torch's 2-thread
pool waits milliseconds per small operation for a core. The two methods' picks are
compared (float32 against float64 distances, so near-ties may go either way).
The GPU path is not measured here: this runs on the CPU, as ``device="cpu"``.

Run: .venv/bin/python bench/kcenter.py [--points 50000 --dims 64 512 --budget 5000
--dense-budget 5000 1000 --initial 1000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import header  # noqa: E402

METHODS = ("svp", "dense")


def dense_k_center(x: np.ndarray, initial: np.ndarray, budget: int) -> np.ndarray:
    """The authors' algorithm: a (len(initial) + budget) x pool float32 distance matrix."""
    import scipy.spatial.distance

    pool = np.setdiff1d(np.arange(len(x)), initial, assume_unique=True)
    picks = np.empty(budget, dtype=np.int64)
    distances = np.zeros((len(initial) + budget, len(pool)), dtype=np.float32)
    distances[: len(initial)] = scipy.spatial.distance.cdist(x[initial], x[pool], metric="euclidean")
    nearest = distances[: len(initial)].min(axis=0)
    open_columns = np.ones(len(pool), dtype=bool)
    for step in range(budget):
        column = int(np.argmax(nearest))
        picks[step] = pool[column]
        if step == budget - 1:
            break
        nearest[column] = -1
        open_columns[column] = False
        row = len(initial) + step + 1
        distances[row, open_columns] = scipy.spatial.distance.cdist(x[pool[column] : pool[column] + 1], x[pool[open_columns]])[0]
        nearest = np.minimum(nearest, distances[row])
    return picks


def embeddings(points: int, dims: int, initial: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((points, dims), dtype=np.float32)  # float32 at once: no float64 peak
    return x, rng.permutation(points)[:initial]


def worker(method: str, points: int, dims: int, budget: int, initial: int, seed: int, picks_file: str) -> None:
    """One method in this process: prints seconds and peak resident memory as JSON."""
    x, start = embeddings(points, dims, initial, seed)
    if method == "svp":
        import torch

        from svp.selection.kcenter import k_center_greedy

        torch.set_num_threads(1)
        run = lambda: k_center_greedy(x, budget, initial=start, device="cpu")  # noqa: E731
    else:
        run = lambda: dense_k_center(x, start, budget)  # noqa: E731
    # Warmed up on 10 points first: the libraries' first calls (scipy's import, torch's
    # kernels and allocator) are not memory that either method needs per point.
    tiny, tiny_start = embeddings(10, dims, 2, seed)
    if method == "svp":
        k_center_greedy(tiny, 3, initial=tiny_start, device="cpu")
    else:
        dense_k_center(tiny, tiny_start, 3)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    began = time.perf_counter()
    picks = run()
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(picks_file, picks)
    print(json.dumps({"seconds": seconds, "peak_mib": after, "above_inputs_mib": after - before}))


def measure(method: str, points: int, dims: int, budget: int, initial: int, seed: int, picks_file: str) -> dict:
    command = [sys.executable, __file__, "--worker", method, "--points", str(points), "--dims", str(dims)]
    command += ["--budget", str(budget), "--initial", str(initial), "--seed", str(seed), "--picks", picks_file]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--budget", type=int, default=5_000, help="svp's greedy picks")
    parser.add_argument("--dense-budget", type=int, nargs="+", default=[5_000, 1_000], help="both methods' picks: one per dimension, or one for all")
    parser.add_argument("--initial", type=int, default=1_000, help="random centres before the greedy picks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--picks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.points, args.dims[0], args.budget, args.initial, args.seed, args.picks)
        return 0
    budgets = args.dense_budget * len(args.dims) if len(args.dense_budget) == 1 else args.dense_budget
    if len(budgets) != len(args.dims):
        parser.error("give one --dense-budget, or one per --dims")

    header("k-center greedy", "bench/kcenter.py " + " ".join(sys.argv[1:]))
    print(f"{args.points:,} random normal float32 points, {args.initial:,} random initial centres, 1 thread, CPU\n")
    print("| dims | budget | method | seconds | peak memory above inputs | process peak | picks as svp's |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for turn, (dims, budget) in enumerate(zip(args.dims, budgets)):
            results = {}
            # The order swapped every other size, so neither method always runs first.
            for method in METHODS if turn % 2 == 0 else reversed(METHODS):
                picks = str(Path(scratch) / f"{method}-{dims}.npy")
                results[method] = measure(method, args.points, dims, budget, args.initial, args.seed, picks)
                results[method]["picks"] = np.load(picks)
            ours = results["svp"]["picks"]
            for method in METHODS:
                r = results[method]
                same = np.flatnonzero(r["picks"] != ours)
                agreement = f"first {same[0]:,} in order" if len(same) else "all, in order"
                agreement += f", {len(np.intersect1d(r['picks'], ours)):,} of {budget:,} in common"
                ratio = r["seconds"] / results["svp"]["seconds"]
                print(
                    f"| {dims} | {budget:,} | {method} | {r['seconds']:.2f} ({ratio:.1f}x svp) | "
                    f"{r['above_inputs_mib']:,.0f} MiB | {r['peak_mib']:,.0f} MiB | {agreement} |",
                    flush=True,
                )
            if args.budget > budget:
                r = measure("svp", args.points, dims, args.budget, args.initial, args.seed, str(Path(scratch) / "alone.npy"))
                nested = np.array_equal(np.load(Path(scratch) / "alone.npy")[:budget], ours)
                print(
                    f"| {dims} | {args.budget:,} | svp alone | {r['seconds']:.2f} | {r['above_inputs_mib']:,.0f} MiB | "
                    f"{r['peak_mib']:,.0f} MiB | first {budget:,} {'the same' if nested else 'NOT the same'} |",
                    flush=True,
                )
    pool = args.points - args.initial
    for dims, budget in zip(args.dims, budgets):
        budget = max(budget, args.budget)
        print(
            f"\nthe dense matrix for {budget:,} picks at {dims} dims, by its shape: ({args.initial:,} + {budget:,}) x {pool:,} float32 = "
            f"{(args.initial + budget) * pool * 4 / 2**20:,.0f} MiB; svp's running distances: {args.points * 4 / 2**20:.2f} MiB "
            f"(+ its float32 copy of the embeddings, {args.points * dims * 4 / 2**20:,.0f} MiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
