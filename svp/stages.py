"""One function per workflow stage: read the stage's input files, run the logic, write outputs.

Each function here is what one Snakemake rule (through ``svp <command>``) runs. Every
output is written under a temporary name and renamed when complete, so a crash never
leaves a file that looks finished.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import svp
from svp import data, models
from svp.io import atomic_path, write_json
from svp.ranking import combine_ranks, ranks_from_scores
from svp.selection import random_ranks, selection_order, subset_size
from svp.training import ImageData, TrainingSettings, evaluate, pick_device, predict_logits, train
from svp.uncertainty import METRICS, uncertainty_from_logits

METADATA_KEY = b"svp"


def write_parquet(frame: pd.DataFrame, path: str | Path, metadata: dict | None = None) -> None:
    """Write ``frame`` as parquet, with ``metadata`` (JSON) in the file's schema."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()}
        )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet_metadata(path: str | Path) -> dict:
    return json.loads(pq.read_schema(path).metadata[METADATA_KEY])


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
    history = train(model, train_data, train_index, settings, manifest["augment"], seed, test_data)
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
    uncertainty = uncertainty_from_logits(logits)
    seconds = time.perf_counter() - started
    labels = train_data.labels.cpu().numpy()
    prediction = uncertainty["prediction"].numpy()
    scores = pd.DataFrame(
        {
            "index": np.arange(len(labels), dtype=np.int64),
            "label": labels,
            "prediction": prediction,
            "correct": prediction == labels,
            **{metric: uncertainty[metric].numpy() for metric in METRICS},
        }
    )
    write_parquet(scores, scores_out, {**(run_info or {}), "scoring_seconds": seconds})
    print(f"scored {len(scores):,} examples in {seconds:.2f} s", flush=True)
    return scores


def rank_runs(*, score_files: list[str | Path], metric: str, ranks_out: str | Path, run_info: dict | None = None) -> pd.DataFrame:
    """Rank examples by ``metric`` in each proxy run, and combine the runs' ranks."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    runs = [pd.read_parquet(path, columns=["index", "label", metric]) for path in score_files]
    for path, run in zip(score_files, runs):
        if not np.array_equal(run["index"].to_numpy(), np.arange(len(run))):
            raise ValueError(f"{path}: expected one row per example, in index order")
        if not np.array_equal(run["label"].to_numpy(), runs[0]["label"].to_numpy()):
            raise ValueError(f"{path}: labels differ from {score_files[0]}; were the runs scored on the same data?")
    run_ranks = np.stack([ranks_from_scores(run[metric].to_numpy()) for run in runs])
    ranked = pd.DataFrame({"index": runs[0]["index"], "label": runs[0]["label"], "rank": combine_ranks(run_ranks)})
    ranked["score_mean"] = np.mean([run[metric].to_numpy() for run in runs], axis=0)
    for path, ranks in zip(score_files, run_ranks):
        seed = read_parquet_metadata(path).get("seed", Path(path).stem)
        ranked[f"rank_seed{seed}"] = ranks
    write_parquet(ranked, ranks_out, {**(run_info or {}), "metric": metric, "runs": [str(p) for p in score_files]})
    return ranked


def select_subset(
    *,
    fraction: float,
    subset_out: str | Path,
    class_balanced: bool,
    ranks_file: str | Path | None = None,
    data_dir: str | Path | None = None,
    random_seed: int | None = None,
    run_info: dict | None = None,
) -> pd.DataFrame:
    """Write the examples of one subset, in selection order (most valuable first).

    With ``ranks_file`` the order follows the combined proxy ranks; with ``random_seed``
    it is a random order (labels read from ``data_dir``). Fraction 1.0 keeps everything.
    """
    if (ranks_file is None) == (random_seed is None):
        raise ValueError("give exactly one of ranks_file (proxy selection) and random_seed (random selection)")
    if ranks_file is not None:
        ranked = pd.read_parquet(ranks_file, columns=["index", "label", "rank"])
        labels, ranks = ranked["label"].to_numpy(), ranked["rank"].to_numpy()
    else:
        labels = data.load_labels(data_dir, "train")
        ranks = random_ranks(len(labels), random_seed)
    order = selection_order(ranks, labels, class_balanced)[: subset_size(fraction, len(labels))]
    subset = pd.DataFrame({"index": order.astype(np.int64), "label": labels[order]})
    write_parquet(
        subset,
        subset_out,
        {**(run_info or {}), "fraction": fraction, "class_balanced": class_balanced, "n_total": len(labels)},
    )
    return subset
