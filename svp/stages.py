"""The stages that run a model (training, scoring): read input files, run, write outputs.

Each function here is what one Snakemake rule (through ``svp <command>``) runs. Every
output is written under a temporary name and renamed when complete, so a crash never
leaves a file that looks finished.

The rules do not know what the data or the model are: the prepared data's manifest says
its modality (images or texts) and the model registry says what a model reads and what
trains it (svp.training's torch loop, or fastText through ``svp.models.fasttext_classifier``).
"""

from __future__ import annotations

import csv
import ctypes
import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch

import svp
from svp import data
from svp.models import networks, specs
from svp.training.checkpoint import save_torch
from svp.errors import ConfigError, StageInputError
from svp.io import atomic_path, check_writable, write_json
from svp.data.encoding import VOCAB_SIZE
from svp.training.loop import ImageData, TextData, TrainingSettings, evaluate, pick_device, predict_logits, train
from svp.selection.uncertainty import METRICS, uncertainty_from_logits, uncertainty_from_probabilities

RESUME_FILE = "resume.pt"


def model_inputs(x, y, manifest: dict, device: torch.device, text_length: int | None = None) -> ImageData | TextData:
    """One prepared split as a torch model reads it, on ``device``."""
    if manifest.get("modality", "image") == "text":
        return TextData.from_texts(x, y, text_length or TrainingSettings().text_length, device)
    return ImageData.from_arrays(x, y, manifest["mean"], manifest["std"], device)


def load_model_inputs(
    data_dir: str | Path, device: torch.device, text_length: int | None = None
) -> tuple[ImageData | TextData, ImageData | TextData, dict]:
    """The prepared train and test splits as a torch model reads them, on ``device``."""
    (x_train, y_train), (x_test, y_test), manifest = data.load_prepared(data_dir)
    return (
        model_inputs(x_train, y_train, manifest, device, text_length),
        model_inputs(x_test, y_test, manifest, device, text_length),
        manifest,
    )


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


# glibc's mallopt parameters, and the size under which freed memory stays in the process.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 1 << 30


def keep_freed_memory() -> None:
    """Let the C library keep the memory torch frees for the next batch (glibc; else nothing).

    By default glibc hands every freed block over 32 MiB, and the top of its heap, back to
    the system, so each batch's tensors fault their pages in again, zero-filled by the
    kernel: on a CPU that took about 40% of a ResNet20 scoring pass at batch 1024
    (bench/scoring.py). A job's process runs one stage, so keeping its peak memory costs
    nothing later; the results do not change.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, ctypes.c_int(KEEP_FREED_BYTES))
    mallopt(M_TRIM_THRESHOLD, ctypes.c_int(KEEP_FREED_BYTES))


def check_modality(model_name: str, manifest: dict, data_dir: str | Path) -> specs.ModelSpec:
    """The model's spec, after checking that it reads the kind of data prepared in ``data_dir``."""
    if model_name not in specs.list_models():
        raise ConfigError(f"unknown model {model_name!r}; registered models (`svp models`): {', '.join(specs.list_models())}")
    spec = specs.model_spec(model_name)
    modality = manifest.get("modality", "image")
    if spec.modality != modality:
        raise ConfigError(
            f"model {model_name!r} reads {spec.modality} data, but {data_dir} holds {modality} data "
            f"(data set {manifest.get('name')!r}); choose a {modality} model (`svp models`)"
        )
    return spec


# What a model.pt must hold, whichever trainer wrote it, besides a torch model's weights or fastText's file.
CHECKPOINT_KEYS = {"model_name", "num_classes", "training", "seed"}
TORCH_WEIGHTS, FASTTEXT_MODEL = {"state_dict", "in_channels"}, {"fasttext_model"}
REMAKE_CHECKPOINT = "rerun the stage that made it (`svp train`: the train_proxy or train_target rule)"


def read_model_checkpoint(path: str | Path) -> dict:
    """A model.pt written by ``train_run``, refused (naming the file) if it is damaged or something else."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as error:  # noqa: BLE001  torch's reader fails on a damaged file with whatever it hit first
        raise StageInputError(
            f"{path}: not a readable model checkpoint, truncated or corrupt ({_first_sentence(error)}); "
            f"{REMAKE_CHECKPOINT}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise StageInputError(f"{path}: not a model checkpoint written by `svp train`; {REMAKE_CHECKPOINT}")
    weights = FASTTEXT_MODEL if "fasttext_model" in checkpoint else TORCH_WEIGHTS
    if not CHECKPOINT_KEYS | weights <= set(checkpoint):
        # resume.pt, the state of a training still under way, is the likeliest mix-up.
        what = "a training state (resume.pt), not a finished model" if "fingerprint" in checkpoint else "not a model checkpoint written by `svp train`"
        raise StageInputError(f"{path}: {what}; {REMAKE_CHECKPOINT}")
    return checkpoint


def _first_sentence(error: Exception) -> str:
    """The gist of a library's error, for a one-line message: its type and first sentence."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text.split('. ')[0][:150]}" if text else type(error).__name__


def check_checkpoint_fits(
    checkpoint: dict, path: str | Path, manifest: dict, in_channels: int | None, data_dir: str | Path
) -> specs.ModelSpec:
    """The checkpoint's model spec, after checking that the model reads this data: its
    modality, number of classes and (torch models) input channels."""
    spec = check_modality(checkpoint["model_name"], manifest, data_dir)
    if checkpoint["num_classes"] != manifest["num_classes"]:
        raise StageInputError(
            f"{path}: the model was trained for {checkpoint['num_classes']} classes, but {data_dir} holds "
            f"{manifest['num_classes']} classes; score with the data it was trained on, or retrain it on this data"
        )
    if in_channels is not None and checkpoint["in_channels"] != in_channels:
        raise StageInputError(
            f"{path}: the model reads inputs with {checkpoint['in_channels']} channels, but the data in {data_dir} "
            f"has {in_channels}; score with the data it was trained on, or retrain it on this data"
        )
    return spec


def _subset_index(subset: str | Path | None, n: int) -> np.ndarray:
    if subset is None:
        return np.arange(n, dtype=np.int64)
    from svp import stage_files  # here: a full-data run starts without pyarrow

    return stage_files.subset_index(subset, n)


def _write_csv(path: Path, rows: list[dict]) -> None:
    """Rows as CSV, one column per key in order of first appearance, empty where a row lacks
    it or holds NaN: what pandas writes, without importing it."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in rows)


def _write_run(model_out, history_out, metrics_out, checkpoint: dict, history: list[dict], metrics: dict) -> None:
    save_torch(checkpoint, model_out)
    with atomic_path(history_out) as tmp:
        _write_csv(tmp, history)
    write_json(metrics_out, metrics)


def train_run(
    *,
    model_name: str,
    training: dict,
    seed: int,
    data_dir: str | Path,
    model_out: str | Path,
    history_out: str | Path,
    metrics_out: str | Path,
    subset: str | Path | None = None,
    run_info: dict | None = None,
    threads: int | None = None,
) -> dict:
    """Train ``model_name`` on the prepared data (or its ``subset``); write model, history, metrics.

    The reported test metrics are those of the final model: the test set is never used
    to pick an epoch.
    """
    set_threads(threads)
    started = time.perf_counter()
    spec = check_modality(model_name, data.read_manifest(data_dir), data_dir)
    check_writable(model_out, history_out, metrics_out)  # before any epoch: a run's work is lost if its outputs cannot be written
    if spec.trainer == "fasttext":
        return _train_fasttext(
            model_name=model_name, training=training, seed=seed, data_dir=data_dir, model_out=model_out,
            history_out=history_out, metrics_out=metrics_out, subset=subset, run_info=run_info, started=started,
        )
    settings = TrainingSettings.from_dict(training)
    keep_freed_memory()
    device = pick_device()
    train_data, test_data, manifest = load_model_inputs(data_dir, device, settings.text_length)
    train_index = torch.from_numpy(_subset_index(subset, len(train_data))).to(device)
    torch.manual_seed(seed)  # the model's initial weights
    model = _in_layout(networks.create_model(model_name, manifest["num_classes"], train_data.in_channels), train_data)
    print(
        f"training {model_name} ({networks.count_parameters(model):,} parameters) on {len(train_index):,} "
        f"of {len(train_data):,} examples for {settings.epochs} epochs on {device}, seed {seed}",
        flush=True,
    )
    # Saved after every epoch beside the outputs, so a killed job resumes where it stopped.
    resume_path = Path(model_out).with_name(RESUME_FILE)
    fingerprint = {
        "model": model_name,
        "training": training,
        "seed": seed,
        "data": manifest["checksums"],
        "subset": hashlib.sha256(train_index.cpu().numpy().tobytes()).hexdigest(),
    }
    history = train(
        model, train_data, train_index, settings, manifest.get("augment", {}), seed, test_data,
        resume_path=resume_path, fingerprint=fingerprint,
    )
    final = history[-1] if "test_error" in history[-1] else evaluate(model, test_data, settings)
    # Wall time of the run without the optional per-epoch test evaluations, which only
    # draw the learning curve and would blur the comparison between subset sizes.
    seconds = sum(row["epoch_seconds"] for row in history)
    metrics = {
        **(run_info or {}),
        "model": model_name,
        "seed": seed,
        "n_train": len(train_index),
        "epochs": settings.epochs,
        "test_error": final["test_error"],
        "test_accuracy": final["test_accuracy"],
        "test_loss": final["test_loss"],
        "seconds": seconds,
        "stage_seconds": time.perf_counter() - started,
        "device": str(device),
        "svp_version": svp.__version__,
    }
    checkpoint = {
        "model_name": model_name,
        "num_classes": manifest["num_classes"],
        "in_channels": train_data.in_channels,
        "state_dict": {k: v.cpu().contiguous() for k, v in model.state_dict().items()},
        "training": training,
        "seed": seed,
        "metrics": metrics,
    }
    _write_run(model_out, history_out, metrics_out, checkpoint, history, metrics)
    resume_path.unlink(missing_ok=True)  # model.pt now holds the final state
    print(f"final test error {metrics['test_error']:.2f}% after {seconds:.1f} s of training", flush=True)
    return metrics


def _train_fasttext(
    *, model_name, training, seed, data_dir, model_out, history_out, metrics_out, subset, run_info, started
) -> dict:
    """train_run for fastText: the same three outputs; the model inside model.pt in fastText's format."""
    from svp.models import fasttext_classifier

    settings = fasttext_classifier.FastTextSettings.from_training(training)
    (x_train, y_train), (x_test, y_test), manifest = data.load_prepared(data_dir)
    train_index = _subset_index(subset, len(y_train))
    # fastText reads its file in order: shuffle it (by the seed), since a subset comes in rank order.
    order = np.random.default_rng(seed).permutation(train_index)
    texts, labels = x_train.strings(order), y_train[order]
    workdir = Path(model_out).parent
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"training {model_name} (dim {settings.dim}, word n-grams {settings.word_ngrams}, {settings.threads} "
        f"thread(s)) on {len(order):,} of {len(y_train):,} examples for {settings.epochs} epochs, seed {seed}",
        flush=True,
    )
    model, seconds = fasttext_classifier.train(texts, labels, settings, seed, workdir)
    num_classes = manifest["num_classes"]
    fitted = fasttext_classifier.metrics_of(fasttext_classifier.probabilities(model, texts, num_classes), labels)
    tested = fasttext_classifier.metrics_of(fasttext_classifier.probabilities(model, x_test.strings(), num_classes), y_test)
    # fastText runs all its epochs in one call: the history is one row, for the whole run.
    history = [
        {
            "epoch": settings.epochs,
            "lr": settings.lr,
            "train_loss": fitted["loss"],
            "train_accuracy": fitted["accuracy"],
            "epoch_seconds": seconds,
            "test_loss": tested["loss"],
            "test_accuracy": tested["accuracy"],
            "test_error": tested["error"],
        }
    ]
    metrics = {
        **(run_info or {}),
        "model": model_name,
        "seed": seed,
        "n_train": len(order),
        "epochs": settings.epochs,
        "test_error": tested["error"],
        "test_accuracy": tested["accuracy"],
        "test_loss": tested["loss"],
        "seconds": seconds,
        "stage_seconds": time.perf_counter() - started,
        "device": "cpu",
        "svp_version": svp.__version__,
    }
    checkpoint = {
        "model_name": model_name,
        "num_classes": num_classes,
        "fasttext_model": fasttext_classifier.to_bytes(model, workdir),
        "training": training,
        "seed": seed,
        "metrics": metrics,
    }
    _write_run(model_out, history_out, metrics_out, checkpoint, history, metrics)
    print(f"final test error {metrics['test_error']:.2f}% after {seconds:.1f} s of training", flush=True)
    return metrics


def load_model(checkpoint_path: str | Path, device: torch.device) -> torch.nn.Module:
    checkpoint = read_model_checkpoint(checkpoint_path)
    return _torch_model(checkpoint, checkpoint_path).to(device)


def _in_layout(model: torch.nn.Module, inputs: ImageData | TextData) -> torch.nn.Module:
    """``model`` on the inputs' device; image models channels-last, the layout of their batches."""
    model = model.to(inputs.device)
    return model.to(memory_format=torch.channels_last) if isinstance(inputs, ImageData) else model


def _torch_model(checkpoint: dict, path: str | Path) -> torch.nn.Module:
    model = networks.create_model(checkpoint["model_name"], checkpoint["num_classes"], checkpoint["in_channels"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as error:  # keys or shapes that are not this model's
        raise StageInputError(
            f"{path}: its weights do not fit model {checkpoint['model_name']!r} ({_first_sentence(error)}); {REMAKE_CHECKPOINT}"
        ) from None
    return model


def _in_channels(x_train, manifest: dict) -> int:
    """What a torch model of this data reads: image channels, or the text alphabet's size."""
    return VOCAB_SIZE if manifest.get("modality", "image") == "text" else int(x_train.shape[-1])


def _probabilities(checkpoint_path: str | Path, data_dir: str | Path, scores_out: str | Path, batch_size: int):
    """(labels, class probabilities or logits, whether they are logits, seconds) of every training example."""
    # The data first: its checksums are verified before anything else is read.
    (x_train, y_train), _, manifest = data.load_prepared(data_dir)
    checkpoint = read_model_checkpoint(checkpoint_path)
    in_channels = None if "fasttext_model" in checkpoint else _in_channels(x_train, manifest)
    spec = check_checkpoint_fits(checkpoint, checkpoint_path, manifest, in_channels, data_dir)
    if spec.trainer == "fasttext":
        from svp.models import fasttext_classifier

        workdir = Path(scores_out).parent
        workdir.mkdir(parents=True, exist_ok=True)
        model = fasttext_classifier.from_bytes(checkpoint["fasttext_model"], workdir)
        started = time.perf_counter()
        probs = fasttext_classifier.probabilities(model, x_train.strings(), checkpoint["num_classes"])
        return y_train, probs, False, time.perf_counter() - started
    keep_freed_memory()
    device = pick_device()
    text_length = TrainingSettings.from_dict(checkpoint.get("training", {})).text_length
    train_data = model_inputs(x_train, y_train, manifest, device, text_length)
    model = _in_layout(_torch_model(checkpoint, checkpoint_path), train_data)
    started = time.perf_counter()
    logits = predict_logits(model, train_data, batch_size)
    return train_data.labels.cpu().numpy(), logits.numpy(), True, time.perf_counter() - started


def score_run(
    *,
    checkpoint: str | Path,
    data_dir: str | Path,
    scores_out: str | Path,
    batch_size: int = 1024,
    run_info: dict | None = None,
    threads: int | None = None,
) -> "pd.DataFrame":
    """Score every training example with a trained model, on un-augmented inputs."""
    import pandas as pd

    from svp.parquet import write_parquet

    set_threads(threads)
    check_writable(scores_out)
    labels, outputs, are_logits, seconds = _probabilities(checkpoint, data_dir, scores_out, batch_size)
    not_finite = ~np.isfinite(outputs).all(axis=1)
    if not_finite.any():
        raise StageInputError(
            f"{checkpoint}: the model's outputs are not finite (NaN or infinite) for {not_finite.sum():,} of "
            f"{len(outputs):,} training examples, the first being example {np.flatnonzero(not_finite)[0]}: its "
            "training diverged (see the test error in its metrics.json). Retrain it, e.g. with a lower learning rate"
        )
    started = time.perf_counter()
    uncertainty = (uncertainty_from_logits if are_logits else uncertainty_from_probabilities)(outputs)
    seconds += time.perf_counter() - started
    prediction = uncertainty["prediction"]
    scores = pd.DataFrame(
        {
            "index": np.arange(len(labels), dtype=np.int64),
            "label": labels,
            "prediction": prediction,
            "correct": prediction == labels,
            **{metric: uncertainty[metric] for metric in METRICS},
        }
    )
    write_parquet(scores, scores_out, {**(run_info or {}), "scoring_seconds": seconds})
    print(f"scored {len(scores):,} examples in {seconds:.2f} s", flush=True)
    return scores
