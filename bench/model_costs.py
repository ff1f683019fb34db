"""What each CPU-sized image model costs per training example, against tiny_cnn in the same run.

SVP pays only when the proxy is much cheaper than the target. This trains each model for
a few seconds at a time on CIFAR-shaped batches through svp's own input path (uint8
gather, crop and flip, normalise) and SGD step, interleaving the models over several
rounds so that a busy machine slows them alike, and prints images per second and each
model's cost per example as a multiple of tiny_cnn's (the median over the rounds).

Run: .venv/bin/python bench/model_costs.py [--threads 2] [--rounds 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from svp.models.networks import create_model
from svp.training.loop import ImageData

MODELS = ["tiny_cnn", "small_cnn", "fast_cnn16", "fast_cnn20", "fast_cnn24", "fast_cnn32", "preact_resnet20"]
AUGMENT = {"crop_padding": 4, "flip": True}


def images_per_second(model, data: ImageData, batch_size: int, seconds: float, generator: torch.Generator) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def step() -> None:
        index = torch.randint(0, len(data), (batch_size,), generator=generator)
        inputs, labels = data.augmented_batch(index, AUGMENT, generator)
        loss = F.cross_entropy(model(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up: first-call allocations and kernel choices
        step()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per model and round")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--models", nargs="+", default=MODELS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5000, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 5000)
    data = ImageData.from_arrays(x, y, [0.5] * 3, [0.25] * 3, torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    models = {name: create_model(name, 10) for name in args.models}
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name].append(images_per_second(model, data, args.batch_size, args.seconds, generator))
    baseline = float(np.median(rates[args.models[0]]))
    print(f"training images per second, {args.threads} threads, batch {args.batch_size}, 32x32x3, median of {args.rounds} rounds")
    print(f"{'model':18s} {'parameters':>10s} {'images/s':>9s} {'cost per example':>17s}")
    for name, model in models.items():
        rate = float(np.median(rates[name]))
        parameters = sum(p.numel() for p in model.parameters())
        print(f"{name:18s} {parameters:10,d} {rate:9,.0f} {baseline / rate:16.1f}x")


if __name__ == "__main__":
    main()
