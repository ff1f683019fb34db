"""The on-disk form of a prepared data set: written once by the prepare stage, checked on every read.

:func:`prepare_dataset` validates a builder's data and writes three files into a folder:

* ``train.npz`` and ``test.npz``: uncompressed NumPy archives with ``x`` (uint8,
  N x H x W x C) and ``y`` (int64, N), written byte-for-byte reproducibly (text data
  sets store the packed texts instead, see ``svp.data.encoding.TextArray``);
* ``manifest.json``: its ``modality`` (``image`` or ``text``), where the data came from
  (with checksums of the raw files), the class names and counts, the image shape,
  per-channel mean and std of the training images, the augmentation that suits the data
  set, and sha256 checksums of the two ``.npz`` files. It is written last, so its
  presence means the folder is complete.

:func:`load_prepared` reads such a folder back and checks the manifest against the
arrays (checksums, shapes, counts, label range), so an edited manifest is refused.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

import numpy as np

from svp.data.registry import (
    DATASETS,
    MAX_CLASSES,
    PreparedData,
    check_classes,
    config_key,
    file_digest,
    image_option_problem,
    known_image_shape,
    list_datasets,
)
from svp.data.validation import KEY as VALIDATION_KEY, describe as describe_validation, hold_out as hold_out_validation
from svp.errors import DataError
from svp.io import atomic_path

MANIFEST_FILE = "manifest.json"
SPLIT_FILES = {"train": "train.npz", "test": "test.npz"}
# The held-out validation split, when dataset.validation asks for one (svp.data.validation).
VALIDATION_FILE = "validation.npz"
PREPARE_HINT = "rerun the prepare step (`svp prepare`, or delete the folder and rerun the workflow)"


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
                f"classes; labels must be 0..{len(data.classes) - 1} (check {config_key('classes')} and the labels)"
            )
    check_classes(name, data.classes, data.y_train, data.y_test)
    if data.x_train.shape[1:] != data.x_test.shape[1:]:
        raise DataError(
            f"data set {name!r}: train images are {data.x_train.shape[1:]} but test images {data.x_test.shape[1:]}"
        )
    if set(data.augment) != {"crop_padding", "flip"}:
        raise DataError(f"data set {name!r}: augment must have crop_padding and flip, got {data.augment}")


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
            f"config key {config_key('name')}: unknown data set {name!r}; allowed values: {', '.join(list_datasets())}"
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
    # Where the images' shape is known beforehand, the options are checked before building.
    known_shape = known_image_shape(options)
    if known_shape is not None and (problem := image_option_problem(options, known_shape)):
        raise DataError(problem)
    share = options.get(VALIDATION_KEY)
    # The builders read their own keys; the validation split is taken out here, for every data set.
    data = DATASETS[name]({key: value for key, value in options.items() if key != VALIDATION_KEY})
    modality = getattr(data, "modality", "image")
    held = hold_out_validation(data, share, modality) if share is not None else None
    if hasattr(data, "split_arrays"):  # texts, and images read from disk (svp.data.disk): lists, not pixels
        data.validate(name)
        arrays = data.split_arrays()
        fields = data.manifest_fields(arrays)  # from the training split only: nothing of validation leaks
    else:
        _validate(data, name)
        # The padding in effect (the option, or the data set's default) against the images read.
        if problem := image_option_problem(data.augment, data.x_train.shape[1:]):
            raise DataError(problem)
        arrays, fields = _image_arrays(data)
    if held is not None:
        arrays["validation"] = _validation_arrays(held, modality)
        fields["validation"] = describe_validation(share, len(held["y"]))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Until the new manifest exists, the folder must not look complete.
    (out / MANIFEST_FILE).unlink(missing_ok=True)
    checksums = {}
    (out / VALIDATION_FILE).unlink(missing_ok=True)  # a split from an earlier share must not linger
    for split in ("train", "test", "validation"):
        if split not in arrays:
            continue
        path = out / (VALIDATION_FILE if split == "validation" else SPLIT_FILES[split])
        _atomic_write(path, lambda handle, split=split: _write_npz(handle, arrays[split]))
        checksums[path.name] = file_digest(path)

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
            **({"validation": _class_counts(held["y"], data.classes)} if held is not None else {}),
        },
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        **({"n_validation": len(held["y"])} if held is not None else {}),
        "checksums": checksums,
        **fields,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    _atomic_write(out / MANIFEST_FILE, lambda handle: handle.write(text.encode("utf-8")))
    return manifest


# --------------------------------------------------------------------------- reading


def _split_counts(classes: int) -> dict:
    return {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}, "maxProperties": classes}


def _disk_folders(value: dict) -> dict:
    return {"type": "object", "required": ["train", "test"], "properties": {"train": value, "test": value}}


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
    # Images read from disk (svp.data.disk): where they are, and each split folder's listing.
    "dependentSchemas": {
        "storage": {
            "properties": {
                "storage": {"const": "disk"},
                "root": {"type": "string", "minLength": 1},
                "split_folders": _disk_folders({"type": "string", "minLength": 1}),
                "listings": _disk_folders({"type": "string", "pattern": "^[0-9a-f]{64}$"}),
                "resize": {"type": "integer", "minimum": 1},
            },
            "required": ["root", "split_folders", "listings"],
        }
    },
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
    # Data prepared before svp bounded the padding would train on crops of mostly padding.
    if "image_shape" in manifest and (problem := image_option_problem(manifest["augment"], manifest["image_shape"])):
        raise DataError(
            f"{path}: the data was prepared with a padding its images cannot take ({problem}); fix the config, "
            f"then {PREPARE_HINT}"
        )
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
    """``(x, y)`` of a prepared split: images as uint8 (N, H, W, C), texts as ``svp.data.encoding.TextArray``."""
    if not path.is_file():
        raise DataError(f"{path}: missing; {PREPARE_HINT}")
    if sha256 is not None and file_digest(path) != sha256:
        raise DataError(
            f"{path}: its sha256 differs from the one in {MANIFEST_FILE} (corrupt or replaced); {PREPARE_HINT}"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            if modality == "text":
                from svp.data.text import load_text_split

                return load_text_split({key: archive[key] for key in archive.files}, path, PREPARE_HINT)
            x, y = archive["x"], archive["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError, TypeError) as error:
        raise DataError(f"{path}: unreadable ({error}); {PREPARE_HINT}") from None
    if x.dtype != np.uint8 or x.ndim != 4 or y.dtype != np.int64 or y.shape != (len(x),):
        raise DataError(f"{path}: unexpected arrays x {x.dtype}{x.shape}, y {y.dtype}{y.shape}; {PREPARE_HINT}")
    return x, y


def _disk_list(path: Path, manifest: dict) -> dict:
    """The arrays of a disk data set's split list, checked against its sha256 in the manifest."""
    if path.name not in manifest["checksums"]:
        raise DataError(f"{path.parent / MANIFEST_FILE}: checksum of {path.name} missing; the file was edited or damaged; {PREPARE_HINT}")
    if not path.is_file():
        raise DataError(f"{path}: missing; {PREPARE_HINT}")
    if file_digest(path) != manifest["checksums"][path.name]:
        raise DataError(f"{path}: its sha256 differs from the one in {MANIFEST_FILE} (corrupt or replaced); {PREPARE_HINT}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(f"{path}: unreadable ({error}); {PREPARE_HINT}") from None


def _read_disk_split(out: Path, manifest: dict, split: str):
    """(svp.data.disk.DiskSplit, labels) of a split of a data set read from disk: its list, checked
    against its sha256, and its folder's listing against the manifest's."""
    from svp.data.disk import paths_of, read_split

    path = out / (VALIDATION_FILE if split == "validation" else SPLIT_FILES[split])
    # Training and validation lists share the training folder: what changed in it is told against both.
    other = {"train": "validation", "validation": "train"}.get(split) if "validation" in manifest else None
    also_listed = None
    if other is not None:
        other_path = out / (VALIDATION_FILE if other == "validation" else SPLIT_FILES[other])
        also_listed = lambda: paths_of(_disk_list(other_path, manifest), other_path, PREPARE_HINT)  # noqa: E731
    return read_split(_disk_list(path, manifest), manifest, split, path, PREPARE_HINT, also_listed)


def load_prepared(
    out_dir: str | os.PathLike,
) -> tuple[tuple[Any, np.ndarray], tuple[Any, np.ndarray], dict]:
    """Read a prepared folder: ``((x_train, y_train), (x_test, y_test), manifest)``, checksums verified.

    ``x`` is a uint8 (N, H, W, C) array for images and an ``svp.data.encoding.TextArray`` for texts
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
        if manifest.get("storage") == "disk":  # the file list; the images stay where they are
            x, y = _read_disk_split(out, manifest, split)
            _check_split_against_manifest(manifest, out / MANIFEST_FILE, split, x, y)
            splits.append((x, y))
            continue
        x, y = _read_split(out / name, manifest["checksums"][name], modality)
        _check_split_against_manifest(manifest, out / MANIFEST_FILE, split, x, y)
        splits.append((x, y))
    return splits[0], splits[1], manifest


def _validation_arrays(held: dict, modality: str) -> dict[str, np.ndarray]:
    if "paths" in held:  # images read from disk: the list of the held-out files (svp.data.disk)
        from svp.data.disk import list_arrays

        return list_arrays(held["paths"], held["y"], held["sizes"])
    if modality == "text":
        from svp.data.encoding import TextArray

        packed = TextArray.from_strings(held["texts"])
        return {"text": packed.data, "offsets": packed.offsets, "y": held["y"]}
    return {"x": held["x"], "y": held["y"]}


def load_validation(out_dir: str | os.PathLike) -> tuple[Any, np.ndarray] | None:
    """``(x, y)`` of the prepared validation split (``dataset.validation``), checksum verified; None without one."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    if "validation" not in manifest:
        return None
    if VALIDATION_FILE not in manifest["checksums"]:
        raise DataError(f"{out / MANIFEST_FILE}: checksum of {VALIDATION_FILE} missing; the file was edited or damaged; {PREPARE_HINT}")
    if manifest.get("storage") == "disk":  # a share of the training folder's images, listed
        x, y = _read_disk_split(out, manifest, "validation")
    else:
        x, y = _read_split(out / VALIDATION_FILE, manifest["checksums"][VALIDATION_FILE], manifest.get("modality", "image"))
    if "counts" in manifest and "validation" in manifest["counts"]:
        found = np.bincount(y, minlength=manifest["num_classes"]).tolist()
        if found != list(manifest["counts"]["validation"].values()):
            raise DataError(f"{out / MANIFEST_FILE} does not match {VALIDATION_FILE}: its class counts differ; {PREPARE_HINT}")
    return x, y


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
