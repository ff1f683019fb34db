"""The data set registry, the limits on what a user can give, and the helpers every builder shares.

A builder turns the ``dataset`` section of a config into a :class:`PreparedData` (images)
or a ``svp.data.text.PreparedText``; ``@register_dataset`` files it under its name and
modality. The option helpers read config keys and name the key in their errors; the
raw-file helpers describe and check downloaded archives.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from svp.errors import DataError

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

# Dataset keys several data sets read.
AUGMENT_KEYS = ("crop_padding", "flip")
DOWNLOAD_KEYS = ("root", "download")
ROW_LIMIT_KEYS = ("train_rows", "test_rows")


@dataclass(frozen=True)
class ConfigRules:
    """What a data set asks of its config's ``dataset`` section, checked before any job runs.

    ``keys``: the keys it reads beyond ``name`` (None: any), so a key it would ignore is
    refused; ``required``: those it cannot do without; ``file_lists``: keys that list
    input files, each of which must exist; ``check``: further checks of the section,
    raising :class:`svp.errors.ConfigError`; ``training_set``: (training examples,
    classes) where known before the data is prepared, so fractions can be checked early;
    ``image_shape``: likewise the shape of its images (:func:`image_option_problem`).
    """

    keys: tuple[str, ...] | None = None
    required: tuple[str, ...] = ()
    file_lists: tuple[str, ...] = ()
    check: Callable[[Mapping], None] | None = None
    training_set: Callable[[Mapping], tuple[int, int]] | None = None
    # (height, width, channels) of the prepared images where known before preparing, so that
    # the options that depend on them (crop_padding, the models' smallest input) are checked early.
    image_shape: Callable[[Mapping], tuple[int, int, int] | None] | None = None


CONFIG_RULES: dict[str, ConfigRules] = {}


def register_dataset(name: str, modality: str = "image", **rules) -> Callable[[Builder], Builder]:
    """Decorator: make ``builder(options) -> PreparedData`` available as ``dataset.name: <name>``.

    A ``text`` builder returns ``svp.data.text.PreparedText`` instead of ``PreparedData``.
    ``rules`` are the :class:`ConfigRules` of its config section.
    """

    def decorate(builder: Builder) -> Builder:
        if name in DATASETS:
            raise ValueError(f"data set {name!r} is registered twice")
        DATASETS[name] = builder
        MODALITIES[name] = modality
        CONFIG_RULES[name] = ConfigRules(**rules)
        return builder

    return decorate


def config_rules(name: str) -> ConfigRules:
    """The config rules the registered data set ``name`` declared."""
    return CONFIG_RULES.get(name, ConfigRules())


def known_size(examples: int, classes: int) -> Callable[[Mapping], tuple[int, int]]:
    """``training_set`` of a data set with a fixed size; ``train_rows`` caps it where read."""
    return lambda options: (min(examples, options.get("train_rows") or examples), classes)


def known_image_shape(dataset: Mapping) -> tuple[int, int, int] | None:
    """(height, width, channels) of the data set's prepared images, where known without preparing it."""
    image_shape = config_rules(dataset["name"]).image_shape
    return None if image_shape is None else image_shape(dataset)


def unread_key_problem(dataset: Mapping, filled_in: Mapping | None = None) -> str | None:
    """Why the ``dataset`` section holds a key its data set does not read, or None.

    The one check of the config's ``dataset`` section (as written) and of ``svp prepare
    --dataset``. ``filled_in``: keys config validation fills in with a default for every
    data set; holding just that value, they are not the user's and pass. ``validation``
    (the held-out split, svp.data.validation) is read for every data set.
    """
    name = dataset["name"]
    reads = config_rules(name).keys
    if reads is None:
        return None
    for key in dataset:
        if key in ("name", "validation") or key in reads or (filled_in and key in filled_in and dataset[key] == filled_in[key]):
            continue
        users = sorted(other for other in list_datasets() if key in (config_rules(other).keys or ()))
        who = f"only {', '.join(users)} do" if users else "no data set reads it"
        return (
            f"config key 'dataset.{key}': data set {name!r} does not use it ({who}); "
            f"remove it. Keys {name!r} reads: {', '.join(reads)}"
        )
    return None


def image_option_problem(dataset: Mapping, shape: Sequence[int]) -> str | None:
    """Why a ``dataset`` option does not fit images of ``shape`` (height, width, channels), or None.

    Asked where the shape is first known: by config validation for the data sets that
    declare it (``image_shape``), else by the prepare step once the images are read. Of the
    options, only the crop padding depends on the images' size (``image_size`` itself is
    checked against the models by ``svp.models.specs.input_problem``).
    """
    height, width = int(shape[0]), int(shape[1])
    padding = dataset.get("crop_padding")
    largest = min(height, width) // 2
    if isinstance(padding, int) and not isinstance(padding, bool) and padding > largest:
        return (
            f"config key 'dataset.crop_padding': {padding} pixels of padding around {height}x{width} images; a random "
            f"crop could then show less than half of the image's height or width (at worst none of it); use at most "
            f"{largest}, half the shorter side"
        )
    return None


def is_file(path) -> bool:
    try:
        return Path(path).is_file()
    except OSError:  # e.g. a name too long for the file system
        return False


def is_dir(path) -> bool:
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def list_datasets() -> list[str]:
    return sorted(DATASETS)


def dataset_modality(name: str) -> str:
    """``image`` or ``text``: the kind of examples the registered data set ``name`` holds."""
    return MODALITIES.get(name, "image")


# --------------------------------------------------------------------------- options


def config_key(name: str) -> str:
    return f"dataset.{name}"


def bool_option(options: Mapping, name: str, default: bool) -> bool:
    value = options.get(name, default)
    # A string such as "false" would be truthy: insist on a YAML boolean.
    if not isinstance(value, bool):
        raise DataError(f"config key {config_key(name)}: expected true or false, got {value!r}")
    return value


def int_option(options: Mapping, name: str, default: int | None, minimum: int) -> int | None:
    value = options.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"config key {config_key(name)}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def fraction_option(options: Mapping, name: str, default: float) -> float:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise DataError(f"config key {config_key(name)}: expected a number between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def required_option(options: Mapping, name: str, what: str) -> Any:
    if options.get(name) is None:
        raise DataError(f"config key {config_key(name)} is required for data set {options.get('name')!r}: {what}")
    return options[name]


def path_list_option(options: Mapping, name: str) -> list[Path]:
    value = required_option(options, name, "a list of .npz files")
    paths = [value] if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(paths, (list, tuple)) or not paths:
        raise DataError(f"config key {config_key(name)}: expected a non-empty list of .npz file paths, got {value!r}")
    resolved = [Path(path).expanduser().resolve() for path in paths]
    for index, path in enumerate(resolved):
        if not path.is_file():
            raise DataError(f"config key {config_key(name)}[{index}]: file not found: {path}; fix the path in the config")
    return resolved


def augmentation(options: Mapping, crop_padding: int, flip: bool) -> dict:
    """The data set's default augmentation, overridden by ``dataset.crop_padding`` / ``dataset.flip``."""
    return {
        "crop_padding": int_option(options, "crop_padding", crop_padding, minimum=0),
        "flip": bool_option(options, "flip", flip),
    }


# --------------------------------------------------------------------------- checksums


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- torchvision


@dataclass(frozen=True)
class RawFile:
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
            found = file_digest(path, "md5")
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


# Errors torchvision's download, extraction and readers raise for missing, unreachable
# or corrupt files (URLError is an OSError).
FETCH_ERRORS = (
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


def describe_files(folder: Path, files: list[RawFile]) -> str:
    return "\n".join(f"  {folder / raw.name}  ({raw.describe_check()})  from {' or '.join(raw.urls)}" for raw in files)


def corrupt_files(folder: Path, files: list[RawFile]) -> list[str]:
    notes = []
    for raw in files:
        path = folder / raw.name
        if path.is_file() and (problem := raw.problem(path)):
            notes.append(f"{path} {problem}: the file is corrupt or incomplete; delete it and rerun")
    return notes


def check_classes(name: str, classes: list[str], y_train: np.ndarray, y_test: np.ndarray) -> None:
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
