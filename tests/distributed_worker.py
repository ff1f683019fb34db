"""One training run of svp's loop, alone or as one rank under torchrun: what tests/test_distributed.py compares.

    python tests/distributed_worker.py OUT                                  # one process
    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py OUT

A tiny network without BatchNorm (two linear layers: with BatchNorm, the CPU ranks would
each normalise by their own half batch, torch having no SyncBatchNorm there) trains on
161 synthetic 8x8 images, augmented (random crop and flip), with forgetting counted. 161
is 5 batches of 32 and one of 1, so the last batch leaves rank 1 of 2 nothing. Each
process saves to OUT/rank<r>.pt its history, weights, forgetting counts and every batch
the loop asked its data for (the indices, and the inputs it got back).
"""

import sys
from pathlib import Path

import numpy as np
import torch

from svp.training import distributed
from svp.training.forgetting import ForgettingTracker
from svp.training.loop import ImageData, TrainingSettings, train

N, CLASSES, BATCH = 161, 2, 32
SETTINGS = {"batch_size": BATCH, "lr_schedule": [{"epochs": 3, "lr": 0.05}], "eval_every": 0, "momentum": 0.9}


def synthetic_images(n: int = N, seed: int = 0):
    """uint8 (n, 8, 8, 1) noise images, brighter in the top half for class 1 and in the bottom
    half for class 0 (which a horizontal flip keeps, and a crop of 2 pixels mostly does)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=n)
    x = rng.integers(0, 128, size=(n, 8, 8, 1), dtype=np.uint8)
    x[y == 1, :4] += 128
    x[y == 0, 4:] += 128
    return x, y.astype(np.int64)


def recording(method, batches: list):
    def record(index, *args, **kwargs):
        inputs, labels = method(index, *args, **kwargs)
        batches.append((index.clone(), inputs.clone()))
        return inputs, labels

    return record


def main(out: Path) -> None:
    torch.set_num_threads(1)
    ranks = distributed.from_environment()
    with distributed.process_group(ranks) as device:
        x, y = synthetic_images()
        data = ImageData.from_arrays(x, y, [0.5], [0.25], device)
        batches = []
        data.augmented_batch = recording(data.augmented_batch, batches)
        torch.manual_seed(7)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, CLASSES))
        forgetting = ForgettingTracker(N, device)
        history = train(
            model, data, torch.arange(N), TrainingSettings.from_dict(SETTINGS), {"crop_padding": 2, "flip": True},
            seed=3, forgetting=forgetting, ranks=ranks,
        )
        torch.save(
            {"history": history, "weights": model.state_dict(), "forgetting": forgetting.state_dict(), "batches": batches},
            out / f"rank{ranks.rank}.pt",
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
