"""Image data sets too large for memory, read from disk: ``imagenet`` and a large ``image_folder``.

Preparing such a data set copies nothing. It lists the images, reads each one's header
(size, mode, format) in parallel, and writes the list as each split's .npz: the paths
(relative to the split's folder, UTF-8, packed), labels and sizes. The manifest's sha256
of those files is the checksum of the list, and each split's listing is checked against
the folder again whenever a job reads it: a file deleted or a class folder added since
preparation stops the job naming them, before any image is read.

With ``dataset.validation`` the validation split (``svp.data.validation``) is a share of
the training list, written as ``validation.npz`` in the same form: its images stay in the
training folder, but no job trains on, scores or selects them; each run's error on them
is its ``validation_error``. An image_folder's channel statistics are estimated from the
training list once that share is out.

Jobs then decode the images as they train or score (``svp.training.disk_data``: a
map-style dataset read by DataLoader workers), so a 30 % subset reads 30 % of the files.
Training takes a random-resized crop and a flip; scoring and evaluation resize and take
the centre crop, un-augmented; both at ``dataset.image_size`` (default 224).

Bad files are found at preparation: a file Pillow cannot identify, or one whose header
claims more than 8192x8192 pixels, always; a truncated or corrupt JPEG only when
``dataset.check_images: decode`` decodes every image (a second pass over the data).
Each stops preparation naming the files, or, with ``dataset.skip_bad_images: true``, is
left out, counted in the manifest and listed in the log. Grayscale, CMYK and palette
images, and PNGs named .JPEG (ImageNet has one), are read and converted to RGB.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from svp.data.registry import (
    MAX_CLASSES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    bool_option,
    check_classes,
    config_key,
    int_option,
    is_dir,
    register_dataset,
    required_option,
)
from svp.data.encoding import TextArray
from svp.errors import ConfigError, DataError

# torchvision's ImageFolder's extensions: the files a class folder's images may end with.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
DEFAULT_IMAGE_SIZE = 224
# Evaluation resizes the shorter side to image_size x 256 / 224, then takes the centre
# crop: the ratio torchvision's ImageNet models are evaluated with.
RESIZE_RATIO = 256 / 224
# ImageNet's channel mean and std (torchvision's pretrained weights expect them).
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# Images sampled (evenly over the training list) to estimate an image_folder's channel statistics.
STATISTICS_SAMPLE = 500
WNID = re.compile(r"^n\d{8}$")
SHOWN = 5  # files named in a message
REPREPARE = "rerun the prepare step (`snakemake --forcerun prepare_data ...`, or `svp prepare`)"
IMAGENET_LAYOUT = (
    "ILSVRC2012 as torchvision's ImageNet prepares it: <path>/train/<wnid>/*.JPEG and <path>/val/<wnid>/*.JPEG, "
    "one folder per class named by its WordNet id (n01440764, ...). Extract ILSVRC2012_img_train.tar (and each "
    "class's tar inside it) into train/; sort the 50,000 validation images into val/<wnid>/ with "
    "torchvision.datasets.ImageNet(path, split='val') (it reads ILSVRC2012_devkit_t12.tar.gz beside them) or "
    "the usual valprep.sh"
)


# --------------------------------------------------------------------------- listing


def listing_digest(classes, class_paths: Callable[[str], list[bytes]]) -> str:
    """The checksum of a split's list: sha256 of its sorted relative paths ("class/file" in UTF-8,
    each ended by a NUL), fed a class folder at a time (``class_paths``: a class's sorted paths),
    so that no list of all paths is needed. Every path of a class starts with "name/", so the
    sorted paths are each class's, class after class in the order of "name/" (not the labels'
    order: "n01-a/" sorts before "n01/", though "n01" < "n01-a")."""
    digest = hashlib.sha256()
    for name in sorted(classes, key=lambda name: name + "/"):
        for path in class_paths(name):
            digest.update(path + b"\0")
    return digest.hexdigest()


def _class_files(folder: Path, name: str, real: Path) -> list[str]:
    """The sorted image file names of the class folder ``folder/name``, checked."""
    files = []
    for entry in sorted(os.scandir(folder / name), key=lambda e: e.name):
        if entry.is_dir():
            raise DataError(
                f"{entry.path}: a folder inside the class folder {folder / name}; its images would silently join "
                "that class. Images must sit directly in their class folder: move them up, or delete the folder"
            )
        if not entry.name.lower().endswith(IMAGE_EXTENSIONS):
            continue
        if entry.is_symlink() and not Path(entry.path).resolve().is_relative_to(real):
            raise DataError(
                f"{entry.path}: a symbolic link that leads outside {folder}; it would pull other files into this "
                "split: replace it with a copy of the file, or remove it"
            )
        files.append(entry.name)
    if not files:
        raise DataError(
            f"{folder / name}: an empty class folder (no file ending in {', '.join(IMAGE_EXTENSIONS)}); a class "
            "needs images to be learnt: add its images, or remove the folder"
        )
    return files


def _utf8(path: str, folder: Path) -> bytes:
    try:
        return path.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir hands undecodable bytes over as surrogates
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise DataError(
            f"{folder / shown}: a file or folder name that is not UTF-8 (the \ufffd marks the bytes); svp lists "
            "paths as UTF-8: rename it"
        ) from None


def list_split(folder: Path, option: str = "path") -> tuple[list[str], TextArray, np.ndarray, str]:
    """(classes, relative paths, labels, listing digest) of a folder of class folders, sorted.

    As torchvision's ImageFolder, but a class folder without an image, a folder inside a
    class folder, or a link leading out of ``folder`` is refused rather than skipped or
    followed. The paths come packed (UTF-8 bytes and offsets: tens of bytes an image, where a
    list of str takes about a hundred, and ImageNet has 1.28 million), listed a class at a time.
    The digest is ``listing_digest``'s, computed as the paths are listed.
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(f"config key {config_key(option)}: {folder} is not a folder; it must hold one folder of images per class") from None
    classes = [e.name for e in entries if e.is_dir()]
    if not classes:
        raise DataError(f"config key {config_key(option)}: {folder} holds no class folder; it must hold one folder of images per class")
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{folder}: {len(classes):,} class folders, more than the {MAX_CLASSES:,} svp accepts")
    real = folder.resolve()
    packed: dict[str, tuple[bytes, np.ndarray]] = {}

    def class_paths(name: str) -> list[bytes]:
        encoded = [_utf8(f"{name}/{file}", folder) for file in _class_files(folder, name, real)]
        packed[name] = (b"".join(encoded), np.array([len(path) for path in encoded], dtype=np.int64))
        return encoded

    digest = listing_digest(classes, class_paths)
    lengths = [packed[name][1] for name in classes]
    offsets = np.zeros(sum(map(len, lengths)) + 1, dtype=np.int64)
    np.cumsum(np.concatenate(lengths), out=offsets[1:])
    data = np.frombuffer(b"".join(packed.pop(name)[0] for name in classes), dtype=np.uint8).copy()
    labels = np.repeat(np.arange(len(classes), dtype=np.int64), [len(counts) for counts in lengths])
    return classes, TextArray(data, offsets), labels, digest


def count_images(folder: Path) -> int:
    """Image files in ``folder``'s class folders, counted without checking anything (to choose where to hold them)."""
    try:
        return sum(
            1 for entry in os.scandir(folder) if entry.is_dir()
            for image in os.scandir(entry.path) if image.name.lower().endswith(IMAGE_EXTENSIONS)
        )
    except OSError:  # the builder that reads the folder says what is wrong with it
        return 0


# --------------------------------------------------------------------------- headers


def inspect_image(path: str, decode: bool) -> tuple[int, int, str, str, str | None]:
    """(width, height, mode, format, problem) of one file; ``problem`` is None when it can be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size is checked below
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_IMAGE_PIXELS:
                    return width, height, image.mode, str(image.format), (
                        f"its header claims {width}x{height} pixels; svp reads images of at most "
                        f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}"
                    )
                if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                    return width, height, image.mode, str(image.format), f"16-bit or floating-point pixels (mode {image.mode})"
                if decode:
                    image.load()
                return width, height, image.mode, str(image.format), None
    except UnidentifiedImageError:
        return 0, 0, "", "", "not an image Pillow can read (unknown format, empty or corrupt)"
    except Image.DecompressionBombError:
        return 0, 0, "", "", "Pillow refuses it as a possible decompression bomb"
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        return 0, 0, "", "", f"cannot be decoded ({str(error).strip() or type(error).__name__}): truncated or corrupt"


@dataclass
class Headers:
    """What reading a split's headers found: each image's (width, height), the problem of each
    one that cannot be read (by position), and the modes and formats of the readable ones."""

    sizes: np.ndarray  # int32 (N, 2)
    problems: dict[int, str]
    modes: Counter
    formats: Counter


# The split the reader processes inspect, (folder, paths, decode), set as each starts: the
# packed list is handed over once a process, and each task is a range of positions.
_SPLIT: tuple | None = None


def _start_reader(folder: str, paths: TextArray, decode: bool) -> None:
    global _SPLIT
    _SPLIT = (folder, paths, decode)


def _inspect_range(bounds: tuple[int, int], split: tuple | None = None) -> Headers:
    folder, paths, decode = split or _SPLIT
    first, last = bounds
    found = Headers(np.zeros((last - first, 2), dtype=np.int32), {}, Counter(), Counter())
    for row, index in enumerate(range(first, last)):
        width, height, mode, kind, problem = inspect_image(os.path.join(folder, paths[index]), decode)
        found.sizes[row] = width, height
        if problem is None:
            found.modes[mode] += 1
            found.formats[kind] += 1
        else:
            found.problems[index] = problem
    return found


def loader_workers() -> int:
    """Processes that read images: $SVP_LOADER_WORKERS, else the CPUs this process may use, at most 8."""
    if os.environ.get("SVP_LOADER_WORKERS", "").strip():
        try:
            return max(0, int(os.environ["SVP_LOADER_WORKERS"]))
        except ValueError:
            raise ConfigError(f"SVP_LOADER_WORKERS={os.environ['SVP_LOADER_WORKERS']!r} is not a whole number") from None
    return min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def inspect_split(folder: Path, paths: TextArray, decode: bool) -> Headers:
    """inspect_image of every path, over the reader processes."""
    chunk = 512
    ranges = [(start, min(start + chunk, len(paths))) for start in range(0, len(paths), chunk)]
    workers = loader_workers()
    if workers <= 1 or len(ranges) <= 1:
        parts = [_inspect_range(bounds, (str(folder), paths, decode)) for bounds in ranges]
    else:
        with ProcessPoolExecutor(workers, initializer=_start_reader, initargs=(str(folder), paths, decode)) as pool:
            parts = list(pool.map(_inspect_range, ranges))
    return Headers(
        np.concatenate([part.sizes for part in parts]) if parts else np.zeros((0, 2), dtype=np.int32),
        {index: problem for part in parts for index, problem in part.problems.items()},
        sum((part.modes for part in parts), Counter()),
        sum((part.formats for part in parts), Counter()),
    )


# --------------------------------------------------------------------------- the prepared form


def list_arrays(paths: TextArray, y: np.ndarray, sizes: np.ndarray) -> dict:
    """A split's list as its .npz holds it: labels, the packed paths (UTF-8 bytes and each path's
    end) and each image's (width, height)."""
    return {"y": y, "path_bytes": paths.data, "path_ends": paths.offsets[1:], "sizes": sizes}


@dataclass
class PreparedDisk:
    """A data set read from disk, as its builder returns it: the lists, not the pixels."""

    name: str
    root: Path
    split_folders: dict  # split -> folder name under root ("train", "val")
    classes: list[str]
    paths: dict  # split -> relative paths, packed (TextArray)
    y: dict  # split -> int64 labels
    sizes: dict  # split -> int32 (N, 2) width, height
    listings: dict  # split -> listing_digest of every image file found (skipped ones too)
    skipped: dict  # split -> [(relative path, problem)]
    image_size: int
    mean: list[float] | None  # None: estimated from the training images once the validation split is out
    std: list[float] | None
    flip: bool
    source: str
    modes: dict = field(default_factory=dict)
    formats: dict = field(default_factory=dict)
    modality: str = "image"
    storage: str = "disk"
    source_files: dict = field(default_factory=dict)

    @property
    def y_train(self) -> np.ndarray:
        return self.y["train"]

    @property
    def y_test(self) -> np.ndarray:
        return self.y["test"]

    def validate(self, name: str) -> None:
        for split in ("train", "test"):
            if not len(self.y[split]):
                raise DataError(f"data set {name!r}: no readable image in {self.root / self.split_folders[split]}")
        check_classes(name, self.classes, self.y_train, self.y_test)

    def hold_out(self, train: np.ndarray, held: np.ndarray) -> dict:
        """Take the training rows ``held`` out as the validation split (``svp.data.validation``),
        keeping ``train``; return the split's list {"paths", "y", "sizes"}: a share of the
        training folder's images, which stay where they are."""
        paths, y, sizes = self.paths["train"], self.y["train"], self.sizes["train"]
        validation = {"paths": paths.take(held), "y": y[held], "sizes": sizes[held]}
        self.paths["train"], self.y["train"], self.sizes["train"] = paths.take(train), y[train], sizes[train]
        return validation

    def split_arrays(self) -> dict:
        return {split: list_arrays(self.paths[split], self.y[split], self.sizes[split]) for split in ("train", "test")}

    def manifest_fields(self, arrays) -> dict:
        if self.mean is None:  # from the training list as it is now: no validation image counts
            self.mean, self.std = _channel_statistics(self.root / self.split_folders["train"], self.paths["train"], self.image_size)
        return {
            "storage": "disk",
            "root": str(self.root),
            "split_folders": dict(self.split_folders),
            "listings": dict(self.listings),
            "skipped": {split: [f"{path}: {problem}" for path, problem in rows] for split, rows in self.skipped.items()},
            "modes": self.modes,
            "formats": self.formats,
            "image_shape": [self.image_size, self.image_size, 3],
            "resize": round(self.image_size * RESIZE_RATIO),
            "augment": {"crop_padding": 0, "flip": self.flip},
            "mean": self.mean,
            "std": self.std,
        }


def _check_split(folder: Path, paths: TextArray, problems: dict[int, str], skip: bool, split: str) -> np.ndarray:
    """The positions of the readable images; the bad ones refused, or (``skip``) left out, listed."""
    bad = sorted(problems.items())
    if bad and not skip:
        shown = "; ".join(f"{folder / paths[index]}: {problem}" for index, problem in bad[:SHOWN])
        more = f" (and {len(bad) - SHOWN:,} more)" if len(bad) > SHOWN else ""
        raise DataError(
            f"{len(bad):,} of the {len(paths):,} images in {folder} cannot be read: {shown}{more}. Replace or remove "
            f"them, or set {config_key('skip_bad_images')}: true to leave them out (counted and listed in the manifest)"
        )
    for index, problem in bad:
        print(f"skipped {folder / paths[index]}: {problem}", flush=True)
    if bad:
        print(f"skipped {len(bad):,} of {len(paths):,} images of the {split} split ({config_key('skip_bad_images')})", flush=True)
    keep = np.ones(len(paths), dtype=bool)
    keep[[index for index, _ in bad]] = False
    return np.flatnonzero(keep)


def prepare_disk(
    name: str, options: Mapping, root: Path, split_folders: dict, mean=None, std=None
) -> PreparedDisk:
    """List and check both splits of ``root`` (``split_folders``: split -> folder), reading headers only
    (every pixel with ``check_images: decode``); channel statistics from ``mean``/``std``, or, without
    them, from a sample of the training images when the manifest is written (after the validation
    split, if any, is taken out)."""
    size = int_option(options, "image_size", DEFAULT_IMAGE_SIZE, minimum=8)
    if size > MAX_IMAGE_SIDE:
        raise DataError(f"config key {config_key('image_size')}: {size} is above {MAX_IMAGE_SIDE}, the largest image side svp reads")
    check = options.get("check_images", "header")
    if check not in ("header", "decode"):
        raise DataError(f"config key {config_key('check_images')}: expected header or decode, got {check!r}")
    skip = bool_option(options, "skip_bad_images", False)
    flip = bool_option(options, "flip", True)
    listed = {split: list_split(root / folder) for split, folder in split_folders.items()}
    classes = listed["train"][0]
    if listed["test"][0] != classes:
        extra = sorted(set(listed["test"][0]) - set(classes))
        lacking = sorted(set(classes) - set(listed["test"][0]))
        raise DataError(
            f"config key {config_key('path')}: {root / split_folders['test']} has other class folders than "
            f"{root / split_folders['train']} (only in {split_folders['test']}: {extra[:SHOWN]}; only in "
            f"{split_folders['train']}: {lacking[:SHOWN]}); both splits need the same class folders"
        )
    prepared = dict(paths={}, y={}, sizes={}, listings={}, skipped={})
    modes: Counter = Counter()
    formats: Counter = Counter()
    for split, folder in split_folders.items():
        _, paths, labels, prepared["listings"][split] = listed[split]
        print(f"reading the {'pixels' if check == 'decode' else 'headers'} of {len(paths):,} {split} images in {root / folder}", flush=True)
        headers = inspect_split(root / folder, paths, decode=check == "decode")
        keep = _check_split(root / folder, paths, headers.problems, skip, split)
        whole = len(keep) == len(paths)
        prepared["paths"][split] = paths if whole else paths.take(keep)
        prepared["y"][split] = labels if whole else labels[keep]
        prepared["sizes"][split] = headers.sizes if whole else headers.sizes[keep]
        prepared["skipped"][split] = [(paths[index], problem) for index, problem in sorted(headers.problems.items())]
        modes.update(headers.modes)
        formats.update(headers.formats)
    return PreparedDisk(
        name=name, root=root, split_folders=dict(split_folders), classes=classes, image_size=size, mean=mean, std=std,
        flip=flip, modes=dict(modes), formats=dict(formats), **prepared,
        source=f"image files in {root} ({', '.join(f'{s}: {f}/' for s, f in split_folders.items())}), read from disk at "
        f"{size}x{size}; nothing copied",
    )


def _channel_statistics(folder: Path, paths: TextArray, size: int) -> tuple[list[float], list[float]]:
    """Channel mean and std in [0, 1] of up to STATISTICS_SAMPLE training images, evenly spaced, centre-cropped."""
    from PIL import Image, ImageOps

    picked = np.unique(np.linspace(0, len(paths) - 1, min(len(paths), STATISTICS_SAMPLE)).astype(int))
    total = np.zeros(3)
    total_sq = np.zeros(3)
    count = 0
    for index in picked:
        with Image.open(folder / paths[index]) as image:
            pixels = np.asarray(ImageOps.fit(image.convert("RGB"), (size, size)), dtype=np.float64).reshape(-1, 3) / 255
        total += pixels.sum(0)
        total_sq += np.square(pixels).sum(0)
        count += len(pixels)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return [float(m) for m in mean], [float(max(s, 1 / 255)) for s in std]


# --------------------------------------------------------------------------- reading back


@dataclass
class DiskSplit:
    """A prepared split's images as files: what ``load_prepared`` returns as ``x`` for disk data."""

    folder: Path
    # Packed, not a list of str: a DataLoader worker reading an element of a list writes its
    # reference count, so over an epoch each worker would copy the whole list (some 110 MB at
    # ImageNet's 1.28 million paths; bench/path_memory.py), where numpy's arrays are only read.
    paths: TextArray
    sizes: np.ndarray
    image_size: int
    resize: int

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """As an in-memory split's (N, H, W, C): the size the models read."""
        return (len(self.paths), self.image_size, self.image_size, 3)


# The split whose folder each prepared split's images are in: the validation split
# (svp.data.validation) is a share of the training folder's.
FOLDER_OF = {"train": "train", "test": "test", "validation": "train"}


def paths_of(arrays: Mapping, npz_path: Path, hint: str) -> TextArray:
    """The relative paths a split's .npz lists, checked: each a non-empty piece of valid UTF-8."""
    try:
        data, ends = arrays["path_bytes"], arrays["path_ends"]
    except KeyError as error:
        raise DataError(f"{npz_path}: not a disk data set's file list (no {error}); {hint}") from None
    ok = data.dtype == np.uint8 and data.ndim == 1 and ends.dtype == np.int64 and ends.ndim == 1
    offsets = np.concatenate([np.zeros(1, dtype=np.int64), ends]) if ok else None
    ok = ok and offsets[-1] == len(data) and bool(np.all(np.diff(offsets) > 0))
    # The whole is UTF-8 and no path starts inside a character (a continuation byte, 10xxxxxx):
    # then every path decodes, and workers need not find out one at a time.
    ok = ok and _is_utf8(data) and not np.any((data[offsets[:-1]] & 0xC0) == 0x80)
    if not ok:
        raise DataError(f"{npz_path}: not a disk data set's file list (inconsistent path_bytes and path_ends); {hint}")
    return TextArray(data, offsets)


def _is_utf8(data: np.ndarray, block: int = 1 << 20) -> bool:
    """Whether the bytes are UTF-8, decoded a block at a time (not a copy of them all, and their text)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(data), block):
            decoder.decode(data[start : start + block].tobytes())
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def read_split(
    arrays: Mapping, manifest: dict, split: str, npz_path: Path, hint: str, also_listed: Callable[[], TextArray] | None = None
) -> tuple[DiskSplit, np.ndarray]:
    """(DiskSplit, labels) of a split's .npz (``train``, ``test`` or ``validation``), after checking its
    folder's listing is the one prepared. ``also_listed`` gives the paths of the other split prepared
    from the same folder (training and validation), read only to tell what changed in it."""
    paths = paths_of(arrays, npz_path, hint)
    try:
        y, sizes = arrays["y"], arrays["sizes"]
    except KeyError as error:
        raise DataError(f"{npz_path}: not a disk data set's file list ({error}); {hint}") from None
    folder_split = FOLDER_OF[split]
    folder = Path(manifest["root"]) / manifest["split_folders"][folder_split]
    check_listing(folder, paths, manifest, folder_split, also_listed)
    size = manifest["image_shape"][0]
    return DiskSplit(folder, paths, sizes, size, int(manifest.get("resize", round(size * RESIZE_RATIO)))), y


def check_listing(
    folder: Path, paths: TextArray, manifest: dict, split: str, also_listed: Callable[[], TextArray] | None = None
) -> None:
    """The folder still holds the files it held when prepared: none gone, none added (names only, no reads).

    ``split`` names the folder's listing in the manifest; ``also_listed``, the paths prepared
    from it besides ``paths`` (the validation split's, held out of the training folder).
    """
    if not folder.is_dir():
        raise DataError(f"{folder}: the images of the prepared data set are gone (moved or deleted); restore them, or {REPREPARE}")
    # The whole listing as Python strings is only needed to say what changed.
    def class_paths(name: str) -> list[bytes]:
        files = sorted(f.name for f in os.scandir(folder / name) if f.name.lower().endswith(IMAGE_EXTENSIONS))
        return [f"{name}/{file}".encode("utf-8", "surrogateescape") for file in files]

    class_folders = [entry.name for entry in os.scandir(folder) if entry.is_dir()]
    if listing_digest(class_folders, class_paths) == manifest["listings"][split]:
        return
    found = [
        f"{name}/{f.name}" for name in class_folders
        for f in os.scandir(folder / name) if f.name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    skipped = {row.split(": ", 1)[0] for row in manifest.get("skipped", {}).get(split, [])}
    before, now = set(paths) | skipped | set(also_listed() if also_listed else ()), set(found)
    gone, added = sorted(before - now), sorted(now - before)
    classes = set(manifest["classes"])
    new_classes = sorted({path.split("/", 1)[0] for path in added} - classes)
    parts = []
    if gone:
        parts.append(f"{len(gone):,} file(s) gone ({', '.join(gone[:SHOWN])})")
    if new_classes:
        parts.append(f"class folder(s) added ({', '.join(new_classes[:SHOWN])})")
    if added:
        parts.append(f"{len(added):,} file(s) added ({', '.join(added[:SHOWN])})")
    raise DataError(
        f"{folder}: the images changed since the data set was prepared: {'; '.join(parts) or 'the listing differs'}. "
        f"Restore them, or {REPREPARE} (its outputs are remade; the runs after it rerun)"
    )


# --------------------------------------------------------------------------- imagenet


DISK_KEYS = ("path", "image_size", "check_images", "skip_bad_images", "flip")


def imagenet_layout_problem(root: Path) -> str | None:
    """Why ``root`` is not the ILSVRC2012 layout, or None."""
    for folder in ("train", "val"):
        split = root / folder
        if not split.is_dir():
            archives = sorted(p.name for p in root.glob("ILSVRC2012_img_*.tar"))
            found = f" (found the archives {', '.join(archives)}: extract them)" if archives else ""
            return f"{split} is missing{found}"
        entries = list(os.scandir(split))
        loose = [e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]
        if loose:
            return f"{split} holds {len(loose):,} images directly (e.g. {loose[0]}), as the archive has them, not sorted into class folders"
        tars = [e.name for e in entries if e.name.endswith(".tar")]
        if tars:
            return f"{split} holds {len(tars):,} per-class archives (e.g. {tars[0]}): extract each into a folder of its name"
        odd = sorted(e.name for e in entries if e.is_dir() and not WNID.match(e.name))
        if odd:
            return f"{split} has folders not named by a WordNet id: {', '.join(odd[:SHOWN])}"
    return None


# The folder is checked when the data is prepared (seconds), not when the config is: a
# config naming the images of another machine (the cluster's) still validates and plans here.
def disk_image_shape(dataset: Mapping) -> tuple[int, int, int] | None:
    """The input a model meets, known from the config: ``image_size`` (default 224) square, colour."""
    size = dataset.get("image_size", DEFAULT_IMAGE_SIZE)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:  # refused by the builder
        return None
    return (size, size, 3)


@register_dataset("imagenet", keys=DISK_KEYS, required=("path",), image_shape=disk_image_shape)
def build_imagenet(options: dict) -> PreparedDisk:
    """ILSVRC2012 as torchvision's ImageNet prepares it (train/<wnid>/, val/<wnid>/), read from disk; no download."""
    root = Path(str(required_option(options, "path", "the folder holding train/ and val/"))).expanduser().resolve()
    problem = imagenet_layout_problem(root)
    if problem:
        raise DataError(
            f"config key {config_key('path')}: {root} is not laid out as ILSVRC2012: {problem}. svp reads {IMAGENET_LAYOUT}. "
            "(The archives need an ImageNet account, so svp downloads nothing; another layout is an image_folder.)"
        )
    return prepare_disk("imagenet", options, root, {"train": "train", "test": "val"}, IMAGENET_MEAN, IMAGENET_STD)
