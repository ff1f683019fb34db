"""An ImageNet-shaped step on GPUs: JPEGs read from disk, svp against a bare PyTorch loop.

On a synthetic ImageNet-layout tree (``bench/imagenet_tree.py``, made here with ``--make``),
prepared by svp (the disk path: a list of files, decoded by DataLoader workers), images/s of

- **scoring**: ``torchvision/resnet18`` over every training image, resized and centre-cropped,
  float32, channels_last (as ``svp score`` runs it): svp's ``DiskImageData.inference_batches``
  and ``logit_chunks`` against torchvision's ``ImageFolder`` + ``DataLoader`` with the same
  workers, batch and transforms, and the same model. svp scores in one process (a run's
  scoring is one job), so there is no DDP figure for it;
- **training**: ``torchvision/resnet50`` (random-resized crop and flip, bf16 autocast on CUDA,
  channels_last, SGD with momentum): ``svp train`` itself, on one GPU and with
  ``--processes N`` on all N GPUs (DistributedDataParallel under torchrun, SyncBatchNorm),
  against a bare loop (``ImageFolder`` + ``DataLoader`` + forward, backward, step; under DDP
  with a ``DistributedSampler``) with the same global batch. Each training runs
  ``--epochs`` epochs and is timed on its last (the first pays for the workers' start and
  cuDNN's autotuning in both).

Prints a table and writes it as CSV and Markdown under ``--out``. A part that would start
after ``--time-budget`` seconds is skipped with a message.

    python bench/gpu_imagenet.py --tree /tmp/svp-imagenet --make 12800 --out /tmp/svp-gpu
    python bench/gpu_imagenet.py --smoke --out /tmp/svp-smoke   # a CPU check of the code paths

(``bash bench/gpu.sh`` runs it; BENCHMARKS.md, "GPU".)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # svp from this checkout
sys.path.insert(0, str(REPO / "bench"))

from imagenet_tree import make_tree  # noqa: E402


def _rgb(path: str):
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def _normalised(pixels: torch.Tensor, device: torch.device, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) to the float, channels-last batch svp's models read (as DiskImageData.normalise)."""
    images = pixels.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    return images.float().div_(255).sub_(mean).div_(std)


def _model(name: str, classes: int, device: torch.device) -> torch.nn.Module:
    from svp.models.networks import create_model

    torch.manual_seed(0)
    return create_model(name, num_classes=classes).to(device).to(memory_format=torch.channels_last)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(folder: Path, train: bool, size: int, resize: int):
    """torchvision's ImageFolder with svp's transforms: random-resized crop and flip, or resize and centre crop."""
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import v2 as T

    steps = [T.RandomResizedCrop(size, antialias=True), T.RandomHorizontalFlip()] if train else [
        T.Resize(resize, antialias=True), T.CenterCrop(size)
    ]
    return ImageFolder(str(folder), transform=T.Compose([T.PILToTensor(), *steps]), loader=_rgb)


def _loader(dataset, batch_size: int, workers: int, device: torch.device, shuffle: bool, sampler=None):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, sampler=sampler, num_workers=workers,
        pin_memory=device.type == "cuda", prefetch_factor=4 if workers else None,
        generator=torch.Generator().manual_seed(0),
    )


# --------------------------------------------------------------------------- scoring


@torch.no_grad()
def score_svp(prepared: Path, batch_size: int, device: torch.device) -> tuple[float, int]:
    from svp.data import load_prepared
    from svp.training.disk_data import DiskImageData
    from svp.training.loop import logit_chunks

    (x, y), _, manifest = load_prepared(prepared)
    data = DiskImageData.from_split(x, y, manifest, device)
    model = _model("torchvision/resnet18", manifest["num_classes"], device)
    _sync(device)
    started, seen = time.perf_counter(), 0
    for logits in logit_chunks(model, data, batch_size):
        seen += len(logits)
    _sync(device)
    return time.perf_counter() - started, seen


@torch.no_grad()
def score_bare(tree: Path, manifest: dict, batch_size: int, workers: int, device: torch.device) -> tuple[float, int]:
    size = manifest["image_shape"][0]
    loader = _loader(_images(tree / "train", False, size, manifest["resize"]), batch_size, workers, device, shuffle=False)
    model = _model("torchvision/resnet18", manifest["num_classes"], device).eval()
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (manifest["mean"], manifest["std"]))
    outputs = []
    _sync(device)
    started, seen = time.perf_counter(), 0
    for pixels, _ in loader:
        outputs.append(model(_normalised(pixels, device, mean, std)).float())
        seen += len(pixels)
    torch.cat(outputs).cpu()  # as svp copies its logits to the CPU
    _sync(device)
    return time.perf_counter() - started, seen


# --------------------------------------------------------------------------- training


def train_svp(prepared: Path, run: Path, args, processes: int) -> float:
    """images/s of `svp train`'s last epoch (history.csv's epoch_seconds), on ``processes`` GPUs."""
    training = {
        "lr_schedule": [{"epochs": args.epochs, "lr": 0.1}], "batch_size": args.batch_size, "momentum": 0.9,
        "weight_decay": 1e-4, "eval_every": 0, "mixed_precision": True,
    }  # fmt: skip
    command = [
        sys.executable, "-m", "svp", "train", "--model", "torchvision/resnet50", "--training", json.dumps(training),
        "--seed", "0", "--data", str(prepared), "--model-out", str(run / "model.pt"), "--history-out",
        str(run / "history.csv"), "--metrics-out", str(run / "metrics.json"),
        *(["--processes", str(processes)] if processes > 1 else []),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        raise SystemExit(f"svp train failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    import pandas as pd

    history = pd.read_csv(run / "history.csv")
    n_train = json.loads((run / "metrics.json").read_text())["n_train"]
    return n_train / float(history["epoch_seconds"].iloc[-1])


def train_bare(tree: Path, manifest: dict, args, device: torch.device, rank: int = 0, world: int = 1) -> float:
    """images/s of the bare loop's last epoch (rank 0's clock; every rank steps together)."""
    size = manifest["image_shape"][0]
    sampler = None
    model = _model("torchvision/resnet50", manifest["num_classes"], device)
    network = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        network = DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    images = _images(tree / "train", True, size, manifest["resize"])
    if world > 1:  # each rank its share of a shuffled epoch, as DDP users write it
        sampler = torch.utils.data.DistributedSampler(images, num_replicas=world, rank=rank, seed=0)
    loader = _loader(images, args.batch_size // world, args.workers, device, shuffle=sampler is None, sampler=sampler)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in (manifest["mean"], manifest["std"]))
    network.train()
    seconds = 0.0
    for epoch in range(args.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        _sync(device)
        started, seen = time.perf_counter(), 0
        for pixels, labels in loader:
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = network(_normalised(pixels, device, mean, std))
                loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(pixels) * world
        _sync(device)
        seconds = time.perf_counter() - started
    return seen / seconds


def bare_ddp_worker(args) -> None:
    """One rank of the bare DDP loop (started by torchrun); rank 0 prints its images/s."""
    import torch.distributed as dist

    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    try:
        manifest = json.loads((Path(args.prepared) / "manifest.json").read_text())
        rate = train_bare(Path(args.tree), manifest, args, device, rank, world)
        if rank == 0:
            print(f"IMAGES_PER_SECOND {rate}", flush=True)
    finally:
        dist.destroy_process_group()


def train_bare_ddp(prepared: Path, args, processes: int) -> float:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes), __file__,
        "--bare-ddp-worker", "--tree", args.tree, "--prepared", str(prepared), "--batch-size", str(args.batch_size),
        "--epochs", str(args.epochs), "--workers", str(args.workers),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    found = re.search(r"IMAGES_PER_SECOND (\S+)", result.stdout)
    if result.returncode != 0 or not found:
        raise SystemExit(f"the bare DDP loop failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return float(found.group(1))


# --------------------------------------------------------------------------- the run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", default="/tmp/svp-imagenet", help="the ImageNet-layout tree (made there with --make)")
    parser.add_argument("--make", type=int, default=0, help="first make a tree of this many training images")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=256, help="the global batch of every loop")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs; the last is timed")
    parser.add_argument("--workers", type=int, default=None, help="reader processes per GPU (default: CPUs / GPUs, at most 8)")
    parser.add_argument("--out", default="/tmp/svp-gpu")
    parser.add_argument("--time-budget", type=float, default=float("inf"), help="start no part after this many seconds")
    parser.add_argument("--smoke", action="store_true", help="a CPU check: 64 images of 32 pixels, batch 16, 2 processes")
    parser.add_argument("--prepared", help=argparse.SUPPRESS)
    parser.add_argument("--bare-ddp-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    gpus = torch.cuda.device_count()
    if args.workers is None:
        args.workers = max(1, min(8, (os.cpu_count() or 1) // max(1, gpus)))
    os.environ["SVP_LOADER_WORKERS"] = str(args.workers)  # svp's readers, as many as the bare loop's
    if args.bare_ddp_worker:
        bare_ddp_worker(args)
        return
    if args.smoke:
        args.make, args.classes, args.image_size, args.batch_size, args.epochs = 64, 4, 32, 16, 2
        args.tree = str(Path(args.out) / "smoke-tree")
    elif not gpus:
        raise SystemExit("torch sees no GPU, and these figures mean something on a GPU only; for a CPU check: --smoke")
    began = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tree = Path(args.tree)
    if args.make and not (tree / "train").is_dir():
        per_class = max(1, args.make // args.classes)
        counts = make_tree(tree, args.classes, per_class, max(1, per_class // 10), max_side=500)
        print(f"made {counts['train']:,} training images ({counts['bytes'] / 1e9:.2f} GB) in {time.perf_counter() - began:.0f} s", flush=True)
    from svp.data import prepare_dataset

    prepared = out / "imagenet-prepared"
    prepare_dataset({"name": "imagenet", "path": str(tree), "image_size": args.image_size}, prepared)
    manifest = json.loads((prepared / "manifest.json").read_text())
    device = torch.device("cuda" if gpus else "cpu")
    processes = gpus if gpus > 1 else (2 if args.smoke else 1)
    rows = []

    def part(name: str, measure, baseline) -> None:
        if time.perf_counter() - began > args.time_budget:
            print(f"{name}: skipped, past the {args.time_budget:.0f} s budget", flush=True)
            return
        ours, bare = measure(), baseline()
        rows.append({"part": name, "svp_images_per_s": round(ours, 1), "bare_images_per_s": round(bare, 1), "svp_over_bare": round(ours / bare, 3)})
        print(f"{name}: svp {ours:,.1f} images/s, bare {bare:,.1f} images/s: {ours / bare:.3f}x", flush=True)

    def scoring_rate(scorer):
        seconds, seen = scorer()
        return seen / seconds

    part(
        f"resnet18 scoring, 1 {device.type}",
        lambda: scoring_rate(lambda: score_svp(prepared, args.batch_size, device)),
        lambda: scoring_rate(lambda: score_bare(tree, manifest, args.batch_size, args.workers, device)),
    )
    part(f"resnet50 training, 1 {device.type}", lambda: train_svp(prepared, out / "svp-train-1", args, 1),
         lambda: train_bare(tree, manifest, args, device))
    if processes > 1:
        part(f"resnet50 training, DDP on {processes} {'GPUs' if gpus else 'CPU processes'}",
             lambda: train_svp(prepared, out / f"svp-train-{processes}", args, processes),
             lambda: train_bare_ddp(prepared, args, processes))
    else:
        print("resnet50 training with DDP: skipped, this machine has one GPU", flush=True)
    header = f"{manifest['n_train']:,} JPEGs at {args.image_size} px, global batch {args.batch_size}, {args.workers} readers per process"
    with open(out / "imagenet.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["part", "svp_images_per_s", "bare_images_per_s", "svp_over_bare"])
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"ImageNet-shaped step ({header})", "", "| part | svp images/s | bare images/s | svp / bare |", "|---|---|---|---|"]
    lines += [f"| {r['part']} | {r['svp_images_per_s']:,} | {r['bare_images_per_s']:,} | {r['svp_over_bare']}x |" for r in rows]
    (out / "imagenet.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
