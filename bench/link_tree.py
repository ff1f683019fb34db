"""An ImageNet-size listing without ImageNet's bytes: a tree whose files are hard links to a few JPEGs.

What preparing and checking a data set read from disk cost at ILSVRC2012's size (1,281,167
training and 50,000 validation files in 1,000 class folders) depends on the number of files,
not on their bytes: listing the folders, reading each header, and the lists the jobs hold.
This makes that many directory entries in a few seconds and a few MB: each one a hard link to
one of the JPEGs of a small synthetic tree (bench/imagenet_tree.py), named as ImageNet's are.

    python bench/link_tree.py data/imagenet-links [--classes 1000 --train 1281167 --val 50000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagenet_tree import make_tree, wnid  # noqa: E402


def link_tree(root: Path, classes: int, train: int, val: int) -> None:
    with tempfile.TemporaryDirectory(dir=root.parent) as scratch:
        make_tree(scratch, classes=4, train_per_class=8, val_per_class=0)
        sources = sorted(str(path) for path in Path(scratch, "train").rglob("*.JPEG"))
        for split, count, name in (("train", train, "{wnid}_{i}.JPEG"), ("val", val, "ILSVRC2012_val_{n:08d}.JPEG")):
            n = 0
            for label in range(classes):
                folder = root / split / wnid(label)
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(count // classes + (label < count % classes)):
                    n += 1
                    os.link(sources[n % len(sources)], folder / name.format(wnid=wnid(label), i=i, n=n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--train", type=int, default=1_281_167)
    parser.add_argument("--val", type=int, default=50_000)
    args = parser.parse_args()
    if args.classes < 1 or args.train < args.classes or args.val < 0:
        parser.error("--classes must be positive, --train at least --classes (a class folder needs a file), --val not negative")
    if args.root.exists():
        sys.exit(f"{args.root} exists; remove it or name another folder")
    args.root.mkdir(parents=True)
    link_tree(args.root, args.classes, args.train, args.val)
    print(f"{args.root}: {args.train:,} training and {args.val:,} validation files in {args.classes:,} class folders, hard links")


if __name__ == "__main__":
    main()
