"""What a DataLoader worker copies of the file list as it reads an epoch: a list of str against packed UTF-8.

A worker forked from the job shares the job's memory until it writes a page. Reading an
element of a Python list writes that element's reference count, so over an epoch page of a
list of 1.28 million paths (ImageNet's training set) that holds a path the worker reads is
copied into it: in a shuffled epoch, nearly every page into every worker
(pytorch/pytorch#13246). The same paths packed into two numpy arrays (``TextArray``: UTF-8
bytes and offsets) are only read. This measures each worker's private memory (Private_Clean
+ Private_Dirty of /proc/self/smaps_rollup) after its first reads and at the end of a
shuffled epoch that reads every path and opens no file, for both, in one run.

    python bench/path_memory.py --paths 1281167 --workers 4
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from svp.data.encoding import TextArray  # noqa: E402


def private_kib() -> int:
    """This process's memory that no other process shares (KiB)."""
    fields = {}
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in ("Private_Clean", "Private_Dirty"):
                fields[name] = int(rest.split()[0])
    return sum(fields.values())


def imagenet_like_paths(count: int, classes: int = 1000) -> list[str]:
    """Relative paths shaped as ImageNet's (n01440764/n01440764_10026.JPEG)."""
    per_class = -(-count // classes)
    return [f"n{1_000_000 + i // per_class * 7_919:08d}/n{1_000_000 + i // per_class * 7_919:08d}_{i % per_class}.JPEG"
            for i in range(count)]


class PathLengths(torch.utils.data.Dataset):
    """Reads path ``i`` (as a disk data set's __getitem__ does before opening it) and returns its
    length; every ``every``-th read in a worker also returns the worker's pid and private memory."""

    def __init__(self, paths, every: int):
        self.paths, self.every, self.reads = paths, every, 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        length = len(self.paths[index])
        self.reads += 1  # each worker's own copy counts its own reads
        if self.reads % self.every == 1:
            return length, os.getpid(), private_kib()
        return length, 0, 0


def one_epoch(paths, workers: int, batch_size: int) -> dict:
    """{pid: (private KiB after its first read, at its last report)} over one shuffled epoch."""
    loader = torch.utils.data.DataLoader(
        PathLengths(paths, every=4 * batch_size), batch_size=batch_size, num_workers=workers, shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    seen: dict[int, list[int]] = {}
    for _, pids, kib in loader:
        for pid, value in zip(pids[pids > 0].tolist(), kib[pids > 0].tolist()):
            seen.setdefault(pid, [value, value])[1] = value
    return {pid: tuple(values) for pid, values in seen.items()}


def size_mib(paths) -> float:
    """What the paths themselves take: the list and its str objects, or the two arrays."""
    if isinstance(paths, TextArray):
        return (paths.data.nbytes + paths.offsets.nbytes) / 2**20
    return (sys.getsizeof(paths) + sum(sys.getsizeof(path) for path in paths)) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=1_281_167, help="paths in the list (ImageNet's training set: 1,281,167)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    if args.paths < 1 or args.workers < 1 or args.batch_size < 1:
        parser.error("--paths, --workers and --batch-size must be positive: the epoch is read by workers")
    rows = []
    for form in ("list of str", "packed (TextArray)"):
        paths = imagenet_like_paths(args.paths)
        if form.startswith("packed"):
            paths = TextArray.from_strings(paths)
        gc.collect()
        gained = [last - first for first, last in one_epoch(paths, args.workers, args.batch_size).values()]
        rows.append((form, size_mib(paths), min(gained) / 1024, max(gained) / 1024, sum(gained) / 1024))
        del paths
        gc.collect()
    print(f"{args.paths:,} paths, {args.workers} workers, a shuffled epoch in batches of {args.batch_size}\n")
    print("| paths held as | their size | copied into each worker (least, most) | into all workers |")
    print("|---|---|---|---|")
    for form, size, least, most, total in rows:
        print(f"| {form} | {size:.0f} MiB | {least:.0f} to {most:.0f} MiB | {total:.0f} MiB |")


if __name__ == "__main__":
    main()
