"""Make a synthetic ImageNet-layout tree of real JPEGs: what svp's disk data sets are tested and measured on.

The layout is ILSVRC2012's as torchvision's ``ImageNet`` prepares it: ``train/<wnid>/<wnid>_<i>.JPEG``
and ``val/<wnid>/ILSVRC2012_val_<n>.JPEG``. Images vary in size (sides 48 to 500 pixels
by default) and aspect ratio (1:2 to 2:1), as ImageNet's do, and carry ImageNet's odd
files: about one in 20 is grayscale, one in 50 CMYK, and one image of each split is a PNG
named .JPEG (ImageNet's n02105855_2933.JPEG is one). Each class has a colour and a stripe
pattern of its own, under noise, so that a model can learn the classes.

    python bench/imagenet_tree.py OUT --classes 100 --train-per-class 1000 --val-per-class 50
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image


def wnid(label: int) -> str:
    """A WordNet-id-like folder name (n + 8 digits), distinct per class."""
    return f"n{1_000_000 + label * 7_919:08d}"


def _pixels(rng: np.random.Generator, label: int, width: int, height: int, grain: np.ndarray) -> np.ndarray:
    """(height, width, 3) uint8: the class's colour and stripes under noise, drawn small and scaled up
    (cheap), plus fine grain cut from ``grain`` at a random place, so the JPEGs weigh about what
    photographs of their size do (smooth images would compress to a tenth)."""
    hue = np.array([np.sin(label * 2.1), np.sin(label * 2.1 + 2.1), np.sin(label * 2.1 + 4.2)]) * 80 + 128
    stripes = (np.arange(16)[:, None] * (1 + label % 5) // 4 % 2) * (40 if (label // 5) % 2 else -40)
    small = hue[None, None, :] + stripes[:, :, None] + rng.normal(0, 35, (16, 16, 3))
    image = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((width, height), Image.Resampling.BILINEAR)
    top, left = rng.integers(0, grain.shape[0] - height + 1), rng.integers(0, grain.shape[1] - width + 1)
    return np.clip(np.asarray(image, dtype=np.int16) + grain[top : top + height, left : left + width], 0, 255).astype(np.uint8)


def _encode(pixels: np.ndarray, kind: str, quality: int) -> bytes:
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if kind == "png":
        image.save(buffer, format="PNG")
    else:
        mode = {"gray": "L", "cmyk": "CMYK"}.get(kind, "RGB")
        image.convert(mode).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def make_tree(
    root: str | Path,
    classes: int = 10,
    train_per_class: int = 20,
    val_per_class: int = 5,
    seed: int = 0,
    min_side: int = 48,
    max_side: int = 500,
    quality: int = 85,
) -> dict:
    """Write the tree under ``root`` (train/ and val/); return counts of what was written."""
    rng = np.random.default_rng(seed)
    grain = rng.normal(0, 12, (max_side + 64, max_side + 64, 3)).astype(np.int16)
    root = Path(root)
    counts = {"train": 0, "val": 0, "gray": 0, "cmyk": 0, "png": 0, "bytes": 0}
    val_number = 0
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for label in range(classes):
            folder = root / split / wnid(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                side = rng.uniform(min_side, max_side)
                aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
                width = int(np.clip(side * np.sqrt(aspect), 16, max_side))
                height = int(np.clip(side / np.sqrt(aspect), 16, max_side))
                draw = rng.random()
                kind = "png" if (label == 0 and i == 1) else "gray" if draw < 0.05 else "cmyk" if draw < 0.07 else "rgb"
                content = _encode(_pixels(rng, label, width, height, grain), kind, quality)
                if split == "train":
                    name = f"{wnid(label)}_{i}.JPEG"
                else:
                    val_number += 1
                    name = f"ILSVRC2012_val_{val_number:08d}.JPEG"
                (folder / name).write_bytes(content)
                counts[split] += 1
                counts["bytes"] += len(content)
                if kind != "rgb":
                    counts[kind] += 1
    return counts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--train-per-class", type=int, default=1000)
    parser.add_argument("--val-per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-side", type=int, default=48)
    parser.add_argument("--max-side", type=int, default=500)
    args = parser.parse_args(argv)
    counts = make_tree(
        args.out, args.classes, args.train_per_class, args.val_per_class, args.seed, args.min_side, args.max_side
    )
    print(
        f"{args.out}: {counts['train']:,} training and {counts['val']:,} validation images, {counts['bytes'] / 1e9:.2f} GB "
        f"({counts['gray']} grayscale, {counts['cmyk']} CMYK, {counts['png']} PNG named .JPEG)"
    )


if __name__ == "__main__":
    main()
