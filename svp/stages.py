"""The stages that run a model (training, scoring): read input files, run, write outputs.

Each function here is what one Snakemake rule (through ``svp <command>``) runs. Every
output is written under a temporary name and renamed when complete, so a crash never
leaves a file that looks finished.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import svp
from svp import data, models
from svp.io import atomic_path, write_json
from svp.parquet import write_parquet
from svp.training import ImageData, TrainingSettings, evaluate, pick_device, predict_logits, train
from svp.uncertainty import METRICS, uncertainty_from_logits

RESUME_FILE = "resume.pt"


def load_image_data(data_dir: str | Path, device: torch.device) -> tuple[ImageData, ImageData, dict]:
    (x_train, y_train), (x_test, y_test), manifest = data.load_prepared(data_dir)
    mean, std = manifest["mean"], manifest["std"]
    return (
        ImageData.from_arrays(x_train, y_train, mean, std, device),
        ImageData.from_arrays(x_test, y_test, mean, std, device),
        manifest,
    )


def set_threads(threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)


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
    settings = TrainingSettings.from_dict(training)
    device = pick_device()
    started = time.perf_counter()
    train_data, test_data, manifest = load_image_data(data_dir, device)
    if subset is None:
        train_index = torch.arange(len(train_data), device=device)
    else:
        train_index = torch.from_numpy(pd.read_parquet(subset, columns=["index"])["index"].to_numpy()).to(device)
    torch.manual_seed(seed)  # the model's initial weights
    model = models.create_model(model_name, manifest["num_classes"], train_data.in_channels).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    print(
        f"training {model_name} ({models.count_parameters(model):,} parameters) on {len(train_index):,} "
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
        model, train_data, train_index, settings, manifest["augment"], seed, test_data,
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
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "training": training,
        "seed": seed,
        "metrics": metrics,
    }
    with atomic_path(model_out) as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(history_out) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    write_json(metrics_out, metrics)
    resume_path.unlink(missing_ok=True)  # model.pt now holds the final state
    print(f"final test error {metrics['test_error']:.2f}% after {seconds:.1f} s of training", flush=True)
    return metrics


def load_model(checkpoint_path: str | Path, device: torch.device) -> torch.nn.Module:
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    model = models.create_model(checkpoint["model_name"], checkpoint["num_classes"], checkpoint["in_channels"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device)


def score_run(
    *,
    checkpoint: str | Path,
    data_dir: str | Path,
    scores_out: str | Path,
    batch_size: int = 1024,
    run_info: dict | None = None,
    threads: int | None = None,
) -> pd.DataFrame:
    """Score every training example with a trained model, on un-augmented inputs."""
    set_threads(threads)
    device = pick_device()
    train_data, _, _ = load_image_data(data_dir, device)
    model = load_model(checkpoint, device)
    started = time.perf_counter()
    logits = predict_logits(model, train_data, batch_size)
    uncertainty = uncertainty_from_logits(logits.numpy())
    seconds = time.perf_counter() - started
    labels = train_data.labels.cpu().numpy()
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
