"""fastText (Joulin et al. 2017) as a proxy or target: the SVP paper's Amazon Review proxy.

fastText is not a torch module: the ``fasttext`` library trains it from a text file of
``__label__<k> <normalised text>`` lines and predicts class probabilities for a list of
strings. This module is the fastText trainer (``svp.trainers.FASTTEXT``): the
stages call its ``settings``, ``fit`` and ``predict``, and write the same files
(model.pt, history.csv, metrics.json, the score parquet) as for torch models.

Settings come from the run's ``training`` mapping: its single ``lr_schedule`` piece
gives the epochs and the starting learning rate (fastText decays it linearly to 0 over
training), and ``training.fasttext`` the rest, by default the config schema's. With ``threads: 1`` (the default) a seed
gives the same model every time; more threads train faster but not reproducibly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import ctypes
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from svp.schema import training_schema_defaults
from svp.data.encoding import fasttext_normalize
from svp.errors import ConfigError
from svp.trainers.base import FASTTEXT, FittedModel, Predictions, ScoringJob, TrainingJob

LABEL_PREFIX = "__label__"


# Its own settings' defaults are the config schema's (`training.fasttext`); its default
# schedule is the trainer's (svp.trainers.FASTTEXT).
OPTION_DEFAULTS = training_schema_defaults()[FASTTEXT.options_key]


@dataclass(frozen=True)
class FastTextSettings:
    """One fastText run: its epochs and starting rate, and fastText's own settings."""

    epochs: int
    lr: float
    dim: int = OPTION_DEFAULTS["dim"]
    word_ngrams: int = OPTION_DEFAULTS["word_ngrams"]
    min_count: int = OPTION_DEFAULTS["min_count"]
    bucket: int = OPTION_DEFAULTS["bucket"]  # hash buckets for the word n-grams
    threads: int = OPTION_DEFAULTS["threads"]  # 1: deterministic for a seed
    # epochs: passes over the subset; steps: as many updates (one per example) as the full
    # data's epochs, i.e. epochs x N / n passes, rounded (fastText runs whole epochs).
    length: str = "epochs"

    @classmethod
    def from_training(cls, training: dict) -> "FastTextSettings":
        """Settings from a config ``training`` mapping (torch-only keys there are ignored)."""
        schedule = training.get("lr_schedule", FASTTEXT.own_defaults["lr_schedule"])
        if len(schedule) != 1:
            raise ConfigError(
                "fastText takes one lr_schedule piece ({epochs, lr}: the starting rate, decayed linearly "
                f"to 0 over the epochs), got {len(schedule)} pieces"
            )
        options = dict(training.get("fasttext") or {})
        known = {f.name for f in fields(cls)} - {"epochs", "lr", "length"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"unknown fastText setting(s) {unknown}; known: {sorted(known)}")
        length = training.get("length", "epochs")
        if length not in ("epochs", "steps"):
            raise ConfigError(f"training setting 'length': {length!r} is not one of epochs, steps")
        return cls(epochs=int(schedule[0]["epochs"]), lr=float(schedule[0]["lr"]), length=length, **options)

    def run_epochs(self, n_full: int, n_train: int) -> int:
        """The epochs fastText runs on ``n_train`` of ``n_full`` examples: ``epochs``, or with
        ``length`` steps as many updates as on all of them (rounded, at least ``epochs``)."""
        if self.length != "steps" or n_train >= n_full:
            return self.epochs
        return max(self.epochs, math.floor(self.epochs * n_full / n_train + 0.5))


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


# The fastText trainer (svp.trainers.FASTTEXT): what the train and score stages call.


def settings(training: dict) -> FastTextSettings:
    return FastTextSettings.from_training(training)


def fit(job: TrainingJob) -> FittedModel:
    """Train on the job's training examples; the model as fastText's file, inside model.pt."""
    settings, (x_train, y_train), (x_test, y_test) = job.settings, job.train, job.test
    # fastText reads its file in order: shuffle it (by the seed), since a subset comes in rank order.
    order = np.random.default_rng(job.seed).permutation(job.train_index)
    texts, labels = x_train.strings(order), y_train[order]
    job.workdir.mkdir(parents=True, exist_ok=True)
    epochs = settings.run_epochs(len(y_train), len(order))
    stretched = "" if epochs == settings.epochs else f" (as many updates as {settings.epochs} on all the data)"
    settings = dataclasses.replace(settings, epochs=epochs)
    print(
        f"training {job.model_name} (dim {settings.dim}, word n-grams {settings.word_ngrams}, {settings.threads} "
        f"thread(s)) on {len(order):,} of {len(y_train):,} examples for {settings.epochs} epochs{stretched}, seed {job.seed}",
        flush=True,
    )
    model, seconds = train(texts, labels, settings, job.seed, job.workdir)
    num_classes = job.manifest["num_classes"]
    fitted = metrics_of(probabilities(model, texts, num_classes), labels)
    tested = metrics_of(probabilities(model, x_test.strings(), num_classes), y_test)
    test = {"test_loss": tested["loss"], "test_accuracy": tested["accuracy"], "test_error": tested["error"]}
    # fastText runs all its epochs in one call: the history is one row, for the whole run.
    history = [
        {
            "epoch": settings.epochs,
            "lr": settings.lr,
            "steps": settings.epochs * len(order),  # fastText updates once per example
            "train_loss": fitted["loss"],
            "train_accuracy": fitted["accuracy"],
            "epoch_seconds": seconds,
            **test,
        }
    ]
    return FittedModel({"fasttext_model": to_bytes(model, job.workdir)}, history, test, seconds, "cpu")


def predict(job: ScoringJob) -> Predictions:
    """Class probabilities of every training example."""
    job.workdir.mkdir(parents=True, exist_ok=True)
    model = from_bytes(job.checkpoint["fasttext_model"], job.workdir)
    x_train, y_train = job.train
    started = time.perf_counter()
    probs = probabilities(model, x_train.strings(), job.checkpoint["num_classes"])
    return Predictions(y_train, probs, False, time.perf_counter() - started)


def predict_chunks(job: ScoringJob):
    """Class probabilities of every training example, in one chunk: fastText's data is text
    held in memory, and its probabilities are a few per example."""
    yield predict(job)


def embeddings(job: ScoringJob):
    """fastText's sentence vector of every training example, and the seconds it took.

    For a supervised model, fastText's sentence vector is the mean of the input vectors
    of the line's words and word n-grams: the hidden layer its output matrix reads, its
    penultimate layer (float32, ``dim`` values each).
    """
    job.workdir.mkdir(parents=True, exist_ok=True)
    model = from_bytes(job.checkpoint["fasttext_model"], job.workdir)
    x_train, _ = job.train
    started = time.perf_counter()
    vectors = [model.get_sentence_vector(fasttext_normalize(text)) for text in x_train.strings()]
    result = np.vstack(vectors).astype(np.float32) if vectors else np.zeros((0, model.get_dimension()), dtype=np.float32)
    return result, time.perf_counter() - started
