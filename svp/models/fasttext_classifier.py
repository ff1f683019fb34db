"""fastText (Joulin et al. 2017) as a proxy or target: the SVP paper's Amazon Review proxy.

fastText is not a torch module: the ``fasttext`` library trains it from a text file of
``__label__<k> <normalised text>`` lines and predicts class probabilities for a list of
strings. ``svp.stages`` calls the functions here for models whose spec says
``trainer: fasttext``; the outputs (model.pt, history.csv, metrics.json, the score
parquet) are the same files as for torch models.

Settings come from the run's ``training`` mapping: its single ``lr_schedule`` piece
gives the epochs and the starting learning rate (fastText decays it linearly to 0 over
training), and ``training.fasttext`` the rest. With ``threads: 1`` (the default) a seed
gives the same model every time; more threads train faster but not reproducibly.
"""

from __future__ import annotations

import contextlib
import ctypes
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from svp.errors import ConfigError
from svp.data.encoding import fasttext_normalize

LABEL_PREFIX = "__label__"


@dataclass(frozen=True)
class FastTextSettings:
    """One fastText run: the paper's defaults (dimension 10, word bigrams, rate 0.05, 5 epochs)."""

    epochs: int = 5
    lr: float = 0.05
    dim: int = 10
    word_ngrams: int = 2
    min_count: int = 1
    bucket: int = 10_000_000  # hash buckets for the word n-grams (the SVP authors' value)
    threads: int = 1  # 1: deterministic for a seed

    @classmethod
    def from_training(cls, training: dict) -> "FastTextSettings":
        """Settings from a config ``training`` mapping (torch-only keys there are ignored)."""
        schedule = training.get("lr_schedule", [{"epochs": cls.epochs, "lr": cls.lr}])
        if len(schedule) != 1:
            raise ConfigError(
                "fastText takes one lr_schedule piece ({epochs, lr}: the starting rate, decayed linearly "
                f"to 0 over the epochs), got {len(schedule)} pieces"
            )
        options = dict(training.get("fasttext") or {})
        known = {f.name for f in fields(cls)} - {"epochs", "lr"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown fastText setting(s) {unknown}; known: {sorted(known)}")
        return cls(epochs=int(schedule[0]["epochs"]), lr=float(schedule[0]["lr"]), **options)


@contextlib.contextmanager
def _zero_filled_allocations():
    """Make glibc's malloc return zero-filled memory while fastText allocates its matrices.

    fastText initialises only the first threads/10 of its input matrix at random
    (facebookresearch/fastText issue #1061) and upstream leaves the rest zero, but
    fasttext-numpy2 0.10.4 allocates it uninitialised: the rest is whatever the heap
    held, so results change from run to run and training often stops with "Encountered
    NaN". glibc's M_PERTURB with 0xff fills every new allocation with zeros, which gives
    upstream's behaviour; elsewhere (no glibc) large allocations are fresh, zeroed pages.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        yield
        return
    M_PERTURB = -6
    mallopt(M_PERTURB, 0xFF)
    try:
        yield
    finally:
        mallopt(M_PERTURB, 0)


def _line(label: int, text: str) -> str:
    return f"{LABEL_PREFIX}{label} {fasttext_normalize(text)}\n"


def train(texts: Sequence[str], labels: np.ndarray, settings: FastTextSettings, seed: int, workdir: Path):
    """Train on ``texts`` in the given order; return ``(model, seconds of fastText's training)``."""
    import fasttext

    with tempfile.TemporaryDirectory(prefix=".fasttext-", dir=workdir) as folder:
        path = Path(folder) / "train.txt"
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(_line(int(label), text) for label, text in zip(labels, texts))
        started = time.perf_counter()
        try:
            with _zero_filled_allocations():
                model = fasttext.train_supervised(
                    input=str(path), lr=settings.lr, epoch=settings.epochs, dim=settings.dim,
                    wordNgrams=settings.word_ngrams, minCount=settings.min_count, bucket=settings.bucket,
                    thread=settings.threads, seed=seed, loss="softmax", verbose=0,
                )
        except (RuntimeError, ValueError) as error:
            raise ConfigError(
                f"fastText training failed ({error}); it diverges on tiny data (tens of distinct words): "
                f"train on more examples or lower the learning rate"
            ) from error
        seconds = time.perf_counter() - started
    return model, seconds


def probabilities(model, texts: Sequence[str], num_classes: int) -> np.ndarray:
    """(N, num_classes) class probabilities in label order, rows summing to 1 (float64).

    fastText returns every label it saw in training (k=-1), most likely first, each as
    exp(log(p + 1e-5)); the rows are put in label order and renormalised. A class absent
    from the training data gets probability 0.
    """
    if len(texts) == 0:
        return np.zeros((0, num_classes))
    lines = [fasttext_normalize(text) for text in texts]
    labels, probs = model.predict(lines, k=-1, threshold=0.0)
    column = {f"{LABEL_PREFIX}{k}": k for k in range(num_classes)}
    result = np.zeros((len(lines), num_classes))
    if len({len(row) for row in labels}) == 1:  # the usual case: one block, no Python loop per row
        codes = np.array([[column[label] for label in row] for row in labels], dtype=np.int64)
        np.put_along_axis(result, codes, np.vstack(probs).astype(np.float64), axis=1)
    else:
        for i, (row_labels, row_probs) in enumerate(zip(labels, probs)):
            result[i, [column[label] for label in row_labels]] = row_probs
    return result / result.sum(axis=1, keepdims=True)


def to_bytes(model, workdir: Path) -> bytes:
    """fastText's own binary format, to store inside model.pt."""
    with tempfile.TemporaryDirectory(prefix=".fasttext-", dir=workdir) as folder:
        path = Path(folder) / "model.bin"
        model.save_model(str(path))
        return path.read_bytes()


def from_bytes(content: bytes, workdir: Path):
    import fasttext

    with tempfile.TemporaryDirectory(prefix=".fasttext-", dir=workdir) as folder:
        path = Path(folder) / "model.bin"
        path.write_bytes(content)
        return fasttext.load_model(str(path))


def metrics_of(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Cross-entropy loss, accuracy and error (percent) of class probabilities."""
    accuracy = 100.0 * float(np.mean(probs.argmax(axis=1) == labels))
    loss = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))
    return {"loss": loss, "accuracy": accuracy, "error": 100.0 - accuracy}
