"""k-center greedy at ImageNet's size: seconds a pick on 1.28 million 512-dimension embeddings.

The embeddings (random normal float32, as ResNet18's penultimate layer has 512 features)
are a .npy file read through a memory map, as a scoring job's are; the centred float32
copy k-center works on is a scratch file (``svp.scratch``) in the same folder. Two calls
with different budgets give the cost of the set-up (the mean, the centred copy, the first
centre) and of each further pick, the difference of the two over the difference of their
budgets (after a first call that warms the page cache); the time to pick 40 % of the points
(the share config/imagenet.yaml keeps) is extrapolated from it, since running it would take
days on a CPU.

    python bench/kcenter_scale.py --points 1281167 --dims 512 --budgets 10 210 [--device cuda]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from svp.selection.kcenter import k_center_greedy  # noqa: E402


def random_embeddings(path: Path, points: int, dims: int, seed: int) -> np.ndarray:
    """A (points, dims) float32 .npy of random normal values, written a block at a time, opened read-only."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(points, dims))
    for start in range(0, points, 65_536):
        stop = min(points, start + 65_536)
        out[start:stop] = rng.standard_normal((stop - start, dims), dtype=np.float32)
    out.flush()
    del out
    return np.load(path, mmap_mode="r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_281_167, help="ImageNet's training set: 1,281,167")
    parser.add_argument("--dims", type=int, default=512)
    parser.add_argument("--budgets", type=int, nargs=2, default=[10, 210], help="two budgets; picks cost their difference")
    parser.add_argument("--keep", type=float, default=0.4, help="the share whose time is extrapolated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--folder", help="where the embeddings and the scratch copy go (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    small, large = args.budgets
    if not 1 <= small < large <= args.points:
        parser.error(f"--budgets needs 1 <= first < second <= --points ({args.points:,}), got {small} {large}")
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        started = time.perf_counter()
        embeddings = random_embeddings(Path(folder) / "embeddings.npy", args.points, args.dims, args.seed)
        made = time.perf_counter() - started
        # Libraries loaded and the page cache warmed (the embeddings read, the scratch file
        # made once) before the clock: the first full call took seconds longer than the next.
        k_center_greedy(embeddings, args.budgets[0], seed=args.seed, device=args.device, scratch=folder)
        seconds = []
        for budget in args.budgets:
            started = time.perf_counter()
            picks = k_center_greedy(embeddings, budget, seed=args.seed, device=args.device, scratch=folder)
            if args.device != "cpu":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - started)
            assert len(np.unique(picks)) == budget
    (small, large), (t_small, t_large) = args.budgets, seconds
    per_pick = (t_large - t_small) / (large - small)
    set_up = t_small - small * per_pick
    keep = round(args.keep * args.points)
    print(f"{args.points:,} x {args.dims} float32 embeddings ({args.points * args.dims * 4 / 2**30:.2f} GiB, written in "
          f"{made:.0f} s), device {args.device}, {torch.get_num_threads()} threads\n")
    print("| k-center greedy | value |")
    print("|---|---|")
    print(f"| budget {small}, budget {large} | {t_small:.1f} s, {t_large:.1f} s |")
    print(f"| set-up (mean, centred scratch copy, first centre) | {set_up:.1f} s |")
    print(f"| each further pick | {per_pick:.3f} s |")
    print(f"| {args.keep:.0%} of the points ({keep:,} picks), extrapolated | {(set_up + keep * per_pick) / 3600:,.1f} h |")
    print(f"| peak resident memory (mapped file pages included) | {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB |")


if __name__ == "__main__":
    main()
