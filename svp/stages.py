"""The stages that run a model (training, scoring): read input files, run, write outputs.

Each function here is what one Snakemake rule (through ``svp <command>``) runs. Every
output is written under a temporary name and renamed when complete, so a crash never
leaves a file that looks finished.

The rules do not know what the data or the model are: the prepared data's manifest says
its modality (images or texts) and the model registry names the trainer
(``svp.trainers``: svp.training's torch loop, or fastText) that trains the model and
scores with it. What every trainer shares is here: the checks, reading the data, the
scoring job (:func:`scoring_job`, which every stage that scores with a model builds its
job with) and the files written.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import torch

import svp
from svp import data
from svp.models import specs
from svp.errors import ConfigError, StageInputError
from svp.schema import training_schema_defaults
from svp.io import atomic_path, check_writable, write_json
from svp.selection.methods import METHODS, MethodInputs, selection_method
from svp.selection.uncertainty import METRICS, uncertainty_from_logits, uncertainty_from_probabilities
from svp.trainers import (
    EMBEDDINGS, GRADIENTS, PROBABILITIES, REMAKE_CHECKPOINT, TRAINERS, TRAINING_DYNAMICS, ScoringJob, TrainingJob,
    first_sentence, implementation,
)  # fmt: skip
from svp.training.checkpoint import save_torch
from svp.training.distributed import ONE_PROCESS, Ranks
from svp.training.forgetting import MODEL_KEY as FORGETTING_KEY

RESUME_FILE = "resume.pt"


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


def check_modality(model_name: str, manifest: dict, data_dir: str | Path) -> specs.ModelSpec:
    """The model's spec, after checking that it reads the kind of data prepared in ``data_dir``."""
    if not specs.is_model(model_name):
        raise ConfigError(
            f"unknown model {model_name!r}; registered models (`svp models`): {', '.join(specs.list_models())}, "
            f"or {specs.TORCHVISION_PREFIX}<name> for a torchvision.models classifier"
        )
    spec = specs.model_spec(model_name)
    modality = manifest.get("modality", "image")
    if spec.modality != modality:
        raise ConfigError(
            f"model {model_name!r} reads {spec.modality} data, but {data_dir} holds {modality} data "
            f"(data set {manifest.get('name')!r}); choose a {modality} model (`svp models`)"
        )
    return spec


def check_seed(seed: int, model_name: str, trainer) -> None:
    """Refuse a seed the model's trainer cannot take (the config's schema caps every seed
    at fastText's limit; the command line takes torch's larger ones)."""
    if not 0 <= seed <= trainer.max_seed:
        raise ConfigError(
            f"seed {seed} is above {trainer.max_seed}, the largest seed {trainer.title} takes (model {model_name!r}); "
            f"choose a seed from 0 to {trainer.max_seed}"
        )


def check_input_size(model_name: str, manifest: dict, data_dir: str | Path) -> None:
    """Refuse images smaller than the model takes (``svp.models.specs.input_problem``), before any epoch."""
    if problem := specs.input_problem(model_name, manifest.get("image_shape")):
        raise ConfigError(f"{data_dir}: {problem}")


def check_processes(model_name: str, trainer, processes: int) -> None:
    """Refuse several processes (GPUs) for a model whose trainer trains in one."""
    if processes > 1 and not trainer.several_gpus:
        raise ConfigError(
            f"model {model_name!r} is trained by {trainer.title}, in one process; one model on several GPUs "
            "(a run's gpus, --processes) takes a torch model"
        )


def check_launch(model_name: str, training: dict, processes: int) -> None:
    """What `svp train --processes N` refuses before starting any rank (each rank checks again,
    and the rest): a model whose trainer trains in one process, a batch that does not split evenly."""
    if model_name in specs.list_models():
        check_processes(model_name, specs.model_spec(model_name).trainer, processes)
    batch_size = training.get("batch_size", training_schema_defaults()["batch_size"])
    if isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1:
        Ranks(world_size=processes).local_batch_size(batch_size)


# What a model.pt must hold whichever trainer wrote it, besides the model (its trainer's checkpoint_keys).
CHECKPOINT_KEYS = {"model_name", "num_classes", "training", "seed"}


def read_model_checkpoint(path: str | Path) -> dict:
    """A model.pt written by ``train_run``, refused (naming the file) if it is damaged or something else."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as error:  # noqa: BLE001  torch's reader fails on a damaged file with whatever it hit first
        raise StageInputError(
            f"{path}: not a readable model checkpoint, truncated or corrupt ({first_sentence(error)}); "
            f"{REMAKE_CHECKPOINT}"
        ) from None
    if not isinstance(checkpoint, dict):
        raise StageInputError(f"{path}: not a model checkpoint written by `svp train`; {REMAKE_CHECKPOINT}")
    # The model's trainer's keys; for a model unknown here (named in the message that follows), any trainer's.
    known = specs.is_model(checkpoint.get("model_name"))
    trainers = [specs.model_spec(checkpoint["model_name"]).trainer] if known else TRAINERS
    if not CHECKPOINT_KEYS <= set(checkpoint) or not any(t.checkpoint_keys <= set(checkpoint) for t in trainers):
        # resume.pt, the state of a training still under way, is the likeliest mix-up.
        what = "a training state (resume.pt), not a finished model" if "fingerprint" in checkpoint else "not a model checkpoint written by `svp train`"
        raise StageInputError(f"{path}: {what}; {REMAKE_CHECKPOINT}")
    return checkpoint


def check_checkpoint_fits(checkpoint: dict, path: str | Path, manifest: dict, data_dir: str | Path) -> specs.ModelSpec:
    """The checkpoint's model spec, after checking that the model reads this data: its
    modality, number of classes and image size (its trainer checks what else its model reads)."""
    spec = check_modality(checkpoint["model_name"], manifest, data_dir)
    if checkpoint["num_classes"] != manifest["num_classes"]:
        raise StageInputError(
            f"{path}: the model was trained for {checkpoint['num_classes']} classes, but {data_dir} holds "
            f"{manifest['num_classes']} classes; score with the data it was trained on, or retrain it on this data"
        )
    # The image size the model was trained on (model.pt files written before svp kept it lack it).
    trained, given = checkpoint.get("image_shape"), manifest.get("image_shape")
    if trained is not None and given is not None and list(trained[:2]) != list(given[:2]):
        raise StageInputError(
            f"{path}: the model was trained on {trained[0]}x{trained[1]} images, but {data_dir} holds "
            f"{given[0]}x{given[1]} images; score with the data it was trained on, or retrain it on this data"
        )
    check_input_size(checkpoint["model_name"], manifest, data_dir)
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
    ranks: Ranks = ONE_PROCESS,
) -> dict | None:
    """Train ``model_name`` on the prepared data (or its ``subset``); write model, history, metrics.

    The reported test metrics are those of the final model: the test set is never used
    to pick an epoch. On several GPUs (``ranks``, svp.training.distributed) every rank
    runs this and rank 0 alone writes the files and returns the metrics; the others None.
    """
    set_threads(threads)
    started = time.perf_counter()
    manifest = data.read_manifest(data_dir)
    declared = check_modality(model_name, manifest, data_dir).trainer
    check_seed(seed, model_name, declared)
    check_processes(model_name, declared, ranks.world_size)
    check_input_size(model_name, manifest, data_dir)
    trainer = implementation(declared)
    check_writable(model_out, history_out, metrics_out)  # before any epoch: a run's work is lost if its outputs cannot be written
    settings = trainer.settings(training)  # before any data is read
    train_split, test_split, manifest = data.load_prepared(data_dir)
    job = TrainingJob(
        model_name=model_name, training=training, settings=settings, seed=seed, train=train_split, test=test_split,
        manifest=manifest, train_index=_subset_index(subset, len(train_split[1])), workdir=Path(model_out).parent,
        # Saved after every epoch beside the outputs, so a killed job resumes where it stopped.
        resume_path=Path(model_out).with_name(RESUME_FILE), ranks=ranks,
    )
    fitted = trainer.fit(job)
    if fitted is None:  # a rank other than 0: rank 0 writes the run's files
        return None
    validation_split = data.load_validation(data_dir)
    metrics = {
        **(run_info or {}),
        "model": model_name,
        "seed": seed,
        "n_train": len(job.train_index),
        "epochs": settings.epochs,
        # Which training length the run used, and the optimizer steps it took (fastText: updates).
        "training_length": training.get("length", "epochs"),
        **({"steps": int(fitted.history[-1]["steps"])} if "steps" in fitted.history[-1] else {}),
        "test_error": fitted.test["test_error"],
        "test_accuracy": fitted.test["test_accuracy"],
        "test_loss": fitted.test["test_loss"],
        "seconds": fitted.seconds,
        "stage_seconds": time.perf_counter() - started,
        "device": fitted.device,
        # Runs on one GPU (or none) keep the keys they always had.
        **({"processes": ranks.world_size} if ranks.several else {}),
        "svp_version": svp.__version__,
    }
    checkpoint = {
        "model_name": model_name,
        "num_classes": manifest["num_classes"],
        # So that scoring refuses images of another size (height, width, channels).
        **({"image_shape": list(manifest["image_shape"])} if "image_shape" in manifest else {}),
        **fitted.model,
        "training": training,
        "seed": seed,
        "metrics": metrics,
    }
    if validation_split is not None:
        # The final model on the held-out split, as scoring predicts (un-augmented inputs):
        # the error to compare selections by, never the test error.
        metrics["validation_error"] = _validation_error(trainer, checkpoint, validation_split, manifest, data_dir, model_out)
    _write_run(model_out, history_out, metrics_out, checkpoint, fitted.history, metrics)
    job.resume_path.unlink(missing_ok=True)  # model.pt now holds the final state
    print(f"final test error {metrics['test_error']:.2f}% after {fitted.seconds:.1f} s of training", flush=True)
    return metrics


def _validation_error(trainer, checkpoint: dict, split, manifest: dict, data_dir, model_out) -> float:
    """Percent of the validation split's examples the trained model gets wrong."""
    predictions = trainer.predict(
        ScoringJob(
            checkpoint=checkpoint, checkpoint_path=Path(model_out), train=split, manifest=manifest,
            data_dir=Path(data_dir), batch_size=1024, workdir=Path(model_out).parent,
        )
    )
    predicted = np.asarray(predictions.outputs).argmax(axis=1)
    return float(100.0 * np.mean(predicted != np.asarray(predictions.labels)))


def score_run(
    *,
    checkpoint: str | Path,
    data_dir: str | Path,
    scores_out: str | Path,
    batch_size: int = 1024,
    run_info: dict | None = None,
    threads: int | None = None,
) -> int:
    """Score every training example with a trained model, on un-augmented inputs; the
    number of examples scored.

    The scores are written as the model gives them, a parquet row group per chunk of
    examples (``predict_chunks``), so the stage's memory does not grow with the data set.
    """
    from svp.parquet import parquet_row_groups

    set_threads(threads)
    check_writable(scores_out)
    job, trainer = scoring_job(checkpoint=checkpoint, data_dir=data_dir, batch_size=batch_size, workdir=Path(scores_out).parent)
    seconds = 0.0
    with parquet_row_groups(scores_out) as scores:
        for predictions in trainer.predict_chunks(job):
            started = time.perf_counter()
            scores.write(_score_rows(predictions, first=scores.rows, checkpoint=checkpoint))
            seconds += predictions.seconds + time.perf_counter() - started
        scores.metadata = {**(run_info or {}), "scoring_seconds": seconds}
    print(f"scored {scores.rows:,} examples in {seconds:.2f} s", flush=True)
    return scores.rows


def _score_rows(predictions, *, first: int, checkpoint) -> "pd.DataFrame":
    """The score file's rows for a chunk of predictions whose first example is ``first``."""
    import pandas as pd

    labels, outputs = predictions.labels, predictions.outputs
    not_finite = ~np.isfinite(outputs).all(axis=1)
    if not_finite.any():
        raise StageInputError(
            f"{checkpoint}: the model's outputs are not finite (NaN or infinite) for training example "
            f"{first + np.flatnonzero(not_finite)[0]} ({not_finite.sum():,} of examples {first} to {first + len(outputs) - 1}): "
            "its training diverged (see the test error in its metrics.json). Retrain it, e.g. with a lower learning rate"
        )
    uncertainty = (uncertainty_from_logits if predictions.are_logits else uncertainty_from_probabilities)(outputs, labels)
    prediction = uncertainty["prediction"]
    return pd.DataFrame(
        {
            "index": np.arange(first, first + len(labels), dtype=np.int64),
            "label": labels,
            "prediction": prediction,
            "correct": prediction == labels,
            **{metric: uncertainty[metric] for metric in METRICS},
        }
    )


def score_method_run(
    *,
    method: str,
    checkpoint: str | Path,
    data_dir: str | Path,
    scores_out: str | Path,
    batch_size: int = 1024,
    kcenter_fraction: float = 1.0,
    run_info: dict | None = None,
    threads: int | None = None,
) -> "pd.DataFrame":
    """Score every training example by a selection method beyond uncertainty (``svp.selection.methods``).

    Writes index, label and the method's column (higher = selected first), the file
    ``svp rank`` reads as it reads uncertainty scores. ``kcenter_fraction``: the share of
    the training set the k-center greedy order covers (the rest scores 0, tied).
    """
    import pandas as pd

    from svp.parquet import write_parquet

    if method not in METHODS:
        raise ConfigError(f"unknown selection method {method!r}; known: {', '.join(METHODS)}")
    if not 0.0 < kcenter_fraction <= 1.0:
        raise ConfigError(f"kcenter_fraction must be in (0, 1], got {kcenter_fraction}")
    chosen = selection_method(method)
    set_threads(threads)
    check_writable(scores_out)
    job, trainer = scoring_job(
        checkpoint=checkpoint, data_dir=data_dir, batch_size=batch_size, workdir=Path(scores_out).parent,
        needs=chosen.needs, user=f"the selection method {method!r}",
        remedy=f"{method!r} needs a model trained by {' or '.join(chosen.trainers)}",
    )  # fmt: skip
    labels = np.asarray(job.train[1])
    values, seconds = _model_gives(chosen.needs, job, trainer)
    started = time.perf_counter()
    inputs = MethodInputs(
        values, len(labels), int(job.checkpoint["seed"]), str(checkpoint),
        {"kcenter_fraction": kcenter_fraction, "scratch": job.workdir},
    )  # fmt: skip
    columns = chosen.score(inputs)
    seconds += time.perf_counter() - started
    scores = pd.DataFrame({"index": np.arange(len(labels), dtype=np.int64), "label": labels.astype(np.int64), **columns})
    write_parquet(scores, scores_out, {**(run_info or {}), "method": method, "scoring_seconds": seconds})
    print(f"scored {len(scores):,} examples by {method} in {seconds:.2f} s", flush=True)
    return scores


def scoring_job(
    *, checkpoint: str | Path, data_dir: str | Path, batch_size: int, workdir: str | Path,
    needs: str = PROBABILITIES, user: str = "scoring", remedy: str = "",
) -> tuple[ScoringJob, object]:
    """The job of a stage that scores with a trained model, and its trainer's implementation.

    The data first (its checksums are verified before anything else is read), then
    model.pt, checked against the data; then whether the model's trainer provides what
    ``user`` needs (``needs``: probabilities, embeddings, ...), refused with ``remedy``.
    """
    train_split, _, manifest = data.load_prepared(data_dir)
    stored = read_model_checkpoint(checkpoint)
    trainer = check_checkpoint_fits(stored, checkpoint, manifest, data_dir).trainer
    if needs not in trainer.provides:
        raise ConfigError(
            f"{checkpoint}: model {stored['model_name']!r} ({trainer.title}) gives no {needs}, which {user} needs"
            + (f"; {remedy}" if remedy else "")
        )
    job = ScoringJob(
        checkpoint=stored, checkpoint_path=Path(checkpoint), train=train_split, manifest=manifest,
        data_dir=Path(data_dir), batch_size=batch_size, workdir=Path(workdir),
    )  # fmt: skip
    return job, implementation(trainer)


def _model_gives(needs: str, job: ScoringJob, trainer) -> tuple:
    """(what the model gives for ``needs``, checked finite where it is an array; seconds)."""
    if needs == TRAINING_DYNAMICS:
        started = time.perf_counter()
        counts = _forgetting_counts(job.checkpoint, job.checkpoint_path, len(job.train[1]))
        return counts, time.perf_counter() - started
    if needs == GRADIENTS:
        values, seconds = trainer.gradient_norms(job)
        check_finite(values, job.checkpoint_path, "gradient norms")
    elif needs == EMBEDDINGS:
        values, seconds = trainer.embeddings(job)
        check_finite(values, job.checkpoint_path, "penultimate-layer embeddings")
    else:  # the registry names a need no trainer function gives: a bug here
        raise RuntimeError(f"no trainer function gives {needs!r}")
    return values, seconds


# How to remake a model.pt that lacks the forgetting counts (written before svp counted them).
REMAKE_FOR_FORGETTING = (
    "delete it and rerun the training that wrote it (`svp train`; in the workflow: "
    "`snakemake --forcerun train_proxy ...`, or train_target for a full-data target, or delete the file), "
    "which now counts them"
)


def _forgetting_counts(stored: dict, path: str | Path, n_examples: int) -> dict:
    """model.pt's forgetting counts, refused if missing, of other data, or of a diverged model."""
    counts = stored.get(FORGETTING_KEY)
    if not isinstance(counts, dict) or not {"events", "ever_correct", "presentations", "epochs"} <= set(counts):
        raise StageInputError(f"{path}: holds no forgetting counts (it was trained by an older svp); {REMAKE_FOR_FORGETTING}")
    events = np.asarray(counts["events"], dtype=np.int64)
    if len(events) != n_examples:
        raise StageInputError(
            f"{path}: forgetting counts for {len(events):,} examples, but the training set has {n_examples:,}; "
            f"was it trained on other data? {REMAKE_FOR_FORGETTING}"
        )
    # A diverged model predicts class 0 for NaN logits (argmax of NaN), so its counts
    # would call every class-0 example learned: refuse it, as GraNd and k-center do.
    for name, tensor in stored.get("state_dict", {}).items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise StageInputError(
                f"{path}: the model's weights ({name}) are not finite (NaN or infinite): its training diverged "
                "(see the test error in its metrics.json), so its forgetting counts mean nothing. Retrain it, "
                "e.g. with a lower learning rate"
            )
    return counts


def check_finite(values: np.ndarray, path: str | Path, what: str) -> None:
    bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1) if len(values) else np.zeros(0, bool)
    if bad.any():
        raise StageInputError(
            f"{path}: the model's {what} are not finite (NaN or infinite) for {bad.sum():,} of {len(values):,} "
            f"training examples, the first being example {np.flatnonzero(bad)[0]}: its training diverged "
            "(see the test error in its metrics.json). Retrain it, e.g. with a lower learning rate"
        )
