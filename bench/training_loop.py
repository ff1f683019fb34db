"""Benchmark: one svp training epoch against a bare loop doing the same work.

For each model, one epoch over N CIFAR-10 training images (batch 128, random crop with
4 pixels of padding and flip, SGD with momentum and weight decay):

* baseline: a bare loop over the same batches: the same shuffled order, for each batch
  one ``index_select`` of the uint8 pixels, the crop and flip as one gather, normalising,
  forward, cross-entropy, backward and SGD step, nothing else (written out here, not
  svp's code, but the same operations, so that it ends with the same weights);
* ``svp.training.train`` for one epoch, as the train stage calls it (progress bar,
  loss and accuracy kept on the device, the learning-rate schedule; no test
  evaluation, no resume file); its final weights must equal the baseline's;
* what two changes gained, each against the baseline: the bare loop with model and
  batches in the standard (N, C, H, W) layout (svp before it kept images
  channels-last), and the bare loop in a fresh process with glibc's default memory
  handling (svp now keeps freed memory: ``svp.trainers.torch_trainer.keep_freed_memory``, which every
  other row here runs after).

Run: .venv/bin/python bench/training_loop.py [--models tiny_cnn:10000 preact_resnet20:512]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cifar_pixels, header, interleaved, ratio_line  # noqa: E402

from svp.trainers import torch_trainer  # noqa: E402
from svp.models.networks import create_model  # noqa: E402
from svp.training.loop import ImageData, TrainingSettings, train  # noqa: E402

AUGMENT = {"crop_padding": 4, "flip": True}
SEED = 0


def settings(batch_size: int) -> TrainingSettings:
    return TrainingSettings(lr_schedule=[{"epochs": 1, "lr": 0.05}], batch_size=batch_size, eval_every=0)


def fresh_model(name: str, channels_last: bool = True) -> torch.nn.Module:
    torch.manual_seed(SEED)
    model = create_model(name, 10, 3)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def bare_epoch(model: torch.nn.Module, data: ImageData, batch_size: int, channels_last: bool = True) -> None:
    """One epoch written out: gather, augment, normalise, forward, backward, step."""
    setup = settings(batch_size)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=setup.lr_at(0), momentum=setup.momentum, weight_decay=setup.weight_decay
    )
    generator = torch.Generator().manual_seed(SEED)
    pixels = data.images.permute(0, 2, 3, 1)  # (N, H, W, C) uint8
    n, height, width, channels = pixels.shape
    pad = AUGMENT["crop_padding"]
    shift = (data.mean * 255).flatten().repeat(height * width)
    scale = (data.std * 255).flatten().repeat(height * width)
    rows = torch.arange(height).view(1, height, 1)
    columns = torch.arange(width).view(1, 1, width)
    model.train()
    shuffled = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        index = shuffled[start : start + batch_size]
        batch = len(index)
        images = F.pad(pixels.index_select(0, index), (0, 0, pad, pad, pad, pad))
        top = torch.randint(0, 2 * pad + 1, (batch, 1, 1), generator=generator)
        left = torch.randint(0, 2 * pad + 1, (batch, 1, 1), generator=generator)
        flipped = torch.rand(batch, generator=generator) < 0.5
        positions = (top + rows) * (width + 2 * pad) + left + torch.where(flipped.view(batch, 1, 1), width - 1 - columns, columns)
        positions = positions.view(batch, -1, 1).expand(batch, height * width, channels)
        cropped = images.reshape(batch, -1, channels).gather(1, positions).reshape(batch, -1)
        inputs = torch.sub(cropped, shift).div_(scale).view(batch, height, width, channels).permute(0, 3, 1, 2)
        if not channels_last:
            inputs = inputs.contiguous()
        loss = F.cross_entropy(model(inputs), data.labels.index_select(0, index))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def svp_epoch(model: torch.nn.Module, data: ImageData, batch_size: int) -> None:
    with contextlib.redirect_stderr(io.StringIO()):  # its progress bars
        train(model, data, torch.arange(len(data)), settings(batch_size), AUGMENT, SEED, None, log=lambda _: None)


def load(n: int, cache: Path | None = None) -> tuple[ImageData, str]:
    """``n`` images as svp holds them; ``cache``: an .npz of them written by an earlier call."""
    if cache is not None and cache.exists():
        with np.load(cache) as archive:
            x, y, source = archive["x"], archive["y"], str(archive["source"])
    else:
        x, y, source = cifar_pixels(n)
        if cache is not None:
            np.savez(cache, x=x, y=y, source=source)
    mean = (x.reshape(-1, 3).mean(0) / 255).tolist()
    std = (x.reshape(-1, 3).std(0) / 255).tolist()
    return ImageData.from_arrays(x, y, mean, std, torch.device("cpu")), source


def bare_in_child(name: str, cache: Path, batch_size: int, keep_freed: bool) -> float:
    """One bare epoch in a fresh process: its own seconds."""
    command = [sys.executable, __file__, "--child", name, str(cache), str(batch_size), str(int(keep_freed))]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()[-1])


def child(name: str, cache: Path, batch_size: int, keep_freed: bool) -> None:
    torch.set_num_threads(1)
    if keep_freed:
        torch_trainer.keep_freed_memory()
    data, _ = load(0, cache)
    warm_up = ImageData(data.images[: 2 * batch_size], data.labels[: 2 * batch_size], data.mean, data.std)
    bare_epoch(fresh_model(name), warm_up, batch_size)  # oneDNN builds its kernels on first use
    model = fresh_model(name)
    started = time.perf_counter()
    bare_epoch(model, data, batch_size)
    print(time.perf_counter() - started)


def bench_model(name: str, n: int, batch_size: int, repeats: int, folder: Path) -> None:
    cache = folder / f"cifar{n}.npz"
    data, source = load(n, cache)
    bare_epoch(fresh_model(name), data, batch_size)  # warm-up
    models = {}

    def timed(kind, epoch, channels_last=True):
        def run():
            models[kind] = fresh_model(name, channels_last)
            epoch(models[kind])

        return run

    seconds = interleaved(
        {
            "bare": timed("bare", lambda m: bare_epoch(m, data, batch_size)),
            "svp": timed("svp", lambda m: svp_epoch(m, data, batch_size)),
            "bare_standard_layout": timed("standard", lambda m: bare_epoch(m, data, batch_size, False), False),
        },
        repeats,
    )
    same = all(torch.equal(a, b) for a, b in zip(models["svp"].state_dict().values(), models["bare"].state_dict().values()))
    children = {keep: [] for keep in (True, False)}
    for _ in range(max(3, repeats // 2)):  # a fresh process each: fewer repeats
        for keep in children:
            children[keep].append(bare_in_child(name, cache, batch_size, keep))
    rate = n / sorted(seconds["bare"])[len(seconds["bare"]) // 2]
    print(f"\n{name}, one epoch of {n:,} images ({source}), batch {batch_size}, {torch.get_num_threads()} thread(s); "
          f"baseline: bare loop, {rate:,.0f} images/s; svp's weights equal the bare loop's: {same}")  # fmt: skip
    print(ratio_line("svp.training.train, one epoch", seconds["svp"], seconds["bare"], goal=1.05))
    print(ratio_line("bare loop in the standard NCHW layout (svp before channels-last)", seconds["bare_standard_layout"], seconds["bare"]))
    print(
        ratio_line("bare loop in a fresh process, glibc's default memory handling", children[False], children[True])
        + " (baseline here: the same in a fresh process after keep_freed_memory)"
    )


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        name, cache, batch_size, keep = sys.argv[2:]
        return child(name, Path(cache), int(batch_size), keep == "1")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["tiny_cnn:10000", "preact_resnet20:512"], help="name:examples")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a CPU-only workflow job has 1)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch_trainer.keep_freed_memory()  # as the train stage does, for every row measured here
    header("Training loop", "bench/training_loop.py " + " ".join(sys.argv[1:]))
    print(f"median of {args.repeats} interleaved repeats (min-max)")
    with tempfile.TemporaryDirectory(prefix="svp-bench-training-") as folder:
        for spec in args.models:
            name, n = spec.split(":")
            bench_model(name, int(n), args.batch_size, args.repeats, Path(folder))


if __name__ == "__main__":
    main()
