"""Data sets (images here, texts in ``svp.text``), each prepared once into one common on-disk format.

A registry maps a data set name (config key ``dataset.name``) to a builder that reads
the raw data and returns a :class:`PreparedData`. :func:`prepare_dataset` validates it
and writes three files into a folder:

* ``train.npz`` and ``test.npz``: uncompressed NumPy archives with ``x`` (uint8,
  N x H x W x C) and ``y`` (int64, N), written byte-for-byte reproducibly;
  (text data sets store the texts instead, see ``svp.text``);
* ``manifest.json``: its ``modality`` (``image`` or ``text``), where the data came from (with checksums of the raw files), the
  class names and counts, the image shape, per-channel mean and std of the training
  images, the augmentation that suits the data set, and sha256 checksums of the two
  ``.npz`` files. It is written last, so its presence means the folder is complete.

:func:`load_prepared` reads such a folder back and checks the manifest against the
arrays (checksums, shapes, counts, label range), so an edited manifest is refused. Every
problem a user can cause or fix raises :class:`DataError`, whose message names the
config key or file (and the row) and the fix.

Labels are class numbers: every class needs a training example, and there must be at
least two. Without a declared class list (``dataset.classes``) the classes are 0 to the
largest training label, so a stray label (one 1000 among 0..2) is refused, not read as
1001 classes. The limits (:data:`MAX_CLASSES`, :data:`MAX_IMAGE_PIXELS`) are in the README.

The torchvision data sets (CIFAR10/100, SVHN, MNIST, FashionMNIST) go through
torchvision's own download, md5 check and extraction code. torch and torchvision are
imported only by the builders that need them, so the default ``digits`` data set
(bundled with scikit-learn) prepares in well under a second.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import sys
import tarfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping, NamedTuple

import numpy as np

from svp.errors import DataError  # noqa: F401  (callers import it from here too)
from svp.io import atomic_path  # noqa: F401  (callers import it from here too)

__all__ = [
    "DATASETS",
    "DataError",
    "PreparedData",
    "dataset_modality",
    "list_datasets",
    "load_prepared",
    "read_manifest",
    "prepare_dataset",
    "register_dataset",
]

MANIFEST_FILE = "manifest.json"
SPLIT_FILES = {"train": "train.npz", "test": "test.npz"}
PREPARE_HINT = "rerun the prepare step (`svp prepare`, or delete the folder and rerun the workflow)"

# Limits on what a user can give (README, "Limits"); beyond them preparation stops.
# Scoring holds an N x classes float64 array of probabilities: 10,000 classes of 50,000
# examples is already 4 GB.
MAX_CLASSES = 10_000
# Pixels of one image file, read from its header before anything is decoded: a small
# file can claim a huge image (a decompression bomb). 8192 x 8192 is below Pillow's own
# warning limit (about 89 million), so Pillow never decodes more than this.
MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE


@dataclass
class PreparedData:
    """One data set in memory, as every builder returns it."""

    x_train: np.ndarray  # uint8 (N, H, W, C)
    y_train: np.ndarray  # int64 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str  # human-readable origin: URL, library or file paths
    source_files: dict[str, str] = field(default_factory=dict)  # raw file path -> md5 or sha256
    augment: dict = field(default_factory=dict)  # {"crop_padding": int, "flip": bool}


Builder = Callable[[dict], PreparedData]
DATASETS: dict[str, Builder] = {}
MODALITIES: dict[str, str] = {}  # data set name -> "image" or "text": what models can read it


def register_dataset(name: str, modality: str = "image") -> Callable[[Builder], Builder]:
    """Decorator: make ``builder(options) -> PreparedData`` available as ``dataset.name: <name>``.

    A ``text`` builder returns ``svp.text.PreparedText`` instead of ``PreparedData``.
    """

    def decorate(builder: Builder) -> Builder:
        if name in DATASETS:
            raise ValueError(f"data set {name!r} is registered twice")
        DATASETS[name] = builder
        MODALITIES[name] = modality
        return builder

    return decorate


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def dataset_modality(name: str) -> str:
    """``image`` or ``text``: the kind of examples the registered data set ``name`` holds."""
    return MODALITIES.get(name, "image")


# --------------------------------------------------------------------------- options


def _key(name: str) -> str:
    return f"dataset.{name}"


def _bool_option(options: Mapping, name: str, default: bool) -> bool:
    value = options.get(name, default)
    # A string such as "false" would be truthy: insist on a YAML boolean.
    if not isinstance(value, bool):
        raise DataError(f"config key {_key(name)}: expected true or false, got {value!r}")
    return value


def _int_option(options: Mapping, name: str, default: int | None, minimum: int) -> int | None:
    value = options.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"config key {_key(name)}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _fraction_option(options: Mapping, name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise DataError(f"config key {_key(name)}: expected a number between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def _required_option(options: Mapping, name: str, what: str) -> Any:
    if options.get(name) is None:
        raise DataError(f"config key {_key(name)} is required for data set {options.get('name')!r}: {what}")
    return options[name]


def _path_list_option(options: Mapping, name: str) -> list[Path]:
    value = _required_option(options, name, "a list of .npz files")
    paths = [value] if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(paths, (list, tuple)) or not paths:
        raise DataError(f"config key {_key(name)}: expected a non-empty list of .npz file paths, got {value!r}")
    resolved = [Path(path).expanduser().resolve() for path in paths]
    for index, path in enumerate(resolved):
        if not path.is_file():
            raise DataError(f"config key {_key(name)}[{index}]: file not found: {path}; fix the path in the config")
    return resolved


def _augment(options: Mapping, crop_padding: int, flip: bool) -> dict:
    """The data set's default augmentation, overridden by ``dataset.crop_padding`` / ``dataset.flip``."""
    return {
        "crop_padding": _int_option(options, "crop_padding", crop_padding, minimum=0),
        "flip": _bool_option(options, "flip", flip),
    }


def _padding_for_height(height: int) -> int:
    # 4 pixels is the standard for 32x32 images; smaller images get proportionally less
    # so that a random crop cannot push most of a small image out of view.
    return 4 if height >= 32 else max(1, height // 8)


# --------------------------------------------------------------------------- checksums


def _file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- digits


@register_dataset("digits")
def build_digits(options: dict) -> PreparedData:
    """scikit-learn's bundled 8x8 digits (1,797 images), split once, stratified, with a fixed seed."""
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    test_fraction = _fraction_option(options, "test_fraction", 0.25)
    bunch = load_digits()
    # Values are 0..16; 255 / 16 is exact in binary, so rounding is the only approximation.
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[..., np.newaxis]
    labels = bunch.target.astype(np.int64)
    try:
        train_index, test_index = train_test_split(
            np.arange(len(labels)), test_size=test_fraction, random_state=0, stratify=labels
        )
    except ValueError as error:  # a split too small to hold every class once
        raise DataError(
            f"config key {_key('test_fraction')}: {test_fraction} leaves a split too small to hold each of the 10 "
            f"classes ({error}); choose a value between 0.01 and 0.99"
        ) from None
    # Sorted, so that example i of each split keeps the original relative order.
    train_index, test_index = np.sort(train_index), np.sort(test_index)
    raw_file = Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
    return PreparedData(
        x_train=images[train_index],
        y_train=labels[train_index],
        x_test=images[test_index],
        y_test=labels[test_index],
        classes=[str(digit) for digit in range(10)],
        source=(
            f"scikit-learn {sklearn.__version__} load_digits (bundled UCI handwritten digits, 8x8, values 0-16 "
            f"scaled to 0-255); stratified split, test_fraction={test_fraction}, random_state=0"
        ),
        source_files={str(raw_file): _file_digest(raw_file)} if raw_file.is_file() else {},
        # Digits are not mirror-symmetric (a flipped 2 is no digit); tiny images get 1 pixel.
        augment=_augment(options, crop_padding=1, flip=False),
    )


# --------------------------------------------------------------------------- npz


def _read_npz(path: Path, option: str) -> tuple[np.ndarray, np.ndarray]:
    where = f"{path} (config key {_key(option)})"
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(
            f"{where}: not a readable .npz file ({error}); save it with np.savez(path, x=..., y=...)"
        ) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{where}: a single .npy array, not an .npz archive; save it with np.savez(path, x=..., y=...)")
    with archive:
        missing = sorted({"x", "y"} - set(archive.files))
        if missing:
            raise DataError(
                f"{where}: array(s) {missing} missing, found {archive.files}; it needs x (images) and y (labels)"
            )
        try:
            x, y = archive["x"], archive["y"]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
            raise DataError(f"{where}: cannot read its arrays ({error}); the file may be truncated") from error
        except MemoryError:
            # A header can claim any shape; numpy allocates it before reading the data.
            raise DataError(
                f"{where}: its arrays do not fit in memory (a corrupt header can claim any size); "
                f"check the file, or split the data set into several files on a machine with more memory"
            ) from None
    if x.dtype != np.uint8:
        raise DataError(f"{where}: x has dtype {x.dtype}, expected uint8 pixel values 0..255; convert it first")
    if x.ndim == 3:  # grey images without a channel axis
        x = x[..., np.newaxis]
    if x.ndim != 4 or 0 in x.shape[1:]:
        raise DataError(
            f"{where}: x has shape {x.shape}, expected (N, H, W, C) or (N, H, W) images of at least 1 pixel"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{where}: y has shape {y.shape} and dtype {y.dtype}, expected integer labels of shape (N,)")
    if len(x) != len(y):
        raise DataError(f"{where}: x has {len(x)} images but y has {len(y)} labels")
    if y.dtype.kind == "u" and y.size and y.max() > np.iinfo(np.int64).max:
        row = int(np.argmax(y))
        raise DataError(f"{where}: label y[{row}] is {int(y[row]):,}; labels are the class numbers 0, 1, 2, ...")
    return x, y.astype(np.int64)


class _Rows(NamedTuple):
    """Where each example of a split concatenated from several files came from."""

    paths: list[Path]
    ends: np.ndarray  # cumulative number of examples after each file

    def name(self, index: int) -> str:
        """The file and row of example ``index``: what a user can look up."""
        file = int(np.searchsorted(self.ends, index, side="right"))
        start = int(self.ends[file - 1]) if file else 0
        return f"{self.paths[file]}, y[{index - start}]"


def _read_npz_split(paths: list[Path], option: str) -> tuple[np.ndarray, np.ndarray, _Rows]:
    parts = [_read_npz(path, option) for path in paths]
    shapes = {x.shape[1:] for x, _ in parts}
    if len(shapes) > 1:
        found = ", ".join(f"{path.name}: {x.shape[1:]}" for path, (x, _) in zip(paths, parts))
        raise DataError(f"config key {_key(option)}: the files hold images of different shapes ({found})")
    rows = _Rows(paths, np.cumsum([len(y) for _, y in parts]))
    if rows.ends[-1] == 0:
        raise DataError(f"config key {_key(option)}: the files hold no examples; the {option} split needs at least one")
    if len(parts) == 1:
        return (*parts[0], rows)
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]), rows


def _describe_numbers(numbers: list[int], shown: int = 4) -> str:
    """``[3, 4, ..., 999]`` as "3 to 999", runs separated by commas, the first few only."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    text = ", ".join(str(a) if a == b else f"{a} to {b}" for a, b in runs[:shown])
    return text + (", ..." if len(runs) > shown else "")


def _check_class_numbers(
    y_train: np.ndarray,
    train_rows: _Rows,
    y_test: np.ndarray,
    test_rows: _Rows,
    classes: list[str] | None,
    classes_path,
) -> None:
    """Labels must be class numbers: 0..K-1 of the declared classes, else of the training labels.

    Without declared classes every number up to the largest label must occur in training:
    one stray label of 1000 among 0..2 would otherwise make 1001 classes (and a label of
    10**9 a billion). Each refusal names the file and row of the first bad label.
    """
    declared = classes is not None
    limit = len(classes) if declared else MAX_CLASSES
    for split, y, rows in (("train", y_train, train_rows), ("test", y_test, test_rows)):
        bad = np.flatnonzero((y < 0) | (y >= limit))
        if not bad.size:
            continue
        index = int(bad[0])
        where, value = f"{rows.name(index)} (config key {_key(split)})", int(y[index])
        if declared:
            raise DataError(
                f"{where}: label {value} is not a class number 0 to {len(classes) - 1} of the {len(classes)} classes "
                f"named in {classes_path} (config key {_key('classes')}); fix the label, or add the missing names"
            )
        if value < 0:
            raise DataError(f"{where}: label {value} is negative; labels are the class numbers 0, 1, 2, ...")
        raise DataError(
            f"{where}: label {value:,} is above {MAX_CLASSES - 1:,}, the largest class number svp accepts "
            f"(at most {MAX_CLASSES:,} classes); labels are the class numbers 0, 1, 2, ...; fix the label"
        )
    present = np.unique(y_train)
    untrained = np.flatnonzero(~np.isin(y_test, present))
    if untrained.size:
        index = int(untrained[0])
        label = int(y_test[index])
        name = f" (class {classes[label]!r})" if declared else ""
        raise DataError(
            f"{test_rows.name(index)} (config key {_key('test')}): label {label:,}{name} never occurs in the training "
            f"labels; a model cannot learn a class it never sees, so its test error would only be inflated: fix the "
            f"label, add training examples of that class, or remove its test examples"
        )
    if declared:
        return  # gaps are allowed when the classes are named: _check_classes warns about them
    largest = int(present[-1])
    if len(present) != largest + 1:
        missing = sorted(set(range(largest + 1)) - set(present.tolist()))
        first = train_rows.name(int(np.argmax(y_train == largest)))
        raise DataError(
            f"config key {_key('train')}: the training labels skip {_describe_numbers(missing)}, so they would make "
            f"{largest + 1:,} classes, {len(missing):,} of them without a single training example. Labels must be "
            f"the class numbers 0 to K-1; the largest, {largest:,}, first appears at {first}. Fix the stray labels, "
            f"or name every class in {_key('classes')} (a text file, one name per line, in label order)"
        )


def _read_class_names(path: Path) -> list[str]:
    where = f"{path} (config key {_key('classes')})"
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(
            f"{where}: cannot read it ({error}); it should be a UTF-8 text file, one class name per line"
        ) from error
    while names and not names[-1]:
        names.pop()
    if not names:
        raise DataError(f"{where}: the file is empty; expected one class name per line, in label order")
    if "" in names:
        raise DataError(
            f"{where}: line {names.index('') + 1} is empty; expected one class name per line, in label order"
        )
    if len(names) > MAX_CLASSES:
        raise DataError(f"{where}: {len(names):,} class names, more than the {MAX_CLASSES:,} classes svp accepts")
    first_line: dict[str, int] = {}
    for line, name in enumerate(names, start=1):
        if name in first_line:
            raise DataError(
                f"{where}: line {line} repeats the class name {name!r} of line {first_line[name]}; "
                f"each label needs its own name"
            )
        first_line[name] = line
    return names


@register_dataset("npz")
def build_npz(options: dict) -> PreparedData:
    """Images already in .npz files (x uint8 N,H,W[,C]; y labels); several files per split are concatenated."""
    train_paths = _path_list_option(options, "train")
    test_paths = _path_list_option(options, "test")
    classes_path = options.get("classes")
    if classes_path is not None:
        classes_path = Path(classes_path).expanduser().resolve()
        if not classes_path.is_file():
            raise DataError(f"config key {_key('classes')}: file not found: {classes_path}; fix the path in the config")
    x_train, y_train, train_rows = _read_npz_split(train_paths, "train")
    x_test, y_test, test_rows = _read_npz_split(test_paths, "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"config keys {_key('train')} and {_key('test')}: train images have shape {x_train.shape[1:]}, "
            f"test images {x_test.shape[1:]}; both splits need the same shape"
        )
    classes = _read_class_names(classes_path) if classes_path is not None else None
    _check_class_numbers(y_train, train_rows, y_test, test_rows, classes, classes_path)
    if classes is None:
        classes = [str(label) for label in range(int(y_train.max()) + 1)]
    source_files = {str(path): _file_digest(path) for path in dict.fromkeys(train_paths + test_paths)}
    if classes_path is not None:
        source_files[str(classes_path)] = _file_digest(classes_path)
    return PreparedData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=classes,
        source=f"npz files: train {[str(p) for p in train_paths]}, test {[str(p) for p in test_paths]}",
        source_files=source_files,
        # Whether mirroring keeps the label depends on the content, unknown here: off unless asked.
        augment=_augment(options, crop_padding=_padding_for_height(x_train.shape[1]), flip=False),
    )


# --------------------------------------------------------------------------- image_folder


def _discover_image_folder(folder: Path):
    from torchvision.datasets import ImageFolder

    try:
        found = ImageFolder(str(folder))
    except (FileNotFoundError, NotADirectoryError) as error:
        raise DataError(
            f"config key {_key('path')}: {folder} must be a folder with one sub-folder of images per class "
            f"({error})"
        ) from None
    _check_image_paths(folder, found.samples)
    return found


def _check_image_paths(folder: Path, samples: list[tuple[str, int]]) -> None:
    """Images sit directly in their class folder, and no link leads out of ``folder``.

    torchvision walks class folders to any depth and follows links: a stray sub-folder,
    or a link into the test images, would silently join this split.
    """
    real_folder = folder.resolve()
    for path, _ in samples:
        relative = Path(path).relative_to(folder)
        if len(relative.parts) > 2:
            raise DataError(
                f"{folder / relative.parts[0] / relative.parts[1]}: a folder inside the class folder "
                f"{folder / relative.parts[0]}; its images would silently join that class. Images must sit "
                f"directly in their class folder: move them up, or delete the folder"
            )
        if not Path(path).resolve().is_relative_to(real_folder):
            candidates = (folder / relative.parts[0], Path(path))
            link = next((candidate for candidate in candidates if candidate.is_symlink()), Path(path))
            raise DataError(
                f"{link}: a symbolic link that leads outside {folder} (to {link.resolve()}); it would pull other "
                f"files (test images, say) into this split: replace it with a copy of the file, or remove it"
            )


# Pillow modes with more than 8 bits per channel: converting them to L or RGB clips the
# values at 255 instead of scaling them, which would silently whiten the image.
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


def _decode_image(path: str, content: bytes, mode: str, size: int | None) -> np.ndarray:
    """One image file as a uint8 array in ``mode``, resized to ``size`` when given; its header checked first."""
    from PIL import Image, UnidentifiedImageError

    limit = f"svp reads images of at most {MAX_IMAGE_PIXELS:,} pixels ({MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE})"
    try:
        with warnings.catch_warnings():
            # The size is checked below, before decoding; Pillow's warning would only repeat it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(content))
        with image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DataError(
                    f"{path}: its header claims {width}x{height} pixels; {limit} (a small file claiming a huge "
                    f"image may be a decompression bomb): downscale it, or remove it"
                )
            if image.mode in _WIDE_MODES:
                raise DataError(
                    f"{path}: an image in Pillow mode {image.mode} (16-bit or floating-point pixels); svp reads 8 bits per channel "
                    f"and converting would clip the values: save it with 8 bits per channel"
                )
            image = image.convert(mode)
            if size is not None:
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError as error:
        raise DataError(
            f"{path}: Pillow refuses it as a possible decompression bomb ({str(error).rstrip('.')}); {limit}: "
            f"downscale it, or remove it"
        ) from None
    except UnidentifiedImageError:
        raise DataError(
            f"{path}: not an image Pillow can read (unknown format, or corrupt); replace or remove it"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, zlib.error) as error:
        raise DataError(
            f"{path}: cannot read this image ({error}); the file is damaged: replace or remove it"
        ) from None


def _read_image_files(folder: Path, samples: list[tuple[str, int]], mode: str, size: int | None):
    """Decode every image; return the arrays, their labels and one sha256 over all the files."""
    images, digest = [], hashlib.sha256()
    for path, _ in samples:
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise DataError(
                f"{path}: cannot read this file ({error.strerror}); fix its permissions, or remove it"
            ) from None
        digest.update(os.path.relpath(path, folder).encode() + b"\0" + hashlib.sha256(content).digest())
        images.append(_decode_image(path, content, mode, size))
    labels = np.array([label for _, label in samples], dtype=np.int64)
    return images, labels, digest.hexdigest()


def _stack_images(images: list[np.ndarray], paths: list[str]) -> np.ndarray:
    shapes: dict[tuple, str] = {}
    for image, path in zip(images, paths):
        shapes.setdefault(image.shape, path)
    if len(shapes) > 1:
        examples = "; ".join(f"{path} is {shape[1]}x{shape[0]}" for shape, path in list(shapes.items())[:3])
        raise DataError(
            f"config key {_key('image_size')}: the images differ in size ({examples}); set dataset.image_size "
            f"to resize every image to one square size"
        )
    stacked = np.stack(images)
    return stacked[..., np.newaxis] if stacked.ndim == 3 else stacked


@register_dataset("image_folder")
def build_image_folder(options: dict) -> PreparedData:
    """Image files in ``<path>/train/<class>/*`` and ``<path>/test/<class>/*`` (torchvision ImageFolder layout)."""
    path = _required_option(options, "path", "a folder with train/<class>/ and test/<class>/")
    root = Path(path).expanduser().resolve()
    size = _int_option(options, "image_size", None, minimum=1)
    if size is not None and size > MAX_IMAGE_SIDE:
        raise DataError(
            f"config key {_key('image_size')}: {size} is above {MAX_IMAGE_SIDE}, the largest image side svp reads"
        )
    channels = options.get("channels", 3)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DataError(f"config key {_key('channels')}: expected 1 (grey) or 3 (colour), got {channels!r}")
    mode = "L" if channels == 1 else "RGB"

    folders = {split: _discover_image_folder(root / split) for split in ("train", "test")}
    if folders["train"].classes != folders["test"].classes:
        raise DataError(
            f"config key {_key('path')}: {root / 'train'} has classes {folders['train'].classes} but "
            f"{root / 'test'} has {folders['test'].classes}; both need the same class sub-folders"
        )
    loaded = {split: _read_image_files(root / split, f.samples, mode, size) for split, f in folders.items()}
    # One check over both splits: train and test images must share one shape too.
    all_paths = [path for f in folders.values() for path, _ in f.samples]
    all_images = _stack_images(loaded["train"][0] + loaded["test"][0], all_paths)
    n_train = len(loaded["train"][0])
    return PreparedData(
        x_train=all_images[:n_train],
        y_train=loaded["train"][1],
        x_test=all_images[n_train:],
        y_test=loaded["test"][1],
        classes=list(folders["train"].classes),
        source=f"image files in {root} (torchvision ImageFolder, mode {mode}, image_size {size})",
        # One digest per split over (relative path, file sha256) of every image, in order:
        # a line per image would bloat the manifest for folders of thousands of files.
        source_files={str(root / split): loaded[split][2] for split in folders},
        augment=_augment(options, crop_padding=_padding_for_height(all_images.shape[1]), flip=False),
    )


# --------------------------------------------------------------------------- torchvision


@dataclass(frozen=True)
class _RawFile:
    """A file torchvision downloads, with the files made from it that torchvision then reads."""

    name: str
    md5: str
    urls: tuple[str, ...]
    extracted: tuple[str, ...] = ()  # relative to the download folder; empty: the file is read as is
    # Some mirrors publish only the size and the md5 of the first bytes (fastai's checks).
    size: int | None = None
    md5_bytes: int | None = None  # the md5 covers the first md5_bytes bytes; None: the whole file

    def usable(self, folder: Path) -> bool:
        """True when torchvision can read the data without fetching or extracting anything."""
        needed = self.extracted or (self.name,)
        return all((folder / name).is_file() for name in needed)

    def describe_check(self) -> str:
        if self.md5_bytes is None:
            return f"md5 {self.md5}"
        return f"{self.size:,} bytes, md5 of the first {self.md5_bytes:,} bytes {self.md5}"

    def problem(self, path: Path) -> str | None:
        """Why the file at ``path`` is not this file, or None when it checks out."""
        if self.md5_bytes is None:
            found = _file_digest(path, "md5")
            return None if found == self.md5 else f"has md5 {found}, expected {self.md5}"
        size = path.stat().st_size
        if self.size is not None and size != self.size:
            return f"has {size:,} bytes, expected {self.size:,}"
        with open(path, "rb") as handle:
            found = hashlib.md5(handle.read(self.md5_bytes)).hexdigest()
        return (
            None
            if found == self.md5
            else f"has md5 {found} over its first {self.md5_bytes:,} bytes, expected {self.md5}"
        )


class _Splits(NamedTuple):
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    read_files: dict[str, str]  # path -> md5 of the raw files torchvision read


class _TorchvisionFamily:
    """How one family of torchvision data set classes stores, fetches and returns its data.

    Class attributes (url, md5, file lists) are read at call time, not copied, so that
    what torchvision would download is always what the messages name.
    """

    def folder(self, cls: type, root: Path) -> Path:
        raise NotImplementedError

    def raw_files(self, cls: type) -> list[_RawFile]:
        raise NotImplementedError

    def load(self, cls: type, root: Path, download: bool) -> _Splits:
        raise NotImplementedError


class _Cifar(_TorchvisionFamily):
    def folder(self, cls: type, root: Path) -> Path:
        return root

    def _members(self, cls: type) -> list[tuple[str, str]]:
        return [(f"{cls.base_folder}/{name}", md5) for name, md5 in [*cls.train_list, *cls.test_list]] + [
            (f"{cls.base_folder}/{cls.meta['filename']}", cls.meta["md5"])
        ]

    def raw_files(self, cls: type) -> list[_RawFile]:
        extracted = tuple(name for name, _ in self._members(cls))
        return [_RawFile(cls.filename, cls.tgz_md5, (cls.url,), extracted)]

    def load(self, cls: type, root: Path, download: bool) -> _Splits:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=False)  # the one archive holds both splits
        # torchvision md5-checked every member before reading it: its md5s are the verified ones.
        read_files = {str(root / name): md5 for name, md5 in self._members(cls)}
        archive = root / cls.filename
        if archive.is_file():
            read_files[str(archive)] = _file_digest(archive, "md5")
        return _Splits(
            np.ascontiguousarray(train.data, dtype=np.uint8),
            np.asarray(train.targets, dtype=np.int64),
            np.ascontiguousarray(test.data, dtype=np.uint8),
            np.asarray(test.targets, dtype=np.int64),
            [str(name) for name in train.classes],
            read_files,
        )


class _Svhn(_TorchvisionFamily):
    splits = ("train", "test")  # "extra" is a separate, much larger training set, not used here

    def folder(self, cls: type, root: Path) -> Path:
        return root

    def raw_files(self, cls: type) -> list[_RawFile]:
        return [_RawFile(cls.split_list[s][1], cls.split_list[s][2], (cls.split_list[s][0],)) for s in self.splits]

    def load(self, cls: type, root: Path, download: bool) -> _Splits:
        arrays = []
        for split in self.splits:
            dataset = cls(str(root), split=split, download=download)
            # torchvision keeps SVHN as N,C,H,W; everything here is N,H,W,C.
            arrays += [np.ascontiguousarray(dataset.data.transpose(0, 2, 3, 1)), dataset.labels.astype(np.int64)]
        read_files = {str(root / raw.name): raw.md5 for raw in self.raw_files(cls)}  # md5-checked by torchvision
        return _Splits(*arrays, [str(digit) for digit in range(10)], read_files)


class _Mnist(_TorchvisionFamily):
    def folder(self, cls: type, root: Path) -> Path:
        return root / cls.__name__ / "raw"

    def raw_files(self, cls: type) -> list[_RawFile]:
        return [
            _RawFile(name, md5, tuple(mirror + name for mirror in cls.mirrors), (Path(name).stem,))
            for name, md5 in cls.resources
        ]

    def load(self, cls: type, root: Path, download: bool) -> _Splits:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=False)
        folder = self.folder(cls, root)
        read_files = {}
        for raw in self.raw_files(cls):
            # torchvision does not re-check the extracted files; record what is on disk.
            path = folder / raw.name if (folder / raw.name).is_file() else folder / raw.extracted[0]
            read_files[str(path)] = _file_digest(path, "md5")
        return _Splits(
            train.data.numpy()[..., np.newaxis],
            train.targets.numpy().astype(np.int64),
            test.data.numpy()[..., np.newaxis],
            test.targets.numpy().astype(np.int64),
            # MNIST's names are "0 - zero", ...: keep the digit, like svhn and digits.
            [str(name).split(" - ")[0] for name in cls.classes],
            read_files,
        )


# Errors torchvision's download, extraction and readers raise for missing, unreachable
# or corrupt files (URLError is an OSError).
_FETCH_ERRORS = (
    OSError,
    RuntimeError,
    ValueError,
    TypeError,
    KeyError,
    EOFError,
    tarfile.TarError,
    zlib.error,
    pickle.UnpicklingError,
)


def _describe_files(folder: Path, files: list[_RawFile]) -> str:
    return "\n".join(f"  {folder / raw.name}  ({raw.describe_check()})  from {' or '.join(raw.urls)}" for raw in files)


def _corrupt_files(folder: Path, files: list[_RawFile]) -> list[str]:
    notes = []
    for raw in files:
        path = folder / raw.name
        if path.is_file() and (problem := raw.problem(path)):
            notes.append(f"{path} {problem}: the file is corrupt or incomplete; delete it and rerun")
    return notes


def _torchvision_class(class_name: str) -> type:
    import torchvision.datasets

    return getattr(torchvision.datasets, class_name)


def _build_torchvision(
    name: str, class_name: str, family: _TorchvisionFamily, options: Mapping, augment: dict
) -> PreparedData:
    cls = _torchvision_class(class_name)
    root = Path(options.get("root", "data")).expanduser().resolve()
    download = _bool_option(options, "download", True)
    folder = family.folder(cls, root)
    raw_files = family.raw_files(cls)
    location = f"folder {folder} (from config key {_key('root')}: {root})"
    # Checked before any slow work: without download, missing files are an immediate error.
    to_fetch = [raw for raw in raw_files if not raw.usable(folder)]
    if not download and to_fetch:
        missing = [raw for raw in to_fetch if not (folder / raw.name).is_file()]
        if missing:
            raise DataError(
                f"data set {name!r}: {_key('download')} is false and these files are missing from the {location}:\n"
                f"{_describe_files(folder, missing)}\n"
                f"Copy them into that folder, or set {_key('download')}: true to fetch them (needs the host reachable)."
            )
        corrupt = _corrupt_files(folder, to_fetch)
        if corrupt:
            raise DataError(f"data set {name!r}: " + "\n".join(corrupt))
        # The archives are here and intact: torchvision's download step then only extracts them.
        download = True
    try:
        splits = family.load(cls, root, download)
    except _FETCH_ERRORS as error:
        notes = "".join(f"\n{note}" for note in _corrupt_files(folder, raw_files))
        raise DataError(
            f"data set {name!r}: torchvision could not download or read its files "
            f"({type(error).__name__}: {error}).{notes}\n"
            f"Expected in the {location}:\n{_describe_files(folder, raw_files)}\n"
            f"If the host is unreachable from this machine, fetch the files elsewhere and copy them into that "
            f"folder; {_key('download')}: true fetches them when the host is reachable."
        ) from error
    urls = ", ".join(url for raw in raw_files for url in raw.urls)
    return PreparedData(
        x_train=splits.x_train,
        y_train=splits.y_train,
        x_test=splits.x_test,
        y_test=splits.y_test,
        classes=splits.classes,
        source=f"torchvision.datasets.{class_name} from {urls}, stored in {folder}",
        source_files=splits.read_files,
        augment=augment,
    )


def _register_torchvision(name: str, class_name: str, family: _TorchvisionFamily, crop_padding: int, flip: bool):
    def build(options: dict) -> PreparedData:
        return _build_torchvision(name, class_name, family, options, _augment(options, crop_padding, flip))

    build.__name__ = build.__qualname__ = f"build_{name}"
    build.__doc__ = f"torchvision's {class_name}, downloaded (if allowed), md5-checked and extracted by torchvision."
    register_dataset(name)(build)


# Natural images: mirroring keeps the class, and 4-pixel padding is the standard CIFAR recipe.
_register_torchvision("cifar10", "CIFAR10", _Cifar(), crop_padding=4, flip=True)
_register_torchvision("cifar100", "CIFAR100", _Cifar(), crop_padding=4, flip=True)
# Digits: a mirrored digit is not the same digit (or no digit), so no flipping.
_register_torchvision("svhn", "SVHN", _Svhn(), crop_padding=4, flip=False)
_register_torchvision("mnist", "MNIST", _Mnist(), crop_padding=2, flip=False)
# Clothes are left-right symmetric (a mirrored shoe is still a shoe): flipping is a valid augmentation.
_register_torchvision("fashionmnist", "FashionMNIST", _Mnist(), crop_padding=2, flip=True)


# --------------------------------------------------------------------------- writing


# np.savez stamps each member with the current time; a fixed stamp makes the bytes,
# and so the sha256 in the manifest, depend on the data alone.
_ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def _write_npz(handle: BinaryIO, arrays: Mapping[str, np.ndarray]) -> None:
    """The same uncompressed layout as np.savez (members ``<key>.npy``), but reproducible."""
    with zipfile.ZipFile(handle, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with archive.open(info, mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through ``write(handle)``; a failure never leaves a partial ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        write(handle)


def _validate(data: PreparedData, name: str) -> None:
    """Check a builder's result; labels out of range are the error users can cause (wrong class list)."""
    if not data.classes or len(set(data.classes)) != len(data.classes):
        raise DataError(f"data set {name!r}: class names must be non-empty and unique, got {data.classes}")
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
            raise DataError(
                f"data set {name!r}: {split} images must be uint8 (N, H, W, C), got {getattr(x, 'shape', x)}"
            )
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1:
            raise DataError(f"data set {name!r}: {split} labels must be int64 (N,), got {getattr(y, 'dtype', y)}")
        if len(x) != len(y):
            raise DataError(f"data set {name!r}: {split} has {len(x)} images but {len(y)} labels")
        if len(x) == 0:
            raise DataError(f"data set {name!r}: the {split} split is empty; check the data set's config and files")
        if y.min() < 0 or y.max() >= len(data.classes):
            raise DataError(
                f"data set {name!r}: {split} labels span {y.min()}..{y.max()} but there are {len(data.classes)} "
                f"classes; labels must be 0..{len(data.classes) - 1} (check {_key('classes')} and the labels)"
            )
    _check_classes(name, data.classes, data.y_train, data.y_test)
    if data.x_train.shape[1:] != data.x_test.shape[1:]:
        raise DataError(
            f"data set {name!r}: train images are {data.x_train.shape[1:]} but test images {data.x_test.shape[1:]}"
        )
    if set(data.augment) != {"crop_padding", "flip"}:
        raise DataError(f"data set {name!r}: augment must have crop_padding and flip, got {data.augment}")


def _check_classes(name: str, classes: list[str], y_train: np.ndarray, y_test: np.ndarray) -> None:
    """Every class that is tested is trained, and there are at least two (labels already in range).

    A class with test examples but no training example would only inflate the test
    error, and with one class every example is equally certain: both are refused here,
    before any training. A declared class with no example at all is only a warning.
    """
    if len(classes) > MAX_CLASSES:
        raise DataError(f"data set {name!r}: {len(classes):,} classes, more than the {MAX_CLASSES:,} svp accepts")
    trained = np.bincount(y_train, minlength=len(classes)) > 0
    tested = np.bincount(y_test, minlength=len(classes)) > 0
    if trained.sum() < 2:
        only = ", ".join(repr(classes[c]) for c in np.flatnonzero(trained))
        raise DataError(
            f"data set {name!r}: the training data holds a single class ({only}); telling examples apart by "
            f"uncertainty needs at least two classes: check the labels and the data set's files"
        )
    untrained = np.flatnonzero(tested & ~trained)
    if untrained.size:
        names = ", ".join(f"{classes[c]!r} (label {c})" for c in untrained[:5]) + (
            ", ..." if untrained.size > 5 else ""
        )
        first = int(np.argmax(np.isin(y_test, untrained)))
        raise DataError(
            f"data set {name!r}: the test data holds classes with no training example: {names}; the first is "
            f"test example {first} (0-based, in file order). A model cannot learn a class it never sees, so its "
            f"test error would only be inflated: add training examples of these classes, or remove them from "
            f"the test data"
        )
    unused = np.flatnonzero(~trained)
    if unused.size:
        names = ", ".join(repr(classes[c]) for c in unused[:5]) + (", ..." if unused.size > 5 else "")
        print(
            f"warning: data set {name!r}: {unused.size} declared class(es) have no example at all ({names}); "
            f"the models still get an output for each, which they learn never to predict",
            file=sys.stderr,
        )


def _channel_mean_std(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] units, exact integer sums over bounded chunks."""
    channels = x.shape[-1]
    chunk = max(1, (1 << 22) // max(1, x[0].size))  # about 32 MB of int64 at a time
    total = np.zeros(channels, dtype=np.int64)
    total_sq = np.zeros(channels, dtype=np.int64)
    for start in range(0, len(x), chunk):
        values = x[start : start + chunk].reshape(-1, channels).astype(np.int64)
        total += values.sum(axis=0)
        total_sq += np.square(values).sum(axis=0)
    count = x.size // channels
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    # Training divides by std: a constant channel would divide by zero, so floor it at
    # one grey level.
    std = np.maximum(std, 1.0)
    return [float(m) for m in mean / 255], [float(s) for s in std / 255]


def _class_counts(y: np.ndarray, classes: list[str]) -> dict[str, int]:
    counts = np.bincount(y, minlength=len(classes))
    return {name: int(n) for name, n in zip(classes, counts)}


def _dataset_name(options: Mapping) -> str:
    if not isinstance(options, Mapping):
        raise DataError(f"config key dataset: expected a mapping with a name, got {options!r}")
    name = options.get("name")
    if not isinstance(name, str) or name not in DATASETS:
        raise DataError(
            f"config key {_key('name')}: unknown data set {name!r}; allowed values: {', '.join(list_datasets())}"
        )
    return name


def _image_arrays(data: PreparedData) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """The arrays of each split and the image-specific manifest entries."""
    arrays = {"train": {"x": data.x_train, "y": data.y_train}, "test": {"x": data.x_test, "y": data.y_test}}
    mean, std = _channel_mean_std(data.x_train)
    fields = {
        "image_shape": [int(n) for n in data.x_train.shape[1:]],
        "augment": {"crop_padding": int(data.augment["crop_padding"]), "flip": bool(data.augment["flip"])},
        "mean": mean,
        "std": std,
    }
    return arrays, fields


def prepare_dataset(options: Mapping, out_dir: str | os.PathLike) -> dict:
    """Build the data set named by ``options["name"]`` and write it to ``out_dir``; return the manifest."""
    name = _dataset_name(options)
    data = DATASETS[name](dict(options))
    modality = getattr(data, "modality", "image")
    if modality == "text":
        data.validate(name)
        arrays = data.split_arrays()
        fields = data.manifest_fields(arrays)
    else:
        _validate(data, name)
        arrays, fields = _image_arrays(data)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Until the new manifest exists, the folder must not look complete.
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    checksums = {}
    for split in ("train", "test"):
        path = out / SPLIT_FILES[split]
        _atomic_write(path, lambda handle, split=split: _write_npz(handle, arrays[split]))
        checksums[SPLIT_FILES[split]] = _file_digest(path)

    manifest = {
        "name": name,
        "modality": modality,
        "source": data.source,
        "source_files": dict(data.source_files),
        "classes": list(data.classes),
        "num_classes": len(data.classes),
        "counts": {
            "train": _class_counts(data.y_train, data.classes),
            "test": _class_counts(data.y_test, data.classes),
        },
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "checksums": checksums,
        **fields,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    _atomic_write(out / MANIFEST_FILE, lambda handle: handle.write(text.encode("utf-8")))
    return manifest


# --------------------------------------------------------------------------- reading


def _split_counts(classes: int) -> dict:
    return {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}, "maxProperties": classes}


# What prepare_dataset writes. Checked on every read: a manifest edited by hand (fewer
# classes, another shape, a mean of 1000) would otherwise fail deep inside training
# ("Target 7 is out of bounds") or train silently to chance.
MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["classes", "num_classes", "checksums"],
    "properties": {
        "modality": {"enum": ["image", "text"]},
        "classes": {
            "type": "array",
            "items": {"type": "string"},
            "minItems": 2,
            "maxItems": MAX_CLASSES,
            "uniqueItems": True,
        },
        "num_classes": {"type": "integer", "minimum": 2, "maximum": MAX_CLASSES},
        "checksums": {"type": "object", "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        "n_train": {"type": "integer", "minimum": 1},
        "n_test": {"type": "integer", "minimum": 1},
        "counts": {
            "type": "object",
            "required": ["train", "test"],
            "properties": {"train": _split_counts(MAX_CLASSES), "test": _split_counts(MAX_CLASSES)},
        },
        "image_shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3, "maxItems": 3},
        "mean": {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 1},
        "std": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "minItems": 1},
        "augment": {
            "type": "object",
            "properties": {"crop_padding": {"type": "integer", "minimum": 0}, "flip": {"type": "boolean"}},
        },
    },
    # Images need their shape, normalisation and augmentation; texts have none.
    "if": {"properties": {"modality": {"const": "text"}}, "required": ["modality"]},
    "else": {"required": ["image_shape", "augment", "mean", "std"]},
}


def _manifest_validator():
    import jsonschema  # here: most readers never meet a bad manifest, and import time counts

    base = jsonschema.Draft202012Validator
    # JSON's 3.0 is an integer to jsonschema, but not to torch's layer sizes.
    strict = base.TYPE_CHECKER.redefine("integer", lambda _, value: type(value) is int)
    return jsonschema.validators.extend(base, type_checker=strict)(MANIFEST_SCHEMA)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _manifest_problems(manifest: dict) -> list[str]:
    """What is wrong with a manifest's content: against the schema, then between its keys."""
    problems = [
        f"{'.'.join(map(str, error.absolute_path)) or 'the top level'}: {error.message}"
        for error in _manifest_validator().iter_errors(manifest)
    ]
    if problems:
        return problems
    classes = manifest["classes"]
    if manifest["num_classes"] != len(classes):
        problems.append(f"num_classes is {manifest['num_classes']} but classes names {len(classes)}")
    for split, counts in manifest.get("counts", {}).items():
        if split in ("train", "test") and list(counts) != classes:
            problems.append(f"counts.{split} does not list the classes, in order")
        elif f"n_{split}" in manifest and sum(counts.values()) != manifest[f"n_{split}"]:
            problems.append(
                f"counts.{split} add up to {sum(counts.values())}, not n_{split} = {manifest[f'n_{split}']}"
            )
    if "image_shape" in manifest:
        channels = manifest["image_shape"][2]
        for key in ("mean", "std"):
            if len(manifest[key]) != channels:
                problems.append(f"{key} has {len(manifest[key])} values for {channels} channel(s)")
    return problems


def _read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"), parse_constant=_refuse_constant)
    except FileNotFoundError:
        raise DataError(
            f"{path}: missing, so the data was never prepared or its preparation failed; {PREPARE_HINT}"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as error:  # JSONDecodeError is a ValueError
        raise DataError(f"{path}: unreadable ({error}); {PREPARE_HINT}") from None
    required = ("classes", "num_classes", "checksums")
    if not isinstance(manifest, dict) or manifest.get("modality", "image") == "image":
        required += ("image_shape", "augment", "mean", "std")
    missing = [key for key in required if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise DataError(f"{path}: keys {missing} missing; it was written by another version; {PREPARE_HINT}")
    problems = _manifest_problems(manifest)
    if problems:
        raise DataError(f"{path}: {'; '.join(problems[:3])}. The file was edited or damaged; {PREPARE_HINT}")
    return manifest


def _check_split_against_manifest(manifest: dict, manifest_path: Path, split: str, x: Any, y: np.ndarray) -> None:
    """The arrays of a split are what the manifest says: count, image shape, label range, class counts.

    Cheap (one pass over the labels); the checksums already tie the arrays to the manifest,
    so a mismatch here means the manifest itself was edited.
    """
    problems = []
    expected = manifest.get(f"n_{split}")
    if expected is not None and expected != len(y):
        problems.append(f"it says {expected:,} {split} examples, {SPLIT_FILES[split]} holds {len(y):,}")
    if "image_shape" in manifest and isinstance(x, np.ndarray) and list(x.shape[1:]) != manifest["image_shape"]:
        problems.append(
            f"it says images of shape {manifest['image_shape']}, {SPLIT_FILES[split]} holds {list(x.shape[1:])}"
        )
    num_classes = manifest["num_classes"]
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        problems.append(f"it says {num_classes} classes, but {SPLIT_FILES[split]} has labels {y.min()} to {y.max()}")
    elif "counts" in manifest:
        found = np.bincount(y, minlength=num_classes).tolist()
        if found != list(manifest["counts"][split].values()):
            problems.append(f"its counts of {split} examples per class differ from the labels in {SPLIT_FILES[split]}")
    if problems:
        raise DataError(
            f"{manifest_path} does not match the prepared data: {'; '.join(problems)}. The manifest was edited "
            f"or belongs to other data; {PREPARE_HINT}"
        )


def _read_split(path: Path, sha256: str | None, modality: str = "image") -> tuple[Any, np.ndarray]:
    """``(x, y)`` of a prepared split: images as uint8 (N, H, W, C), texts as ``svp.text.TextArray``."""
    if not path.is_file():
        raise DataError(f"{path}: missing; {PREPARE_HINT}")
    if sha256 is not None and _file_digest(path) != sha256:
        raise DataError(
            f"{path}: its sha256 differs from the one in {MANIFEST_FILE} (corrupt or replaced); {PREPARE_HINT}"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            if modality == "text":
                from svp.text import load_text_split

                return load_text_split({key: archive[key] for key in archive.files}, path, PREPARE_HINT)
            x, y = archive["x"], archive["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError, TypeError) as error:
        raise DataError(f"{path}: unreadable ({error}); {PREPARE_HINT}") from None
    if x.dtype != np.uint8 or x.ndim != 4 or y.dtype != np.int64 or y.shape != (len(x),):
        raise DataError(f"{path}: unexpected arrays x {x.dtype}{x.shape}, y {y.dtype}{y.shape}; {PREPARE_HINT}")
    return x, y


def load_prepared(
    out_dir: str | os.PathLike,
) -> tuple[tuple[Any, np.ndarray], tuple[Any, np.ndarray], dict]:
    """Read a prepared folder: ``((x_train, y_train), (x_test, y_test), manifest)``, checksums verified.

    ``x`` is a uint8 (N, H, W, C) array for images and an ``svp.text.TextArray`` for texts
    (``manifest["modality"]``).
    """
    out = Path(out_dir)
    manifest = read_manifest(out)
    modality = manifest.get("modality", "image")
    missing = [name for name in SPLIT_FILES.values() if name not in manifest["checksums"]]
    if missing or (modality == "image" and set(manifest["augment"]) != {"crop_padding", "flip"}):
        what = f"checksums of {missing}" if missing else "augment.crop_padding or augment.flip"
        raise DataError(f"{out / MANIFEST_FILE}: {what} missing; the file was edited or damaged; {PREPARE_HINT}")
    splits = []
    for split, name in SPLIT_FILES.items():
        x, y = _read_split(out / name, manifest["checksums"][name], modality)
        _check_split_against_manifest(manifest, out / MANIFEST_FILE, split, x, y)
        splits.append((x, y))
    return splits[0], splits[1], manifest


def read_manifest(out_dir: str | os.PathLike) -> dict:
    """The manifest of a prepared folder (nothing else read): modality, classes, counts."""
    return _read_manifest(Path(out_dir) / MANIFEST_FILE)


def load_labels(out_dir: str | os.PathLike, split: str = "train") -> np.ndarray:
    """Only the labels of a prepared split (no images read): what a random selection needs."""
    manifest = read_manifest(out_dir)
    path = Path(out_dir) / SPLIT_FILES[split]
    if not path.is_file():
        raise DataError(f"{path}: missing; {PREPARE_HINT}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            y = archive["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{path}: unreadable ({error}); {PREPARE_HINT}") from None
    if y.dtype != np.int64 or y.ndim != 1:
        raise DataError(f"{path}: labels y are {y.dtype}{y.shape}, expected int64 (N,); {PREPARE_HINT}")
    _check_split_against_manifest(manifest, Path(out_dir) / MANIFEST_FILE, split, None, y)
    return y


# The text data sets register themselves in DATASETS; svp.text needs the helpers above.
from svp import text as _text  # noqa: E402,F401
