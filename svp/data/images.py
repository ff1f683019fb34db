"""Image data sets: scikit-learn's digits, NumPy archives, folders of images, torchvision's.

The torchvision data sets (CIFAR10/100, SVHN, MNIST, FashionMNIST) go through
torchvision's own download, md5 check and extraction code. torch and torchvision are
imported only by the builders that need them, so the default ``digits`` data set
(bundled with scikit-learn) prepares in well under a second.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np

from svp.data.registry import (
    AUGMENT_KEYS,
    DOWNLOAD_KEYS,
    FETCH_ERRORS,
    MAX_CLASSES,
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    PreparedData,
    RawFile,
    augmentation,
    bool_option,
    config_key,
    corrupt_files,
    describe_files,
    file_digest,
    fraction_option,
    int_option,
    is_dir,
    is_file,
    known_size,
    path_list_option,
    register_dataset,
    required_option,
)
from svp.errors import ConfigError, DataError

def _padding_for_height(height: int) -> int:
    # 4 pixels is the standard for 32x32 images; smaller images get proportionally less
    # so that a random crop cannot push most of a small image out of view.
    # Never over half the side (svp.data.registry.image_option_problem): 1x1 images get none.
    return 4 if height >= 32 else min(max(1, height // 8), height // 2)


# --------------------------------------------------------------------------- digits


DIGITS_EXAMPLES, DIGITS_CLASSES, DIGITS_TEST_FRACTION = 1_797, 10, 0.25


def _digits_training_set(options: Mapping) -> tuple[int, int]:
    # scikit-learn's split takes ceil(test_fraction x N) examples for the test set.
    test = math.ceil(options.get("test_fraction", DIGITS_TEST_FRACTION) * DIGITS_EXAMPLES)
    return DIGITS_EXAMPLES - test, DIGITS_CLASSES


@register_dataset(
    "digits", keys=("test_fraction", *AUGMENT_KEYS), training_set=_digits_training_set, image_shape=lambda _: (8, 8, 1)
)
def build_digits(options: dict) -> PreparedData:
    """scikit-learn's bundled 8x8 digits (1,797 images), split once, stratified, with a fixed seed."""
    import sklearn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    test_fraction = fraction_option(options, "test_fraction", DIGITS_TEST_FRACTION)
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
            f"config key {config_key('test_fraction')}: {test_fraction} leaves a split too small to hold each of the 10 "
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
        source_files={str(raw_file): file_digest(raw_file)} if raw_file.is_file() else {},
        # Digits are not mirror-symmetric (a flipped 2 is no digit); tiny images get 1 pixel.
        augment=augmentation(options, crop_padding=1, flip=False),
    )


# --------------------------------------------------------------------------- npz


def _read_npz(path: Path, option: str) -> tuple[np.ndarray, np.ndarray]:
    where = f"{path} (config key {config_key(option)})"
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
        raise DataError(f"config key {config_key(option)}: the files hold images of different shapes ({found})")
    rows = _Rows(paths, np.cumsum([len(y) for _, y in parts]))
    if rows.ends[-1] == 0:
        raise DataError(f"config key {config_key(option)}: the files hold no examples; the {option} split needs at least one")
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
        where, value = f"{rows.name(index)} (config key {config_key(split)})", int(y[index])
        if declared:
            raise DataError(
                f"{where}: label {value} is not a class number 0 to {len(classes) - 1} of the {len(classes)} classes "
                f"named in {classes_path} (config key {config_key('classes')}); fix the label, or add the missing names"
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
            f"{test_rows.name(index)} (config key {config_key('test')}): label {label:,}{name} never occurs in the training "
            f"labels; a model cannot learn a class it never sees, so its test error would only be inflated: fix the "
            f"label, add training examples of that class, or remove its test examples"
        )
    if declared:
        return  # gaps are allowed when the classes are named: check_classes warns about them
    largest = int(present[-1])
    if len(present) != largest + 1:
        missing = sorted(set(range(largest + 1)) - set(present.tolist()))
        first = train_rows.name(int(np.argmax(y_train == largest)))
        raise DataError(
            f"config key {config_key('train')}: the training labels skip {_describe_numbers(missing)}, so they would make "
            f"{largest + 1:,} classes, {len(missing):,} of them without a single training example. Labels must be "
            f"the class numbers 0 to K-1; the largest, {largest:,}, first appears at {first}. Fix the stray labels, "
            f"or name every class in {config_key('classes')} (a text file, one name per line, in label order)"
        )


def _read_class_names(path: Path) -> list[str]:
    where = f"{path} (config key {config_key('classes')})"
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


def _check_npz_config(dataset: Mapping) -> None:
    if not isinstance(dataset.get("classes", ""), str):
        raise ConfigError("config key 'dataset.classes': for npz, the path of a text file with one class name per line")
    if "classes" in dataset and not is_file(dataset["classes"]):
        raise ConfigError(f"config key 'dataset.classes': file not found: {Path(dataset['classes']).resolve()}")


@register_dataset(
    "npz",
    keys=("train", "test", "classes", *AUGMENT_KEYS),
    required=("train", "test"),
    file_lists=("train", "test"),
    check=_check_npz_config,
)
def build_npz(options: dict) -> PreparedData:
    """Images already in .npz files (x uint8 N,H,W[,C]; y labels); several files per split are concatenated."""
    train_paths = path_list_option(options, "train")
    test_paths = path_list_option(options, "test")
    classes_path = options.get("classes")
    if classes_path is not None:
        classes_path = Path(classes_path).expanduser().resolve()
        if not classes_path.is_file():
            raise DataError(f"config key {config_key('classes')}: file not found: {classes_path}; fix the path in the config")
    x_train, y_train, train_rows = _read_npz_split(train_paths, "train")
    x_test, y_test, test_rows = _read_npz_split(test_paths, "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"config keys {config_key('train')} and {config_key('test')}: train images have shape {x_train.shape[1:]}, "
            f"test images {x_test.shape[1:]}; both splits need the same shape"
        )
    classes = _read_class_names(classes_path) if classes_path is not None else None
    _check_class_numbers(y_train, train_rows, y_test, test_rows, classes, classes_path)
    if classes is None:
        classes = [str(label) for label in range(int(y_train.max()) + 1)]
    source_files = {str(path): file_digest(path) for path in dict.fromkeys(train_paths + test_paths)}
    if classes_path is not None:
        source_files[str(classes_path)] = file_digest(classes_path)
    return PreparedData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=classes,
        source=f"npz files: train {[str(p) for p in train_paths]}, test {[str(p) for p in test_paths]}",
        source_files=source_files,
        # Whether mirroring keeps the label depends on the content, unknown here: off unless asked.
        augment=augmentation(options, crop_padding=_padding_for_height(x_train.shape[1]), flip=False),
    )


# --------------------------------------------------------------------------- image_folder


def _discover_image_folder(folder: Path):
    from torchvision.datasets import ImageFolder

    try:
        found = ImageFolder(str(folder))
    except (FileNotFoundError, NotADirectoryError) as error:
        raise DataError(
            f"config key {config_key('path')}: {folder} must be a folder with one sub-folder of images per class "
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
            f"config key {config_key('image_size')}: the images differ in size ({examples}); set dataset.image_size "
            f"to resize every image to one square size"
        )
    stacked = np.stack(images)
    return stacked[..., np.newaxis] if stacked.ndim == 3 else stacked


def _image_folder_shape(dataset: Mapping) -> tuple[int, int, int] | None:
    """Known where every image is resized: ``image_size`` square, ``channels`` deep (3 by default);
    read from disk (``storage: disk``), crops of ``image_size``, 224 by default (svp.data.disk)."""
    if dataset.get("storage") == "disk":
        from svp.data.disk import disk_image_shape

        return disk_image_shape(dataset)
    size = dataset.get("image_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:  # absent, or refused by the builder
        return None
    return (size, size, dataset.get("channels", 3))


def _check_image_folder_config(dataset: Mapping) -> None:
    for split in ("train", "test"):
        folder = Path(dataset["path"]) / split
        if not is_dir(folder):
            raise ConfigError(
                f"config key 'dataset.path': expected a folder {folder.resolve()} with one sub-folder of images per class"
            )


# Decoded pixels above which `storage: auto` reads an image_folder from disk rather than
# holding it in memory (and on the GPU): CIFAR-10's 50,000 32x32 images are 150 MB.
AUTO_MEMORY_BYTES = 4 << 30


def _image_folder_storage(options: Mapping, root: Path) -> str:
    """``memory`` or ``disk``: as ``dataset.storage`` says, or by the decoded size for ``auto``."""
    from svp.data.disk import DEFAULT_IMAGE_SIZE, count_images

    storage = options.get("storage", "auto")
    if storage not in ("auto", "memory", "disk"):
        raise DataError(f"config key {config_key('storage')}: expected auto, memory or disk, got {storage!r}")
    if storage == "auto":
        files = sum(count_images(root / split) for split in ("train", "test"))
        side = int_option(options, "image_size", None, minimum=1) or DEFAULT_IMAGE_SIZE
        storage = "disk" if files * side * side * options.get("channels", 3) > AUTO_MEMORY_BYTES else "memory"
        print(f"image_folder: {files:,} images at {side}x{side} read from {storage} (dataset.storage: auto)", flush=True)
    if storage == "memory":
        for key in ("check_images", "skip_bad_images"):
            if key in options:
                raise DataError(
                    f"config key {config_key(key)}: only for images read from disk (dataset.storage: disk); in memory "
                    "every image is decoded while preparing, and a bad one stops it"
                )
    elif options.get("channels", 3) != 3:
        raise DataError(f"config key {config_key('channels')}: images read from disk are colour (3 channels); remove the key")
    return storage


@register_dataset(
    "image_folder",
    keys=("path", "image_size", "channels", "storage", "check_images", "skip_bad_images", *AUGMENT_KEYS),
    required=("path",),
    check=_check_image_folder_config,
    image_shape=_image_folder_shape,
)
def build_image_folder(options: dict) -> PreparedData:
    """Image files in ``<path>/train/<class>/*`` and ``<path>/test/<class>/*`` (torchvision ImageFolder layout):
    decoded into memory, or, too large for it (``dataset.storage``), listed and read from disk (svp.data.disk)."""
    path = required_option(options, "path", "a folder with train/<class>/ and test/<class>/")
    root = Path(path).expanduser().resolve()
    if _image_folder_storage(options, root) == "disk":
        from svp.data.disk import prepare_disk

        if "crop_padding" in options:
            raise DataError(f"config key {config_key('crop_padding')}: images read from disk are augmented by random-resized crops; remove the key")
        return prepare_disk("image_folder", options, root, {"train": "train", "test": "test"})
    size = int_option(options, "image_size", None, minimum=1)
    if size is not None and size > MAX_IMAGE_SIDE:
        raise DataError(
            f"config key {config_key('image_size')}: {size} is above {MAX_IMAGE_SIDE}, the largest image side svp reads"
        )
    channels = options.get("channels", 3)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise DataError(f"config key {config_key('channels')}: expected 1 (grey) or 3 (colour), got {channels!r}")
    mode = "L" if channels == 1 else "RGB"

    folders = {split: _discover_image_folder(root / split) for split in ("train", "test")}
    if folders["train"].classes != folders["test"].classes:
        raise DataError(
            f"config key {config_key('path')}: {root / 'train'} has classes {folders['train'].classes} but "
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
        augment=augmentation(options, crop_padding=_padding_for_height(all_images.shape[1]), flip=False),
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

    def raw_files(self, cls: type) -> list[RawFile]:
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

    def raw_files(self, cls: type) -> list[RawFile]:
        extracted = tuple(name for name, _ in self._members(cls))
        return [RawFile(cls.filename, cls.tgz_md5, (cls.url,), extracted)]

    def load(self, cls: type, root: Path, download: bool) -> _Splits:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=False)  # the one archive holds both splits
        # torchvision md5-checked every member before reading it: its md5s are the verified ones.
        read_files = {str(root / name): md5 for name, md5 in self._members(cls)}
        archive = root / cls.filename
        if archive.is_file():
            read_files[str(archive)] = file_digest(archive, "md5")
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

    def raw_files(self, cls: type) -> list[RawFile]:
        return [RawFile(cls.split_list[s][1], cls.split_list[s][2], (cls.split_list[s][0],)) for s in self.splits]

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

    def raw_files(self, cls: type) -> list[RawFile]:
        return [
            RawFile(name, md5, tuple(mirror + name for mirror in cls.mirrors), (Path(name).stem,))
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
            read_files[str(path)] = file_digest(path, "md5")
        return _Splits(
            train.data.numpy()[..., np.newaxis],
            train.targets.numpy().astype(np.int64),
            test.data.numpy()[..., np.newaxis],
            test.targets.numpy().astype(np.int64),
            # MNIST's names are "0 - zero", ...: keep the digit, like svhn and digits.
            [str(name).split(" - ")[0] for name in cls.classes],
            read_files,
        )


def _torchvision_class(class_name: str) -> type:
    import torchvision.datasets

    return getattr(torchvision.datasets, class_name)


def _build_torchvision(
    name: str, class_name: str, family: _TorchvisionFamily, options: Mapping, augment: dict
) -> PreparedData:
    cls = _torchvision_class(class_name)
    root = Path(options.get("root", "data")).expanduser().resolve()
    download = bool_option(options, "download", True)
    folder = family.folder(cls, root)
    raw_files = family.raw_files(cls)
    location = f"folder {folder} (from config key {config_key('root')}: {root})"
    # Checked before any slow work: without download, missing files are an immediate error.
    to_fetch = [raw for raw in raw_files if not raw.usable(folder)]
    if not download and to_fetch:
        missing = [raw for raw in to_fetch if not (folder / raw.name).is_file()]
        if missing:
            raise DataError(
                f"data set {name!r}: {config_key('download')} is false and these files are missing from the {location}:\n"
                f"{describe_files(folder, missing)}\n"
                f"Copy them into that folder, or set {config_key('download')}: true to fetch them (needs the host reachable)."
            )
        corrupt = corrupt_files(folder, to_fetch)
        if corrupt:
            raise DataError(f"data set {name!r}: " + "\n".join(corrupt))
        # The archives are here and intact: torchvision's download step then only extracts them.
        download = True
    try:
        splits = family.load(cls, root, download)
    except FETCH_ERRORS as error:
        notes = "".join(f"\n{note}" for note in corrupt_files(folder, raw_files))
        raise DataError(
            f"data set {name!r}: torchvision could not download or read its files "
            f"({type(error).__name__}: {error}).{notes}\n"
            f"Expected in the {location}:\n{describe_files(folder, raw_files)}\n"
            f"If the host is unreachable from this machine, fetch the files elsewhere and copy them into that "
            f"folder; {config_key('download')}: true fetches them when the host is reachable."
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


def _register_torchvision(
    name: str,
    class_name: str,
    family: _TorchvisionFamily,
    crop_padding: int,
    flip: bool,
    size: tuple[int, int],
    image_shape: tuple[int, int, int],
):
    def build(options: dict) -> PreparedData:
        return _build_torchvision(name, class_name, family, options, augmentation(options, crop_padding, flip))

    build.__name__ = build.__qualname__ = f"build_{name}"
    build.__doc__ = f"torchvision's {class_name}, downloaded (if allowed), md5-checked and extracted by torchvision."
    register_dataset(
        name, keys=(*DOWNLOAD_KEYS, *AUGMENT_KEYS), training_set=known_size(*size), image_shape=lambda _: image_shape
    )(build)


# Natural images: mirroring keeps the class, and 4-pixel padding is the standard CIFAR recipe.
_register_torchvision(
    "cifar10", "CIFAR10", _Cifar(), crop_padding=4, flip=True, size=(50_000, 10), image_shape=(32, 32, 3)
)
_register_torchvision(
    "cifar100", "CIFAR100", _Cifar(), crop_padding=4, flip=True, size=(50_000, 100), image_shape=(32, 32, 3)
)
# Digits: a mirrored digit is not the same digit (or no digit), so no flipping.
_register_torchvision("svhn", "SVHN", _Svhn(), crop_padding=4, flip=False, size=(73_257, 10), image_shape=(32, 32, 3))
_register_torchvision("mnist", "MNIST", _Mnist(), crop_padding=2, flip=False, size=(60_000, 10), image_shape=(28, 28, 1))
# Clothes are left-right symmetric (a mirrored shoe is still a shoe): flipping is a valid augmentation.
_register_torchvision(
    "fashionmnist", "FashionMNIST", _Mnist(), crop_padding=2, flip=True, size=(60_000, 10), image_shape=(28, 28, 1)
)
