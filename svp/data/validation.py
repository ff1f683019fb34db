"""The validation split (config ``dataset.validation: p``): a seeded, class-stratified share
of the training set held out when the data is prepared.

Held out before any proxy trains, it is never scored, selected or trained on: the
prepared ``train.npz`` no longer holds it, ``validation.npz`` does. Every run reports its
error on it beside the test error, so keep policies, methods and fractions can be
compared without reading the test set. The share and the seed are part of the prepared
data (the manifest's ``validation``), so changing the share prepares the data again and
reruns what depends on it.
"""

from __future__ import annotations

import math

import numpy as np

from svp.errors import DataError

KEY = "validation"
# The split's seed: fixed, as digits' test split is, so a share names one split.
SEED = 0


def held_out_counts(class_sizes, share: float) -> np.ndarray:
    """Validation examples per class: round(share x n_c), halves up, at least one of every
    class that has examples (stratified: a class missing from validation would hide its errors)."""
    sizes = np.asarray(class_sizes, dtype=np.int64)
    counts = np.floor(share * sizes + 0.5).astype(np.int64)
    return np.where(sizes > 0, np.maximum(counts, 1), 0)


def share_problem(class_sizes, share: float, names=None) -> str | None:
    """Why ``share`` cannot be held out of a training set with ``class_sizes``, or None."""
    if not (isinstance(share, (int, float)) and not isinstance(share, bool) and 0.0 < share < 1.0):
        return f"{share!r} is not a share of the training set from 0 to 1 (both excluded)"
    sizes = np.asarray(class_sizes, dtype=np.int64)
    left = sizes - held_out_counts(sizes, share)
    empty = np.flatnonzero((sizes > 0) & (left < 1))
    if empty.size:
        c = int(empty[0])
        name = names[c] if names is not None and c < len(names) else str(c)
        return (
            f"{share:g} leaves class {name!r} ({sizes[c]:,} training example{'s' if sizes[c] != 1 else ''}) with none "
            f"to train on once at least one of each class is held out for validation; choose a smaller share"
        )
    return None


def split(labels: np.ndarray, share: float, names=None) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, validation indices) of ``labels``, each in ascending order.

    Per class, a seeded permutation of its examples gives ``held_out_counts`` to
    validation; the rest stay in training. A DataError naming the key if a class would
    be left with no training example.
    """
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels, minlength=len(names) if names is not None else 0)
    if problem := share_problem(sizes, share, names):
        raise DataError(f"config key dataset.{KEY}: {problem}")
    counts = held_out_counts(sizes, share)
    rng = np.random.default_rng(SEED)
    held = np.zeros(len(labels), dtype=bool)
    for c in np.flatnonzero(sizes):
        members = np.flatnonzero(labels == c)
        held[members[rng.permutation(len(members))[: counts[c]]]] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def approximate_training_size(examples: int, classes: int, share: float | None) -> int:
    """The training examples left after holding out ``share`` of near-balanced classes, for config checks."""
    if share is None:
        return examples
    sizes = [examples // classes + (i < examples % classes) for i in range(classes)]
    return examples - int(held_out_counts(sizes, share).sum())


def hold_out(data, share: float, modality: str) -> dict[str, np.ndarray] | dict[str, list]:
    """Take the validation split out of ``data``'s training split (changed in place); return
    it as {"x": ..., "y": ...} (images), {"texts": ..., "y": ...} (texts) or, for images
    read from disk (``svp.data.disk``), their list {"paths": ..., "y": ..., "sizes": ...}."""
    train, held = split(data.y_train, share, list(data.classes))
    if hasattr(data, "hold_out"):  # images read from disk: a share of the file list, no pixels
        return data.hold_out(train, held)
    y = data.y_train
    if modality == "text":
        texts = data.train_texts
        validation = {"texts": [texts[i] for i in held], "y": y[held]}
        data.train_texts = [texts[i] for i in train]
    else:
        validation = {"x": data.x_train[held], "y": y[held]}
        data.x_train = data.x_train[train]
    data.y_train = y[train]
    return validation


def describe(share: float, n_validation: int) -> dict:
    """The manifest's record of the split."""
    return {"share": share, "seed": SEED, "n": int(n_validation), "stratified": True, "min_per_class": 1}


def is_share(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 < value < 1
