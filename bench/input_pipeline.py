"""Benchmark: svp's on-device batched input pipeline against a torchvision DataLoader.

Both produce the same thing per step: a normalised, randomly cropped (padding 4) and
flipped batch of 128 CIFAR-10 images. svp gathers the batch from one uint8 tensor and
augments it whole (svp.training); the baseline is the usual torchvision recipe: a
Dataset of PIL-free uint8 tensors with per-example transforms.v2 and a DataLoader.
Optionally (--model) both also run forward+backward+SGD on a model, which is what a
training epoch costs end to end.

Run: .venv/bin/python bench/input_pipeline.py [--data ../shared/data/cifar10 --batches 200 --model tiny_cnn]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CIFAR, header, interleaved, median, ratio_line, spread  # noqa: E402

from svp.models.networks import create_model  # noqa: E402
from svp.training.loop import ImageData  # noqa: E402


def load_cifar(folder: Path, limit: int) -> tuple[np.ndarray, np.ndarray]:
    with np.load(folder / "train-0.npz") as archive:
        return archive["x"][:limit], archive["y"][:limit]


class TensorImages(torch.utils.data.Dataset):
    """The baseline: one example at a time, transformed on access."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean, std):
        self.images = torch.from_numpy(x).permute(0, 3, 1, 2)
        self.labels = torch.from_numpy(y)
        self.transform = v2.Compose(
            [
                v2.RandomCrop(32, padding=4),
                v2.RandomHorizontalFlip(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), self.labels[index]


def svp_batches(data: ImageData, batch_size: int, batches: int):
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(data), generator=generator)
    for step in range(batches):
        start = (step * batch_size) % (len(data) - batch_size)
        yield data.augmented_batch(order[start : start + batch_size], {"crop_padding": 4, "flip": True}, generator)


def baseline_batches(dataset: TensorImages, batch_size: int, batches: int, workers: int):
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)
    step = 0
    while True:
        for images, labels in loader:
            if step == batches:
                return
            yield images, labels
            step += 1


def timed(batches, model=None) -> None:
    """Run through the batches (with a training step of ``model`` on each when given)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9) if model is not None else None
    for images, labels in batches:
        if model is not None:
            loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=CIFAR)
    parser.add_argument("--examples", type=int, default=25000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes for the baseline")
    parser.add_argument("--model", default=None, help="also train this model (e.g. preact_resnet20)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the main process")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    header("Input pipeline", "bench/input_pipeline.py " + " ".join(sys.argv[1:]))
    x, y = load_cifar(args.data, args.examples)
    mean = (x.reshape(-1, 3).mean(0) / 255).tolist()
    std = (x.reshape(-1, 3).std(0) / 255).tolist()
    data = ImageData.from_arrays(x, y, mean, std, torch.device("cpu"))
    dataset = TensorImages(x, y, mean, std)
    print(f"{args.batches} batches of {args.batch_size} CIFAR-10 images, model: {args.model or 'none'}, "
          f"{args.threads} thread(s); median of {args.repeats} interleaved repeats (min-max)")  # fmt: skip
    seconds = interleaved(
        {
            "dataloader": lambda: timed(baseline_batches(dataset, args.batch_size, args.batches, args.workers), fresh(args.model)),
            "svp": lambda: timed(svp_batches(data, args.batch_size, args.batches), fresh(args.model)),
        },
        args.repeats,
    )
    images = args.batches * args.batch_size
    print(f"  baseline, torchvision DataLoader ({args.workers} workers, transforms.v2 per image): {spread(seconds['dataloader'])}, "
          f"{images / median(seconds['dataloader']):,.0f} images/s")  # fmt: skip
    print(ratio_line("svp (svp.training.ImageData.augmented_batch)", seconds["svp"], seconds["dataloader"])
          + f", {images / median(seconds['svp']):,.0f} images/s")  # fmt: skip


def fresh(model_name: str | None):
    return create_model(model_name, 10) if model_name else None


if __name__ == "__main__":
    main()
