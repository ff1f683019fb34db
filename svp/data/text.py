"""Text data sets: any labelled CSV, and Zhang et al.'s Amazon reviews.

Text data sets register in the same registry as the image data sets and are prepared
into the same three files. In ``train.npz`` and ``test.npz`` the texts are stored
without pickling: ``text`` holds the UTF-8 bytes of all texts one after another (uint8)
and ``offsets`` (int64, N + 1) where each starts, so text i is
``text[offsets[i]:offsets[i + 1]]``; ``y`` holds the labels as for images. The manifest
says ``modality: text``.

* ``amazon_polarity`` and ``amazon_full``: Zhang et al.'s (2015) Amazon review CSVs
  (columns class, title, text; classes 1..K become labels 0..K-1; the text of an
  example is its title and text joined by a space, as in the SVP authors' code),
  downloaded from the fast.ai mirror with torchvision's download and extraction code.
* ``imdb``: Maas et al.'s (2011) movie reviews, ``aclImdb_v1.tar.gz`` from its authors'
  site (md5-checked), extracted and read as one review file per example (neg 0, pos 1),
  each split in a fixed shuffled order so that ``train_rows`` takes a random sample.
* ``text_csv``: any CSV (optionally gzip-compressed) of labelled texts, with the label
  and text columns named in the config.

Bad input (an empty text, a label that is not one of the classes, a malformed row, a
file that is not UTF-8) stops preparation with the file and line; nothing is written.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import random
import re
import shutil
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from svp.data.encoding import CODES, UNKNOWN, TextArray
from svp.data.registry import (
    DOWNLOAD_KEYS,
    ROW_LIMIT_KEYS,
    FETCH_ERRORS,
    MAX_CLASSES,
    RawFile,
    bool_option,
    check_classes,
    config_key,
    corrupt_files,
    describe_files,
    file_digest,
    int_option,
    known_size,
    path_list_option,
    register_dataset,
)
from svp.errors import ConfigError, DataError
from svp.io import atomic_path

# The longest field a CSV may hold, in characters: far beyond any review (character
# models read the first 1014), short enough that a file without line breaks or with an
# unterminated quote stops at once instead of filling the memory.
MAX_TEXT_CHARACTERS = 10_000_000


# --------------------------------------------------------------------------- prepared form


@dataclass
class PreparedText:
    """One text data set in memory, as every text builder returns it."""

    train_texts: list[str]
    y_train: np.ndarray  # int64 (N,)
    test_texts: list[str]
    y_test: np.ndarray
    classes: list[str]
    source: str
    source_files: dict[str, str] = field(default_factory=dict)

    modality = "text"

    def validate(self, name: str) -> None:
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise DataError(f"data set {name!r}: class names must be non-empty and unique, got {self.classes}")
        for split, texts, y in (("train", self.train_texts, self.y_train), ("test", self.test_texts, self.y_test)):
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.ndim != 1 or len(y) != len(texts):
                raise DataError(f"data set {name!r}: {split} needs one int64 label per text")
            if not texts:
                raise DataError(f"data set {name!r}: the {split} split is empty; check the data set's config and files")
            if y.min() < 0 or y.max() >= len(self.classes):
                raise DataError(
                    f"data set {name!r}: {split} labels span {y.min()} to {y.max()}, outside the classes "
                    f"0 to {len(self.classes) - 1}"
                )
        check_classes(name, self.classes, self.y_train, self.y_test)

    def split_arrays(self) -> dict[str, dict[str, np.ndarray]]:
        arrays = {}
        for split, texts, y in (("train", self.train_texts, self.y_train), ("test", self.test_texts, self.y_test)):
            packed = TextArray.from_strings(texts)
            arrays[split] = {"text": packed.data, "offsets": packed.offsets, "y": y}
        return arrays

    def manifest_fields(self, arrays: Mapping[str, Mapping[str, np.ndarray]]) -> dict:
        """Characters per training text, and the share of characters in the alphabet."""
        raw = arrays["train"]["text"]
        characters = TextArray(raw, arrays["train"]["offsets"]).character_counts()
        starts = raw[(raw & 0xC0) != 0x80]
        return {
            "characters": {
                "train_mean": float(characters.mean()),
                "train_max": int(characters.max()),
                "alphabet_share": float(np.mean(CODES[starts] != UNKNOWN)) if len(starts) else 0.0,
            }
        }


def load_text_split(archive: Mapping[str, np.ndarray], path: Path, hint: str) -> tuple[TextArray, np.ndarray]:
    """The texts and labels of one prepared text split (already opened), checked."""
    missing = sorted({"text", "offsets", "y"} - set(archive.keys()))
    if missing:
        raise DataError(f"{path}: arrays {missing} missing, not a prepared text split; {hint}")
    text, offsets, y = archive["text"], archive["offsets"], archive["y"]
    ok = (
        text.dtype == np.uint8 and text.ndim == 1 and offsets.dtype == np.int64 and offsets.ndim == 1
        and y.dtype == np.int64 and y.shape == (len(offsets) - 1,)
        and len(offsets) >= 1 and offsets[0] == 0 and offsets[-1] == len(text) and np.all(np.diff(offsets) >= 0)
    )
    if not ok:
        raise DataError(f"{path}: inconsistent text arrays (text, offsets, y); {hint}")
    return TextArray(text, offsets), y


# --------------------------------------------------------------------------- CSV reading


class _ClassMap:
    """Label values as they appear in the file (text) -> label index."""

    def __init__(self, values: Sequence[str], names: Sequence[str]) -> None:
        self.values = list(values)
        self.names = list(names)
        self.index = {value: i for i, value in enumerate(self.values)}

    def __call__(self, value: str) -> int | None:
        return self.index.get(value)


def _open_text(path: Path) -> io.TextIOBase:
    handle = open(path, "rb")
    magic = handle.read(2)
    handle.seek(0)
    binary = gzip.GzipFile(fileobj=handle, mode="rb") if magic == b"\x1f\x8b" else handle
    # newline="" lets the csv module see newlines inside quoted fields; utf-8-sig drops
    # the byte-order mark some spreadsheets write before the header.
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


def _column_index(column: Any, header: list[str] | None, path: Path, option: str) -> int:
    where = f"{path} (config key {config_key(option)})"
    if header is None:
        if isinstance(column, bool) or not isinstance(column, int) or column < 0:
            raise DataError(f"{where}: without a header row, columns are 0-based positions; got {column!r}")
        return column
    if isinstance(column, int) and not isinstance(column, bool):
        if not 0 <= column < len(header):
            raise DataError(f"{where}: column {column} is outside the {len(header)} columns {header}")
        return column
    if column not in header:
        raise DataError(f"{where}: no column named {column!r}; the header has {header}")
    return header.index(column)


@dataclass
class _CsvLayout:
    label_column: Any
    text_columns: list[Any]
    header: bool
    expected_fields: int | None = None  # checked on every row when set (Zhang et al.'s 3 columns)


def read_labelled_csv(
    path: Path,
    layout: _CsvLayout,
    classes: _ClassMap | None,
    max_rows: int | None,
    option: str,
    first_seen: dict[str, str] | None = None,
) -> tuple[list[str], list[str | int]]:
    """Texts and labels of one CSV file; with ``classes`` labels are indices, otherwise raw values.

    Every row is checked; the first bad one stops with the file, line and what is wrong.
    ``first_seen``, when given, is filled with where each raw label value first appears.
    """
    csv.field_size_limit(MAX_TEXT_CHARACTERS)  # reviews can be longer than csv's 128 KiB default
    texts: list[str] = []
    labels: list[str | int] = []
    line = 0
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle, strict=True)
            header = None
            if layout.header:
                header = next(reader, None)
                if header is None:
                    raise DataError(f"{path} (config key {config_key(option)}): the file is empty; expected a header row")
            label_at = _column_index(layout.label_column, header, path, "label_column")
            text_at = [_column_index(c, header, path, "text_column") for c in layout.text_columns]
            fields = len(header) if header is not None else layout.expected_fields
            needed = max([label_at, *text_at]) + 1
            for row_number, row in enumerate(reader, start=1):
                line = reader.line_num
                where = f"{path}, line {line} (data row {row_number})"
                if fields is not None and len(row) != fields:
                    raise DataError(f"{where}: malformed row with {len(row)} fields, expected {fields}")
                if len(row) < needed:
                    raise DataError(f"{where}: malformed row with {len(row)} fields, needs at least {needed}")
                text = " ".join(row[i] for i in text_at)
                if not text.strip():
                    raise DataError(f"{where}: the text is empty")
                value = row[label_at].strip()
                if classes is None:
                    if not value:
                        raise DataError(f"{where}: the label is empty")
                    if first_seen is not None:
                        first_seen.setdefault(value, where)
                    labels.append(value)
                else:
                    label = classes(value)
                    if label is None:
                        raise DataError(
                            f"{where}: label {value!r} is not one of the classes {classes.values}"
                            f" (config key {config_key('classes')})"
                        )
                    labels.append(label)
                texts.append(text)
                if max_rows is not None and row_number >= max_rows:
                    break
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            raise DataError(
                f"{path}, line {line + 1}: a field longer than {MAX_TEXT_CHARACTERS:,} characters, the longest text "
                f"svp reads (often an unterminated quote that runs to the end of the file); fix or shorten it"
            ) from None
        raise DataError(f"{path}, line {line + 1}: malformed CSV ({error})") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}, after line {line}: not valid UTF-8 ({error}); convert the file to UTF-8") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataError(f"{path}: truncated or corrupt gzip file ({error})") from None
    except OSError as error:
        raise DataError(f"{path} (config key {config_key(option)}): cannot read it ({error})") from None
    if not texts:
        raise DataError(f"{path} (config key {config_key(option)}): no data rows")
    return texts, labels


def _sorted_label_values(values: Iterable[str]) -> list[str]:
    """Integer-looking labels in numeric order (so 10 follows 9), anything else as text."""
    try:
        return sorted(values, key=int)
    except ValueError:
        return sorted(values)


def _as_number(value: str) -> Decimal | None:
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _training_label_values(first_seen: dict[str, str], label_column: Any) -> list[str]:
    """The classes of undeclared labels: the distinct training values, each number written one way.

    ``1`` and ``01`` (or ``1.0``) would otherwise be two classes of the same label.
    """
    if len(first_seen) > MAX_CLASSES:
        raise DataError(
            f"config key {config_key('label_column')}: the training files hold {len(first_seen):,} distinct labels, more "
            f"than the {MAX_CLASSES:,} classes svp accepts; is {label_column!r} really the label column?"
        )
    spelled: dict[Decimal, str] = {}
    for value, where in first_seen.items():
        number = _as_number(value)
        if number is None:
            continue
        if number in spelled:
            other = spelled[number]
            raise DataError(
                f"{where}: label {value!r} is the same number as label {other!r} at {first_seen[other]}; they "
                f"would become two classes. Write each label the same way in every file"
            )
        spelled[number] = value
    return _sorted_label_values(first_seen)


def _class_map_option(options: Mapping) -> _ClassMap | None:
    value = options.get("classes")
    if value is None:
        return None
    if isinstance(value, Mapping):
        pairs = [(str(k).strip(), str(v)) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        pairs = [(str(v).strip(), str(v)) for v in value]
    else:
        raise DataError(
            f"config key {config_key('classes')}: expected a list of the label values in label order "
            f"(e.g. [neg, pos]) or a mapping label value -> class name, got {value!r}"
        )
    values = [v for v, _ in pairs]
    if not pairs or len(set(values)) != len(values) or "" in values:
        raise DataError(f"config key {config_key('classes')}: label values must be non-empty and unique, got {values}")
    return _ClassMap(values, [name for _, name in pairs])


def _rows_option(options: Mapping, name: str) -> int | None:
    return int_option(options, name, None, minimum=1)


def _read_csv_files(paths: list[Path], layout, classes, max_rows, option, first_seen=None) -> tuple[list[str], list]:
    texts, labels = [], []
    for path in paths:
        remaining = None if max_rows is None else max_rows - len(texts)
        if remaining == 0:
            break
        more_texts, more_labels = read_labelled_csv(path, layout, classes, remaining, option, first_seen)
        texts += more_texts
        labels += more_labels
    return texts, labels


def _check_text_csv_config(dataset: Mapping) -> None:
    if isinstance(dataset.get("classes"), str):
        raise ConfigError(
            "config key 'dataset.classes': for text_csv, the label values in label order (e.g. [neg, pos]) "
            "or a mapping from label value to class name"
        )


@register_dataset(
    "text_csv",
    modality="text",
    keys=("train", "test", "classes", "label_column", "text_column", "header", *ROW_LIMIT_KEYS),
    required=("train", "test"),
    file_lists=("train", "test"),
    check=_check_text_csv_config,
)
def build_text_csv(options: dict) -> PreparedText:
    """Labelled texts from CSV files (optionally .gz) with a header row naming the columns."""
    train_paths = path_list_option(options, "train")
    test_paths = path_list_option(options, "test")
    header = bool_option(options, "header", True)
    label_column = options.get("label_column", "label" if header else 0)
    text_column = options.get("text_column", "text" if header else 1)
    text_columns = list(text_column) if isinstance(text_column, (list, tuple)) else [text_column]
    if not text_columns:
        raise DataError(f"config key {config_key('text_column')}: name at least one column")
    layout = _CsvLayout(label_column, text_columns, header)
    classes = _class_map_option(options)
    train_rows, test_rows = _rows_option(options, "train_rows"), _rows_option(options, "test_rows")

    if classes is None:
        # The classes are the label values of the training files; test labels must be among them.
        first_seen: dict[str, str] = {}
        train_texts, raw_labels = _read_csv_files(train_paths, layout, None, train_rows, "train", first_seen)
        values = _training_label_values(first_seen, label_column)
        classes = _ClassMap(values, values)
        y_train = np.array([classes(v) for v in raw_labels], dtype=np.int64)
    else:
        train_texts, labels = _read_csv_files(train_paths, layout, classes, train_rows, "train")
        y_train = np.array(labels, dtype=np.int64)
    test_texts, test_labels = _read_csv_files(test_paths, layout, classes, test_rows, "test")
    columns = f"label column {label_column!r}, text column(s) {text_columns!r}"
    limits = "".join(f", first {n:,} {s} rows" for s, n in (("training", train_rows), ("test", test_rows)) if n)
    return PreparedText(
        train_texts=train_texts,
        y_train=y_train,
        test_texts=test_texts,
        y_test=np.array(test_labels, dtype=np.int64),
        classes=classes.names,
        source=(
            f"CSV files: train {[str(p) for p in train_paths]}, test {[str(p) for p in test_paths]} "
            f"({columns}; class order {classes.values}{limits})"
        ),
        source_files={str(p): file_digest(p) for p in dict.fromkeys(train_paths + test_paths)},
    )


# --------------------------------------------------------------------------- Amazon reviews


@dataclass(frozen=True)
class _AmazonSpec:
    folder: str  # the archive's top folder
    archive: "RawFile"  # what is downloaded (fast.ai's mirror)
    original: "RawFile"  # Zhang et al.'s own archive (Google Drive), accepted when present
    csv_md5: dict[str, str]  # md5 of train.csv / test.csv, as torchtext records them
    rows: dict[str, int]
    classes: list[str]


FIRST_MIB = 1 << 20
_S3 = "https://s3.amazonaws.com/fast-ai-nlp/"
_GDRIVE = "https://drive.google.com/uc?export=download&id="

# Where the checksums come from (none could be recomputed here: the hosts are unreachable):
# - fast.ai's .tgz: size and md5 of the first MiB, from fastai's data/checks.txt, which is
#   what fastai's own untar_data checks; fast.ai publishes no md5 of the whole file.
# - Zhang et al.'s .tar.gz (Google Drive) and the two CSVs inside: torchtext's
#   AmazonReviewPolarity / AmazonReviewFull (MD5 and _EXTRACTED_FILES_MD5).
# Whether fast.ai's CSVs are byte-identical to the Google Drive ones is not verified, so
# a CSV md5 that differs is reported in the log and the manifest, not an error; the
# archive's structure (its two CSVs, 3 columns, classes 1..K, row counts) is checked.
AMAZON: dict[str, _AmazonSpec] = {
    "amazon_polarity": _AmazonSpec(
        folder="amazon_review_polarity_csv",
        archive=RawFile(
            "amazon_review_polarity_csv.tgz",
            "676f7e5208ec343c8274b4bb085bc938",
            (_S3 + "amazon_review_polarity_csv.tgz",),
            ("amazon_review_polarity_csv/train.csv", "amazon_review_polarity_csv/test.csv"),
            size=688_339_454,
            md5_bytes=FIRST_MIB,
        ),
        original=RawFile(
            "amazon_review_polarity_csv.tar.gz",
            "fe39f8b653cada45afd5792e0f0e8f9b",
            (_GDRIVE + "0Bz8a_Dbh9QhbaW12WVVZS2drcnM",),
        ),
        csv_md5={"train": "520937107c39a2d1d1f66cd410e9ed9e", "test": "f4c8bded2ecbde5f996b675db6228f16"},
        rows={"train": 3_600_000, "test": 400_000},
        classes=["negative", "positive"],
    ),
    "amazon_full": _AmazonSpec(
        folder="amazon_review_full_csv",
        archive=RawFile(
            "amazon_review_full_csv.tgz",
            "4a1196cf0adaea22f4bc3f592cddde90",
            (_S3 + "amazon_review_full_csv.tgz",),
            ("amazon_review_full_csv/train.csv", "amazon_review_full_csv/test.csv"),
            size=643_695_014,
            md5_bytes=FIRST_MIB,
        ),
        original=RawFile(
            "amazon_review_full_csv.tar.gz",
            "57d28bd5d930e772930baddf36641c7c",
            (_GDRIVE + "0Bz8a_Dbh9QhbZVhsUnRWRDhETzA",),
        ),
        csv_md5={"train": "31b268b09fd794e0ca5a1f59a0358677", "test": "0f1e78ab60f625f2a30eab6810ef987c"},
        rows={"train": 3_000_000, "test": 650_000},
        classes=["1 star", "2 stars", "3 stars", "4 stars", "5 stars"],
    ),
}


def _fetch_amazon(name: str, spec: _AmazonSpec, folder: Path, download: bool) -> None:
    """Make ``folder/<spec.folder>/{train,test}.csv`` exist: extract a local archive or download one."""
    from torchvision.datasets.utils import download_url, extract_archive

    archive, original = spec.archive, spec.original
    location = f"folder {folder} (from config key {config_key('root')})"
    if archive.usable(folder):
        return
    if (folder / original.name).is_file():
        chosen = original
    elif (folder / archive.name).is_file():
        chosen = archive
    elif not download:
        raise DataError(
            f"data set {name!r}: {config_key('download')} is false and the archive is missing from the {location}:\n"
            f"{describe_files(folder, [archive])}\n"
            f"or, instead, Zhang et al.'s original:\n{describe_files(folder, [original])}\n"
            f"Copy one into that folder, or set {config_key('download')}: true to fetch the first (needs the host reachable)."
        )
    else:
        chosen = archive
        try:
            download_url(archive.urls[0], str(folder), archive.name)
        except FETCH_ERRORS as error:
            (folder / archive.name).unlink(missing_ok=True)
            raise DataError(
                f"data set {name!r}: could not download {archive.urls[0]} ({type(error).__name__}: {error}).\n"
                f"Expected in the {location}:\n{describe_files(folder, [archive])}\n"
                f"If the host is unreachable from this machine, fetch the file elsewhere and copy it into that "
                f"folder; {config_key('download')}: true fetches it when the host is reachable."
            ) from error
    corrupt = corrupt_files(folder, [chosen])
    if corrupt:
        raise DataError(f"data set {name!r}: " + "\n".join(corrupt))
    try:
        extract_archive(str(folder / chosen.name), str(folder))
    except (tarfile.TarError, OSError, EOFError, zlib.error, RuntimeError) as error:
        raise DataError(f"data set {name!r}: cannot extract {folder / chosen.name} ({error})") from error
    if not archive.usable(folder):
        found = sorted(str(p.relative_to(folder)) for p in (folder / spec.folder).glob("*")) if (folder / spec.folder).is_dir() else []
        raise DataError(
            f"data set {name!r}: {folder / chosen.name} did not contain {list(archive.extracted)} "
            f"(found {found or 'no ' + spec.folder + '/ folder'}); it is not Zhang et al.'s archive"
        )


def _build_amazon(name: str, options: Mapping) -> PreparedText:
    from torchvision.datasets.utils import check_integrity

    spec = AMAZON[name]
    root = Path(options.get("root", "data")).expanduser().resolve()
    download = bool_option(options, "download", True)
    limits = {"train": _rows_option(options, "train_rows"), "test": _rows_option(options, "test_rows")}
    _fetch_amazon(name, spec, root, download)

    values = [str(k) for k in range(1, len(spec.classes) + 1)]
    classes = _ClassMap(values, spec.classes)
    layout = _CsvLayout(label_column=0, text_columns=[1, 2], header=False, expected_fields=3)
    splits, source_files, notes = {}, {}, []
    for split in ("train", "test"):
        path = root / spec.folder / f"{split}.csv"
        texts, labels = read_labelled_csv(path, layout, classes, limits[split], "root")
        if limits[split] is None and len(texts) != spec.rows[split]:
            raise DataError(
                f"{path}: {len(texts):,} rows, but Zhang et al.'s {split} split has {spec.rows[split]:,}; "
                f"the file is incomplete or another data set; delete it and its archive and rerun"
            )
        splits[split] = (texts, np.array(labels, dtype=np.int64))
        if check_integrity(str(path), spec.csv_md5[split]):
            source_files[str(path)] = spec.csv_md5[split]
        else:
            found = file_digest(path, "md5")
            source_files[str(path)] = found
            notes.append(f"{path} has md5 {found}, torchtext records {spec.csv_md5[split]}")
    for note in notes:
        print(f"warning: {note} (its structure checks passed; see svp/data/text.py on the checksums)", file=sys.stderr)
    for raw in (spec.archive, spec.original):
        if (root / raw.name).is_file():
            source_files[str(root / raw.name)] = file_digest(root / raw.name, "md5")
    limit_text = "".join(f", first {n:,} {s} rows" for s, n in limits.items() if n)
    return PreparedText(
        train_texts=splits["train"][0],
        y_train=splits["train"][1],
        test_texts=splits["test"][0],
        y_test=splits["test"][1],
        classes=list(spec.classes),
        source=(
            f"Zhang et al. (2015) {spec.folder} from {spec.archive.urls[0]}, extracted in {root / spec.folder}; "
            f"text = title + ' ' + text, classes 1..{len(spec.classes)} -> 0..{len(spec.classes) - 1}{limit_text}"
        ),
        source_files=source_files,
    )


def _register_amazon(name: str, size: tuple[int, int]) -> None:
    def build(options: dict) -> PreparedText:
        return _build_amazon(name, options)

    build.__name__ = build.__qualname__ = f"build_{name}"
    build.__doc__ = f"Zhang et al.'s {AMAZON[name].folder} (fast.ai mirror), downloaded if allowed and checked."
    register_dataset(name, modality="text", keys=(*DOWNLOAD_KEYS, *ROW_LIMIT_KEYS), training_set=known_size(*size))(build)


_register_amazon("amazon_polarity", size=(3_600_000, 2))
_register_amazon("amazon_full", size=(3_000_000, 5))


# --------------------------------------------------------------------------- IMDB reviews


# Maas et al.'s (2011) Large Movie Review Dataset v1.0, at its authors' address; the md5
# is the one torchtext's and PaddlePaddle's IMDB loaders check.
IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
IMDB_ARCHIVE = RawFile("aclImdb_v1.tar.gz", IMDB_MD5, (IMDB_URL,))
IMDB_FOLDER = "aclImdb"  # the archive's top folder
IMDB_CLASSES = {"neg": "negative", "pos": "positive"}  # folder -> class name; label = position
# Ratings (the second number of a file name <id>_<rating>.txt) each folder holds, per the
# archive's README: negative reviews are rated 4 or less, positive ones 7 or more.
IMDB_RATINGS = {"neg": range(1, 5), "pos": range(7, 11)}
IMDB_REVIEWS_PER_CLASS = {"train": 12_500, "test": 12_500}
# The order rows are kept in: the recipe of the CSV copy in ../shared/data/imdb, so that
# `train_rows` takes the first N of a shuffled split there and here alike.
IMDB_SHUFFLE_SEED = 0
_IMDB_REVIEW_NAME = re.compile(r"(\d+)_(\d+)\.txt")


def _imdb_alternatives(folder: Path) -> str:
    return (
        f"To prepare IMDB without downloading it here, either put {IMDB_ARCHIVE.name} "
        f"({IMDB_ARCHIVE.describe_check()}, from {IMDB_ARCHIVE.urls[0]}) into {folder} (config key {config_key('root')}), "
        f"or read a CSV copy of the reviews with `name: text_csv`, as config/imdb.yaml does with ../shared/data/imdb"
    )


def _keep_imdb_review(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    """tarfile's "data" filter, then only the labelled review files (unsup and the bag-of-words files skipped).

    The data filter runs on every member first, so an archive with a member that would
    land outside the folder (``../x``, a link to ``/etc``) is refused even where that
    member would have been skipped.
    """
    member = tarfile.data_filter(member, destination)
    parts = PurePosixPath(member.name).parts
    wanted = (
        len(parts) == 4 and parts[0] == IMDB_FOLDER and parts[1] in IMDB_REVIEWS_PER_CLASS
        and parts[2] in IMDB_CLASSES and member.isfile()
    )
    return member if wanted else None


def _extract_imdb(name: str, archive: Path, folder: Path) -> None:
    """Extract the review files of ``archive`` into ``folder/aclImdb``, all or nothing."""
    if not hasattr(tarfile, "data_filter"):  # added in Python 3.11.4 (and 3.12) as a security fix
        raise DataError(
            f"data set {name!r}: extracting {archive} safely needs tarfile's data filter, which Python "
            f"{sys.version.split()[0]} lacks: use Python 3.11.4 or later, or extract the archive yourself so "
            f"that {folder / IMDB_FOLDER} holds its train/ and test/ folders"
        )
    # A folder beside the final one, renamed when complete: an interrupted extraction
    # never leaves an aclImdb folder that looks finished.
    scratch = Path(tempfile.mkdtemp(prefix=f".{IMDB_FOLDER}.", suffix=".tmp", dir=folder))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(scratch, filter=_keep_imdb_review)
        except tarfile.FilterError as error:
            raise DataError(
                f"data set {name!r}: {archive} holds a member that would be written outside {folder} or is a "
                f"special file ({error}); svp refuses to extract it. It is not Maas et al.'s archive: delete it "
                f"and rerun"
            ) from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise DataError(
                f"data set {name!r}: cannot extract {archive} ({error}); the file is corrupt or incomplete: "
                f"delete it and rerun"
            ) from None
        missing = [
            f"{IMDB_FOLDER}/{split}/{label}"
            for split in IMDB_REVIEWS_PER_CLASS
            for label in IMDB_CLASSES
            if not (scratch / IMDB_FOLDER / split / label).is_dir()
        ]
        if missing:
            raise DataError(
                f"data set {name!r}: {archive} holds no review files in {missing}; it is not Maas et al.'s "
                f"archive: delete it and rerun"
            )
        os.replace(scratch / IMDB_FOLDER, folder / IMDB_FOLDER)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _download_imdb(name: str, folder: Path) -> None:
    from torchvision.datasets.utils import download_url

    path = folder / IMDB_ARCHIVE.name
    url = IMDB_ARCHIVE.urls[0]
    # Downloaded under a temporary name and renamed once its md5 checks out: a broken
    # transfer or a proxy's error page never sits in the folder under the archive's name.
    with atomic_path(path) as partial:
        partial.unlink()  # torchvision skips the download of a file that already exists
        try:
            download_url(url, str(folder), partial.name)
        except FETCH_ERRORS as error:
            raise DataError(
                f"data set {name!r}: could not download {url} ({type(error).__name__}: {error}).\n"
                f"{_imdb_alternatives(folder)}."
            ) from error
        problem = IMDB_ARCHIVE.problem(partial)
        if problem:
            raise DataError(
                f"data set {name!r}: the file downloaded from {url} {problem}; it was not kept. The host sent "
                f"something else (an error page?) or the transfer broke: rerun.\n{_imdb_alternatives(folder)}."
            )


def _fetch_imdb(name: str, folder: Path, download: bool) -> None:
    """Make ``folder/aclImdb/{train,test}/{neg,pos}`` exist: extract the archive, downloading it if needed."""
    if (folder / IMDB_FOLDER).is_dir():
        return
    archive = folder / IMDB_ARCHIVE.name
    if archive.is_file():
        problem = IMDB_ARCHIVE.problem(archive)
        if problem:
            raise DataError(
                f"data set {name!r}: {archive} {problem}: the file is corrupt, incomplete or another file; "
                f"delete it and rerun"
            )
    elif not download:
        raise DataError(
            f"data set {name!r}: {config_key('download')} is false and neither {archive} nor the extracted folder "
            f"{folder / IMDB_FOLDER} exists. {_imdb_alternatives(folder)}; or set {config_key('download')}: true to "
            f"fetch the archive (needs the host reachable)."
        )
    else:
        folder.mkdir(parents=True, exist_ok=True)
        _download_imdb(name, folder)
    _extract_imdb(name, archive, folder)


def _list_imdb_split(split: str, folder: Path) -> list[tuple[int, int, Path]]:
    """(label, review id, path) of every review of a split, each file name and rating checked."""
    reviews = []
    for label, class_folder in enumerate(IMDB_CLASSES):
        where = folder / IMDB_FOLDER / split / class_folder
        try:
            paths = list(where.iterdir())
        except OSError as error:
            raise DataError(
                f"{where}: cannot list it ({error}); delete {folder / IMDB_FOLDER} and rerun to extract the "
                f"archive again"
            ) from None
        for path in paths:
            match = _IMDB_REVIEW_NAME.fullmatch(path.name)
            if match is None or not path.is_file():
                raise DataError(
                    f"{path}: not a review file of Maas et al.'s archive (<id>_<rating>.txt); remove it, or delete "
                    f"{folder / IMDB_FOLDER} and rerun to extract the archive again"
                )
            if int(match[2]) not in IMDB_RATINGS[class_folder]:
                bounds = IMDB_RATINGS[class_folder]
                raise DataError(
                    f"{path}: rated {match[2]}, but the {class_folder} reviews are rated {bounds[0]} to {bounds[-1]}; "
                    f"the folder was changed: delete {folder / IMDB_FOLDER} and rerun to extract the archive again"
                )
            reviews.append((label, int(match[1]), path))
        expected = IMDB_REVIEWS_PER_CLASS[split]
        found = sum(1 for review in reviews if review[0] == label)
        if found != expected:
            raise DataError(
                f"{where}: {found:,} reviews, but Maas et al.'s {split} split has {expected:,} {class_folder} "
                f"reviews; the folder is incomplete or changed: delete {folder / IMDB_FOLDER} and rerun to extract "
                f"the archive again"
            )
    return reviews


def _read_imdb_split(split: str, folder: Path, rows: int | None) -> tuple[list[str], np.ndarray, str]:
    """The texts and labels of the first ``rows`` reviews of a split in svp's order, and a digest of them."""
    reviews = _list_imdb_split(split, folder)
    # The file system lists files in any order. Sorted by (label, id) and shuffled with a
    # fixed seed, the split has one order everywhere (the CSV copy's recipe), and its
    # first N reviews are a random sample of both classes, not N negative ones.
    reviews.sort(key=lambda review: (review[0], review[1], review[2].name))
    random.Random(IMDB_SHUFFLE_SEED).shuffle(reviews)
    kept = reviews[:rows]
    texts, digest = [], hashlib.sha256()
    for _, _, path in kept:
        try:
            content = path.read_bytes()
            text = content.decode("utf-8")
        except OSError as error:
            raise DataError(f"{path}: cannot read it ({error.strerror}); fix its permissions, or delete "
                            f"{folder / IMDB_FOLDER} and rerun") from None
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not valid UTF-8 ({error}); the file was changed: delete "
                            f"{folder / IMDB_FOLDER} and rerun to extract the archive again") from None
        if not text.strip():
            raise DataError(f"{path}: the review is empty; the file was changed: delete {folder / IMDB_FOLDER} "
                            f"and rerun to extract the archive again")
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + hashlib.sha256(content).digest())
        texts.append(text)
    return texts, np.array([label for label, _, _ in kept], dtype=np.int64), digest.hexdigest()


@register_dataset(
    "imdb", modality="text", keys=(*DOWNLOAD_KEYS, *ROW_LIMIT_KEYS), training_set=known_size(2 * IMDB_REVIEWS_PER_CLASS["train"], 2)
)
def build_imdb(options: dict) -> PreparedText:
    """Maas et al.'s IMDB reviews (25,000 train, 25,000 test), downloaded if allowed, md5-checked and extracted."""
    root = Path(options.get("root", "data")).expanduser().resolve()
    download = bool_option(options, "download", True)
    limits = {"train": _rows_option(options, "train_rows"), "test": _rows_option(options, "test_rows")}
    _fetch_imdb("imdb", root, download)
    splits, source_files = {}, {}
    archive = root / IMDB_ARCHIVE.name
    if archive.is_file():
        source_files[str(archive)] = file_digest(archive, "md5")
    for split in ("train", "test"):
        texts, labels, digest = _read_imdb_split(split, root, limits[split])
        splits[split] = (texts, labels)
        # One sha256 per split over (relative path, file sha256) of each review read, in
        # order: the folder may have been copied in without its archive.
        source_files[str(root / IMDB_FOLDER / split)] = digest
    limit_text = "".join(f", first {n:,} {s} reviews" for s, n in limits.items() if n)
    return PreparedText(
        train_texts=splits["train"][0],
        y_train=splits["train"][1],
        test_texts=splits["test"][0],
        y_test=splits["test"][1],
        classes=list(IMDB_CLASSES.values()),
        source=(
            f"Maas et al. (2011) Large Movie Review Dataset v1.0 from {IMDB_ARCHIVE.urls[0]}, extracted in "
            f"{root / IMDB_FOLDER}; {{train,test}}/{{neg,pos}}/*.txt (unsup ignored), neg -> 0, pos -> 1; each split "
            f"sorted by (label, review id) and shuffled with random.Random({IMDB_SHUFFLE_SEED}){limit_text}"
        ),
        source_files=source_files,
    )
