"""Training throughput on a GPU: svp's loop against a torchvision DataLoader, same model, same step.

Images per second of one training step (gather or load a batch, random crop with padding
4 and horizontal flip, normalise, forward, cross-entropy, backward, SGD with Nesterov
momentum) for the CIFAR-10 target, in these variants:

* ``svp``: ``svp.training.train`` itself: the uint8 training set on the device, batches
  gathered by index and augmented whole on the device, bf16 autocast on CUDA, and the
  model in channels_last, the layout of svp's image batches (as ``svp.stages`` sets it up);
* ``svp + torch.compile``: the same with ``torch.compile(model)``; its compile time is
  reported apart from its steady throughput, so whether it pays can be read off;
* ``DataLoader``: the usual torchvision recipe: per-example ``transforms.v2`` in worker
  processes, pinned memory, a non-blocking copy to the device, then the same step (bf16
  autocast, channels_last model);
* ``svp fp32`` and ``svp NCHW`` (with ``--ablations``): what bf16 and channels_last buy;
* ``svp scoring``: inference over the training set (``predict_logits``, the score stage);
* the proxies named by ``--proxies`` in the svp loop, to weigh their cost against the target's.

Each variant runs ``--warmup-steps`` untimed steps, then ``--steps`` timed ones (default:
one epoch), ``--repeats`` times; the best repeat is reported. A part that would start
after ``--time-budget`` seconds is skipped with a message. Prints a table and writes it as
CSV and Markdown under ``--out``.

Run: python bench/gpu_throughput.py --data ../shared/data/cifar10 --out /tmp/svp-gpu
(``bash bench/gpu.sh`` runs it with the settings of BENCHMARKS.md; ``--smoke`` is a
seconds-long CPU check of the code paths.)
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # svp from this checkout

from svp.models.networks import count_parameters, create_model  # noqa: E402
from svp.training.loop import ImageData, TrainingSettings, autocast, predict_logits, train  # noqa: E402

AUGMENT = {"crop_padding": 4, "flip": True}


def load_cifar(folder: Path, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The training images (uint8 N,H,W,C) and labels of the npz copy, the first ``limit``."""
    parts = sorted(folder.glob("train-*.npz"))
    if not parts:
        raise SystemExit(f"no train-*.npz files in {folder}: pass --data, the folder of the CIFAR-10 npz copy")
    xs, ys, held = [], [], 0
    for part in parts:
        with np.load(part) as archive:
            xs.append(archive["x"])
            ys.append(archive["y"])
        held += len(ys[-1])
        if limit is not None and held >= limit:
            break
    return np.concatenate(xs)[:limit], np.concatenate(ys)[:limit]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prepare_model(name: str, device: torch.device, channels_last: bool, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model(name, num_classes=10).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def settings_for(batch_size: int, mixed_precision: bool) -> TrainingSettings:
    return TrainingSettings(
        lr_schedule=[{"epochs": 1, "lr": 0.05}], batch_size=batch_size, momentum=0.9, weight_decay=5e-4,
        nesterov=True, eval_every=0, mixed_precision=mixed_precision,
    )


def time_svp(model, data: ImageData, batch_size: int, warmup: int, steps: int, mixed_precision: bool) -> tuple[float, float]:
    """(seconds of the warm-up steps, seconds of the timed steps) of ``svp.training.train``."""
    device = data.device
    settings = settings_for(batch_size, mixed_precision)
    generator = torch.Generator(device=device).manual_seed(0)

    def run(count: int) -> float:
        index = torch.randint(0, len(data), (count * batch_size,), generator=generator, device=device)
        synchronize(device)
        started = time.perf_counter()
        train(model, data, index, settings, AUGMENT, seed=0, log=lambda line: None)
        synchronize(device)
        return time.perf_counter() - started

    return run(warmup), run(steps)


class TransformedImages(torch.utils.data.Dataset):
    """The baseline's data set: one uint8 (C,H,W) image at a time, transformed on access."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        from torchvision.transforms import v2

        self.images, self.labels = images, labels
        self.transform = v2.Compose(
            [
                v2.RandomCrop(32, padding=AUGMENT["crop_padding"]),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), self.labels[index]


def time_dataloader(
    model, dataset, device: torch.device, batch_size: int, warmup: int, steps: int, workers: int, mixed_precision: bool
) -> tuple[float, float]:
    """(seconds of the warm-up steps, worker start-up included; seconds of the timed steps)."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=workers,
        pin_memory=device.type == "cuda", persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True)
    model.train()
    batches = iter(())
    loss_sum = torch.zeros((), device=device)

    def step(images, labels):
        nonlocal loss_sum
        images = images.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        with autocast(device, mixed_precision):
            logits = model(images)
            loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach()

    def run(count: int) -> float:
        nonlocal batches
        synchronize(device)
        started = time.perf_counter()
        for _ in range(count):
            batch = next(batches, None)
            if batch is None:
                batches = iter(loader)
                batch = next(batches)
            step(*batch)
        loss_sum.item()
        synchronize(device)
        return time.perf_counter() - started

    return run(warmup), run(steps)


def time_scoring(model, data: ImageData, batch_size: int, mixed_precision: bool) -> float:
    """Seconds of ``predict_logits`` over all of ``data`` (after one warm-up batch)."""
    head = ImageData(data.images[:batch_size], data.labels[:batch_size], data.mean, data.std)
    predict_logits(model, head, batch_size, mixed_precision)
    synchronize(data.device)
    started = time.perf_counter()
    predict_logits(model, data, batch_size, mixed_precision)
    synchronize(data.device)
    return time.perf_counter() - started


def environment(device: torch.device) -> list[str]:
    lines = [
        f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} CPUs, device {device}",
    ]
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        lines.append(
            f"GPU {properties.name}, {properties.total_memory / 2**30:.0f} GiB, {properties.multi_processor_count} SMs, "
            f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
        )
    return lines


def format_table(rows: list[dict]) -> str:
    columns = ["variant", "model", "batch", "images_per_s", "ms_per_step", "vs_svp", "warmup_s", "note"]
    cells = [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(column), *(len(cell[i]) for cell in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(column.ljust(width) for column, width in zip(columns, widths))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def markdown_table(rows: list[dict]) -> str:
    columns = ["variant", "model", "batch", "images_per_s", "ms_per_step", "vs_svp", "warmup_s", "note"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(column, "")) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10")
    parser.add_argument("--model", default="resnet9", help="the target (default resnet9)")
    parser.add_argument("--proxies", default="fast_cnn32,preact_resnet20", help="comma-separated proxy models to time ('' for none)")
    parser.add_argument("--examples", type=int, default=None, help="training images to load (default all)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=None, help="timed steps per repeat (default: one epoch)")
    parser.add_argument("--warmup-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="DataLoader worker processes (default: CPUs, at most 16)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True, help="also time torch.compile(model)")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend ('eager' checks the code path cheaply)")
    parser.add_argument("--ablations", action=argparse.BooleanOptionalAction, default=True, help="also time svp in fp32 and NCHW")
    parser.add_argument("--time-budget", type=float, default=float("inf"), help="skip parts that would start after this many seconds")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/svp-gpu")))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long CPU check: few images, tiny_cnn, eager compile backend, one thread")
    args = parser.parse_args()
    if args.smoke:
        args.examples, args.batch_size = args.examples or 256, 32
        args.steps, args.warmup_steps, args.repeats = args.steps or 3, 1, 1
        args.model, args.proxies, args.compile_backend = "tiny_cnn", "", "eager"
        args.workers = 1 if args.workers is None else args.workers
        # One thread, as svp's CPU jobs use: torch's default spins badly on a busy small machine.
        args.threads = args.threads or 1
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    elapsed = lambda: time.perf_counter() - started  # noqa: E731
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    workers = args.workers if args.workers is not None else min(os.cpu_count() or 1, 16)
    for line in environment(device):
        print(line)

    x, y = load_cifar(args.data, args.examples)
    mean = (x.reshape(-1, 3).mean(0) / 255).tolist()
    std = (x.reshape(-1, 3).std(0) / 255).tolist()
    data = ImageData.from_arrays(x, y, mean, std, device)
    steps = args.steps or len(data) // args.batch_size
    images = args.batch_size * steps
    print(
        f"{len(data):,} CIFAR-10 training images loaded onto {device} in {elapsed():.1f} s; "
        f"{args.repeats} x {steps} timed steps of {args.batch_size} after {args.warmup_steps} warm-up steps"
    )

    rows: list[dict] = []
    baseline_rate: dict[str, float] = {}

    def record(variant: str, model_name: str, warmup_s: float, seconds: list[float], note: str = "") -> None:
        best = min(seconds)
        rate = images / best
        if variant == "svp":
            baseline_rate[model_name] = rate
        reference = baseline_rate.get(model_name)
        row = {
            "variant": variant, "model": model_name, "batch": args.batch_size, "images_per_s": f"{rate:,.0f}",
            "ms_per_step": f"{1000 * best / steps:.2f}", "vs_svp": f"{rate / reference:.2f}x" if reference else "",
            "warmup_s": f"{warmup_s:.1f}", "note": note,
        }
        rows.append(row)
        print(f"  [{elapsed():6.1f} s] {variant:<22} {model_name:<16} {rate:>10,.0f} images/s  {row['vs_svp']:>6}  {note}", flush=True)

    def within_budget(part: str) -> bool:
        if elapsed() < args.time_budget:
            return True
        print(f"  [{elapsed():6.1f} s] skipped {part}: the {args.time_budget:.0f} s time budget is spent", flush=True)
        return False

    def svp_variant(variant: str, model_name: str, *, compiled=False, mixed_precision=True, channels_last=True, note=""):
        if not within_budget(f"{variant} ({model_name})"):
            return None
        model = prepare_model(model_name, device, channels_last)
        runner = torch.compile(model, backend=args.compile_backend) if compiled else model
        warmup_s, seconds = 0.0, []
        for repeat in range(args.repeats):
            first, timed = time_svp(runner, data, args.batch_size, args.warmup_steps if repeat == 0 else 2, steps, mixed_precision)
            warmup_s = warmup_s or first
            seconds.append(timed)
        record(variant, model_name, warmup_s, seconds, note)
        return model

    target = svp_variant("svp", args.model, note=f"{count_parameters(prepare_model(args.model, torch.device('cpu'), False)):,} parameters")
    if args.compile:
        svp_variant("svp + torch.compile", args.model, compiled=True, note=f"backend {args.compile_backend}; warmup_s includes compiling")
    if within_budget(f"DataLoader ({args.model})"):
        dataset = TransformedImages(data.images.cpu(), data.labels.cpu(), mean, std)
        model = prepare_model(args.model, device, True)
        warmup_s, seconds = 0.0, []
        for repeat in range(args.repeats):
            first, timed = time_dataloader(
                model, dataset, device, args.batch_size, args.warmup_steps if repeat == 0 else 2, steps, workers, True
            )
            warmup_s = warmup_s or first
            seconds.append(timed)
        record("DataLoader", args.model, warmup_s, seconds, f"{workers} workers, torchvision v2, pinned memory")
    if args.ablations and cuda:
        svp_variant("svp fp32", args.model, mixed_precision=False, note="no bf16 autocast")
        svp_variant("svp NCHW", args.model, channels_last=False, note="no channels_last")
    if target is not None and within_budget(f"scoring ({args.model})"):
        seconds = time_scoring(target, data, 1024, True)
        rate = len(data) / seconds
        rows.append({"variant": "svp scoring", "model": args.model, "batch": 1024, "images_per_s": f"{rate:,.0f}",
                     "ms_per_step": "", "vs_svp": "", "warmup_s": "", "note": "predict_logits over the training set"})
        print(f"  [{elapsed():6.1f} s] {'svp scoring':<22} {args.model:<16} {rate:>10,.0f} images/s", flush=True)
    for proxy in filter(None, args.proxies.split(",")):
        model = svp_variant("svp", proxy, note=f"proxy candidate, {count_parameters(prepare_model(proxy, torch.device('cpu'), False)):,} parameters")
        if model is not None:
            rows[-1]["vs_svp"] = f"{baseline_rate[proxy] / baseline_rate[args.model]:.2f}x {args.model}" if args.model in baseline_rate else ""

    print()
    print(f"Training throughput, {args.model} on CIFAR-10 (images per second; vs_svp: against svp's loop):")
    print(format_table(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "throughput.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "throughput.md").write_text("\n".join(environment(device)) + "\n\n" + markdown_table(rows) + "\n")
    compiled = next((row for row in rows if row["variant"] == "svp + torch.compile"), None)
    if compiled and args.model in baseline_rate:
        gain = float(compiled["vs_svp"].rstrip("x"))
        eager_rate = baseline_rate[args.model]
        compiled_rate = eager_rate * gain
        # Images after which compiling has paid for itself: compile time / time saved per image.
        saved_per_image = 1 / eager_rate - 1 / compiled_rate
        compile_s = float(compiled["warmup_s"])
        verdict = (
            f"pays after {compile_s / saved_per_image:,.0f} images ({compile_s / saved_per_image / len(data):.1f} epochs)"
            if saved_per_image > 0 else "does not pay"
        )
        print(f"torch.compile: {gain:.2f}x the eager throughput, {compile_s:.1f} s to compile and warm up: {verdict}")
    print(f"throughput tables written to {args.out}/throughput.csv and throughput.md ({elapsed():.1f} s)")


if __name__ == "__main__":
    main()
