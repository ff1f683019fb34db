"""Summarise target runs: error per selection and fraction, end-to-end time, speed-up.

An SVP row pays for everything selection needed: training every proxy run it combined
and scoring the data with each, plus training the target on the subset. The speed-up is
the full-data target's mean training time divided by that total: measured wall time, so
a target trained for the full data's steps (``training_length`` steps) pays for them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from svp import stage_files
from svp.errors import StageInputError
from svp.io import atomic_path
from svp.plan import BUDGET, FULL, RANDOM
from svp.selection.methods import METHODS

COLUMNS = [
    "target",
    "selection",
    "proxy",
    "metric",
    "fraction",
    "training_length",
    "runs",
    "error_mean",
    "error_std",
    "validation_error_mean",
    "validation_error_std",
    "proxy_seconds",
    "scoring_seconds",
    "target_seconds",
    "total_seconds",
    "speedup",
]


RUN_COLUMNS = [
    "target",
    "selection",
    "proxy",
    "metric",
    "fraction",
    "seed",
    "n_train",
    "epochs",
    "training_length",
    "steps",
    "test_error",
    "validation_error",
    "train_accuracy",
    "proxy_seconds",
    "scoring_seconds",
    "target_seconds",
    "total_seconds",
]


def end_to_end_runs(target_runs: pd.DataFrame, proxy_runs: pd.DataFrame, scoring_runs: pd.DataFrame) -> pd.DataFrame:
    """One row per target run with what it cost end to end (columns ``RUN_COLUMNS``).

    Inputs as for ``summarize``. A proxy selection's run pays for training and scoring
    with every seed of its proxy (the rank combination needs them all) plus its own
    target training; random, full and budget runs pay for their target training only.
    """
    proxy_cost = proxy_runs.groupby("proxy")["seconds"].sum()
    # A selection method's own scoring (a file with a ``method``) is paid only by its selections.
    method = scoring_runs["method"].astype(object).fillna("") if "method" in scoring_runs else pd.Series("", index=scoring_runs.index)
    scoring_cost = scoring_runs[method == ""].groupby("proxy")["scoring_seconds"].sum()
    method_cost = scoring_runs[method != ""].groupby([scoring_runs["proxy"], method])["scoring_seconds"].sum()
    # Without a validation split (dataset.validation) the validation_error column stays empty,
    # and train_accuracy (the final epoch's, from history.csv) where the runs' histories were not read.
    runs = target_runs.reindex(columns=RUN_COLUMNS[: RUN_COLUMNS.index("train_accuracy") + 1])
    runs = runs.assign(
        proxy=runs["proxy"].astype(object).fillna(""), metric=runs["metric"].astype(object).fillna(""),
        target_seconds=target_runs["seconds"],
        # Runs from before training lengths existed trained for epochs.
        training_length=runs["training_length"].astype(object).fillna("epochs"),
    )
    runs["proxy_seconds"] = runs["proxy"].map(proxy_cost).fillna(0.0)
    runs["scoring_seconds"] = [
        float(method_cost.get((proxy, metric), 0.0)) if metric in METHODS else float(scoring_cost.get(proxy, 0.0))
        for proxy, metric in zip(runs["proxy"], runs["metric"])
    ]
    runs["total_seconds"] = runs["proxy_seconds"] + runs["scoring_seconds"] + runs["target_seconds"]
    return _in_report_order(runs[RUN_COLUMNS], ["target", "selection", "fraction", "seed"])


def summarize(target_runs: pd.DataFrame, proxy_runs: pd.DataFrame, scoring_runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, selection, fraction).

    ``target_runs``: target, selection, proxy, metric, fraction, seed, test_error, seconds.
    ``proxy_runs``: proxy, seed, seconds. ``scoring_runs``: proxy, seed, scoring_seconds.
    Errors are in percent; ``error_std`` is the sample standard deviation (empty for one run).
    """
    runs = end_to_end_runs(target_runs, proxy_runs, scoring_runs)
    keys = ["target", "selection", "fraction"]
    rows = (
        runs.groupby(keys, sort=False)
        .agg(
            proxy=("proxy", "first"),
            metric=("metric", "first"),
            training_length=("training_length", "first"),
            runs=("seed", "size"),
            error_mean=("test_error", "mean"),
            error_std=("test_error", "std"),
            validation_error_mean=("validation_error", "mean"),
            validation_error_std=("validation_error", "std"),
            proxy_seconds=("proxy_seconds", "first"),
            scoring_seconds=("scoring_seconds", "first"),
            target_seconds=("target_seconds", "mean"),
        )
        .reset_index()
    )
    rows["total_seconds"] = rows["proxy_seconds"] + rows["scoring_seconds"] + rows["target_seconds"]
    full_seconds = rows[rows["selection"] == FULL].set_index("target")["target_seconds"]
    rows["speedup"] = rows["target"].map(full_seconds) / rows["total_seconds"]
    return _in_report_order(rows[COLUMNS], keys)


# Proxy selections first, then the baselines without a proxy, the full data set last.
BASELINE_ORDER = {RANDOM: 1, BUDGET: 2, FULL: 3}


def _in_report_order(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    baseline = frame["selection"].map(BASELINE_ORDER).fillna(0)
    ordered = frame.assign(_baseline=baseline).sort_values([keys[0], "_baseline", *keys[1:]], kind="stable")
    return ordered.drop(columns="_baseline").reset_index(drop=True)


def load_runs(metric_files: list[str | Path], role: str) -> pd.DataFrame:
    """The metrics.json of ``role`` ('target' or 'proxy') runs, one row each; any other file is refused.

    Proxy runs keep the columns the cost needs (proxy, seed, seconds), so that an
    empty list still gives a table with those columns.
    """
    runs = pd.DataFrame([stage_files.read_run_metrics(path, role) for path in metric_files])
    return runs.reindex(columns=["proxy", "seed", "seconds"]) if role == "proxy" else runs


def final_train_accuracy(metrics_file: str | Path) -> float:
    """The last epoch's training accuracy (percent) in the history.csv beside a run's
    metrics.json: how well the run fitted what it trained on. NaN where the run wrote no
    history or no accuracy."""
    history_file = Path(metrics_file).with_name("history.csv")
    if not history_file.is_file():
        return float("nan")
    try:
        history = pd.read_csv(history_file)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise StageInputError(f"{history_file}: not a readable history ({error}); rerun the training that wrote it") from None
    if "train_accuracy" not in history or history.empty:
        return float("nan")
    return float(history["train_accuracy"].iloc[-1])


def write_summary(summary: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.6g")


def format_table(summary: pd.DataFrame) -> str:
    """The summary as an aligned text table for the terminal."""
    shown = summary.drop(columns=["proxy", "metric"]).copy()
    shown["error"] = [
        f"{mean:.2f}" + ("" if np.isnan(std) else f" +- {std:.2f}")
        for mean, std in zip(summary["error_mean"], summary["error_std"])
    ]
    for column in ["proxy_seconds", "scoring_seconds", "target_seconds", "total_seconds"]:
        shown[column] = shown[column].map("{:.1f}".format)
    shown["speedup"] = shown["speedup"].map("{:.2f}x".format)
    columns = ["target", "selection", "fraction", "training_length", "runs", "error"]
    if summary["validation_error_mean"].notna().any():
        shown["validation"] = [
            "" if np.isnan(mean) else f"{mean:.2f}" + ("" if np.isnan(std) else f" +- {std:.2f}")
            for mean, std in zip(summary["validation_error_mean"], summary["validation_error_std"])
        ]
        columns.append("validation")
    columns += COLUMNS[COLUMNS.index("proxy_seconds"):]
    renamed = {"error": "error % (mean +- std)", "validation": "validation error %", "training_length": "length"}
    return shown[columns].rename(columns=renamed).to_string(index=False)


def load_scoring(score_files: list[str | Path]) -> pd.DataFrame:
    """proxy, seed, scoring_seconds and method (a selection method's file; else empty) of each
    score file, from its parquet metadata."""
    from svp.parquet import read_parquet_metadata

    rows = []
    for path in score_files:
        stage_files.read_schema(path, "scores")  # a readable parquet file, or a message saying what it is
        rows.append(read_parquet_metadata(path))
    return pd.DataFrame(rows).reindex(columns=["proxy", "seed", "scoring_seconds", "method"])
