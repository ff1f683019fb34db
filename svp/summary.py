"""Summarise target runs: error per selection and fraction, end-to-end time, speed-up.

An SVP row pays for everything selection needed: training every proxy run it combined
and scoring the data with each, plus training the target on the subset. The speed-up is
the full-data target's mean training time divided by that total.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from svp.io import atomic_path, read_json

COLUMNS = [
    "target",
    "selection",
    "proxy",
    "metric",
    "fraction",
    "runs",
    "error_mean",
    "error_std",
    "proxy_seconds",
    "scoring_seconds",
    "target_seconds",
    "total_seconds",
    "speedup",
]
FULL = "full"


def summarize(target_runs: pd.DataFrame, proxy_runs: pd.DataFrame, scoring_runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, selection, fraction).

    ``target_runs``: target, selection, proxy, metric, fraction, seed, test_error, seconds.
    ``proxy_runs``: proxy, seed, seconds. ``scoring_runs``: proxy, seed, scoring_seconds.
    Errors are in percent; ``error_std`` is the sample standard deviation (empty for one run).
    """
    proxy_cost = proxy_runs.groupby("proxy")["seconds"].sum()
    scoring_cost = scoring_runs.groupby("proxy")["scoring_seconds"].sum()
    keys = ["target", "selection", "fraction"]
    rows = (
        target_runs.assign(proxy=target_runs["proxy"].fillna(""), metric=target_runs["metric"].fillna(""))
        .groupby(keys, sort=False)
        .agg(
            proxy=("proxy", "first"),
            metric=("metric", "first"),
            runs=("seed", "size"),
            error_mean=("test_error", "mean"),
            error_std=("test_error", "std"),
            target_seconds=("seconds", "mean"),
        )
        .reset_index()
    )
    rows["proxy_seconds"] = rows["proxy"].map(proxy_cost).fillna(0.0)
    rows["scoring_seconds"] = rows["proxy"].map(scoring_cost).fillna(0.0)
    rows["total_seconds"] = rows["proxy_seconds"] + rows["scoring_seconds"] + rows["target_seconds"]
    full_seconds = rows[rows["selection"] == FULL].set_index("target")["target_seconds"]
    rows["speedup"] = rows["target"].map(full_seconds) / rows["total_seconds"]
    order = rows["selection"].map(lambda s: (s == FULL, s == "random"))
    rows = rows.assign(_order=order).sort_values(["target", "_order", "selection", "fraction"], kind="stable")
    return rows.drop(columns="_order")[COLUMNS].reset_index(drop=True)


def load_runs(metric_files: list[str | Path]) -> pd.DataFrame:
    return pd.DataFrame([read_json(path) for path in metric_files])


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
    columns = ["target", "selection", "fraction", "runs", "error"] + COLUMNS[8:]
    return shown[columns].rename(columns={"error": "error % (mean +- std)"}).to_string(index=False)


def load_scoring(score_files: list[str | Path]) -> pd.DataFrame:
    """proxy, seed and scoring_seconds of each score file, from its parquet metadata."""
    from svp.parquet import read_parquet_metadata

    rows = [read_parquet_metadata(path) for path in score_files]
    return pd.DataFrame(rows).reindex(columns=["proxy", "seed", "scoring_seconds"])
