"""svp's disk pipeline against a bare torchvision ImageFolder + DataLoader loop, and a subset's cost.

On a synthetic ImageNet-layout tree (bench/imagenet_tree.py; made here with --make), with
the same workers, batch size and transforms (random-resized crop, flip, uint8 to the
normalised float batch) and no model, so that only reading and decoding are measured:

- preparation: seconds and peak memory of svp's prepare (headers only);
- throughput: images/s of one training epoch through svp (``DiskImageData.training_batches``)
  and through ``ImageFolder`` + ``DataLoader`` (shuffled), in that order, then again in the
  other order (the page cache warms on the first pass);
- subset cost: a 30 % subset's epoch against the full epoch, in seconds and in bytes read
  (``rchar`` of /proc/self/io, which counts the reaped worker processes too).

    python bench/disk_pipeline.py /tmp/tree --make 2000 --classes 10 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagenet_tree import make_tree  # noqa: E402


def bytes_read() -> int:
    """Bytes this process and its reaped children read through read() calls (page cache included)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def svp_epoch(data, order, batch_size) -> tuple[float, int, int]:
    started, read = time.perf_counter(), bytes_read()
    seen = sum(len(index) for index, _, _ in data.training_batches(order, batch_size, {}, torch.Generator().manual_seed(0)))
    return time.perf_counter() - started, bytes_read() - read, seen


def bare_epoch(folder: Path, size: int, batch_size: int, workers: int, mean, std) -> tuple[float, int, int]:
    """The reference: torchvision's ImageFolder and a shuffled DataLoader, normalised as svp does."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2 as T

    transform = T.Compose([T.PILToTensor(), T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip()])
    dataset = ImageFolder(str(folder), transform=transform, loader=lambda p: __import__("PIL.Image").Image.open(p).convert("RGB"))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, prefetch_factor=4 if workers else None,
        generator=torch.Generator().manual_seed(0),
    )
    mean, std = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    started, read, seen = time.perf_counter(), bytes_read(), 0
    for pixels, _ in loader:
        pixels.contiguous(memory_format=torch.channels_last).float().div_(255).sub_(mean).div_(std)
        seen += len(pixels)
    return time.perf_counter() - started, bytes_read() - read, seen


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree")
    parser.add_argument("--make", type=int, default=0, help="first make a tree of this many training images")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", help="also write the results here, as JSON")
    args = parser.parse_args(argv)
    os.environ["SVP_LOADER_WORKERS"] = str(args.workers)
    from svp.data import load_prepared, prepare_dataset
    from svp.training.disk_data import DiskImageData

    tree = Path(args.tree)
    if args.make:
        started = time.perf_counter()
        counts = make_tree(tree, args.classes, args.make // args.classes, max(1, args.make // args.classes // 20))
        print(f"made {counts['train']:,} training images ({counts['bytes'] / 1e9:.2f} GB) in {time.perf_counter() - started:.0f} s")
    results = {"workers": args.workers, "batch_size": args.batch_size, "image_size": args.image_size}
    with tempfile.TemporaryDirectory() as prepared:
        started = time.perf_counter()
        prepare_dataset({"name": "imagenet", "path": str(tree), "image_size": args.image_size}, prepared)
        results["prepare_seconds"] = time.perf_counter() - started
        results["prepare_max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        (x, y), _, manifest = load_prepared(prepared)
    data = DiskImageData.from_split(x, y, manifest, torch.device("cpu"))
    n = len(data)
    full = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    subset = full[: round(0.3 * n)]
    runs = {"svp": [], "bare": []}
    for order in (("svp", "bare"), ("bare", "svp")):
        for name in order:
            if name == "svp":
                runs[name].append(svp_epoch(data, full, args.batch_size))
            else:
                runs[name].append(bare_epoch(tree / "train", args.image_size, args.batch_size, args.workers, manifest["mean"], manifest["std"]))
    for name, epochs in runs.items():
        results[f"{name}_images_per_second"] = [round(seen / seconds, 1) for seconds, _, seen in epochs]
    results["svp_over_bare"] = round(
        sum(r[0] for r in runs["bare"]) / sum(r[0] for r in runs["svp"]), 3
    )
    full_seconds, full_bytes, _ = svp_epoch(data, full, args.batch_size)
    subset_seconds, subset_bytes, seen = svp_epoch(data, subset, args.batch_size)
    results.update(
        n_train=n, subset_images=seen, subset_time_ratio=round(subset_seconds / full_seconds, 3),
        subset_bytes_ratio=round(subset_bytes / full_bytes, 3), full_epoch_bytes=full_bytes,
    )
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
