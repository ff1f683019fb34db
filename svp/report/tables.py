"""The results table in the paper's form: error per selection and fraction, times, speed-ups.

Rows are selections (each proxy selection, then the random and budget-matched baselines,
then the full data set), columns are fractions, and an error cell reads "6.52 +- 0.21"
(mean +- sample standard deviation over the target seeds, in percent), as in the
paper's table. Written as CSV (for programs), Markdown (for READMEs and notebooks) and
HTML (shown inline by ``snakemake --report``). Built from ``summary.csv``, the stored
config, which says what each proxy was (model, seeds, epochs), and the proxies'
metrics.json, whose mean test error stands beside each proxy selection: a weak proxy
shows at a glance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from svp import stage_files
from svp.schema import format_fraction
from svp.selection.diagnostics import proxy_test_errors
from svp.errors import StageInputError
from svp.io import atomic_path
from svp.plan import BUDGET, RANDOM
from svp.report.render import html_page, html_sections, markdown_sections
from svp.report.summary import end_to_end_runs, final_train_accuracy, load_runs, load_scoring

BUDGET_DESCRIPTION = "none: full data, fewer epochs"
RANDOM_DESCRIPTION = "none: random subset"
FULL_DESCRIPTION = "none: full data"


def format_error(mean: float, std: float) -> str:
    """'6.52 +- 0.21'; just '6.52' for a single run, whose spread is unknown."""
    if np.isnan(mean):
        return ""
    return f"{mean:.2f}" if np.isnan(std) else f"{mean:.2f} +- {std:.2f}"


def proxy_description(selection: str, proxy: str, config: dict) -> str:
    """What chose the subset, as in the paper: '3 x small_cnn (rank combination)'."""
    if selection == RANDOM:
        return RANDOM_DESCRIPTION
    if selection == BUDGET:
        return BUDGET_DESCRIPTION
    if not proxy:
        return FULL_DESCRIPTION
    spec = config["proxies"][proxy]
    seeds = len(spec["seeds"])
    combined = " (rank combination)" if seeds > 1 else ""
    return f"{seeds} x {spec['model']}{combined}"


def proxy_epochs(proxy: str, config: dict) -> int | None:
    if not proxy:
        return None
    return sum(piece["epochs"] for piece in config["proxies"][proxy]["training"]["lr_schedule"])


def fraction_labels(summary: pd.DataFrame) -> list[str]:
    return [format_fraction(f) for f in sorted(summary["fraction"].unique())]


def paper_table(summary: pd.DataFrame, config: dict, proxy_errors: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per (target, selection); per fraction f the columns ``error <f>`` ("mean +- std"),
    ``seconds <f>`` (end-to-end, proxies and scoring included) and ``speedup <f>``.

    ``proxy_error`` is the proxy's own mean test error over its runs (percent; from
    ``proxy_errors``, {proxy: error}), empty for the baselines and for unknown proxies.

    A selection with no run at a fraction has empty cells there (the full data set has
    only 1.0, the subsets only the fractions below it).
    """
    fractions = fraction_labels(summary)
    rows = []
    for (target, selection), group in summary.groupby(["target", "selection"], sort=False):
        proxy = "" if pd.isna(group["proxy"].iloc[0]) else str(group["proxy"].iloc[0])
        metric = "" if pd.isna(group["metric"].iloc[0]) else str(group["metric"].iloc[0])
        row = {
            "target": target,
            "selection": selection,
            "proxy": proxy_description(selection, proxy, config),
            "metric": metric,
            "proxy_epochs": proxy_epochs(proxy, config),
            "proxy_error": (proxy_errors or {}).get(proxy, np.nan) if proxy else np.nan,
        }
        by_fraction = {format_fraction(r.fraction): r for r in group.itertuples()}
        for fraction in fractions:
            run = by_fraction.get(fraction)
            row[f"error {fraction}"] = "" if run is None else format_error(run.error_mean, run.error_std)
        for fraction in fractions:
            run = by_fraction.get(fraction)
            validation = (np.nan, np.nan) if run is None else (getattr(run, "validation_error_mean", np.nan), getattr(run, "validation_error_std", np.nan))
            row[f"validation {fraction}"] = format_error(*validation)
        for fraction in fractions:
            run = by_fraction.get(fraction)
            row[f"seconds {fraction}"] = np.nan if run is None else run.total_seconds
        for fraction in fractions:
            run = by_fraction.get(fraction)
            row[f"speedup {fraction}"] = np.nan if run is None else run.speedup
        rows.append(row)
    table = pd.DataFrame(rows)
    table["proxy_epochs"] = table["proxy_epochs"].astype("Int64")
    return table


def _time_cell(seconds: float, speedup: float) -> str:
    return "" if np.isnan(seconds) else f"{seconds:.1f} s ({speedup:.2f}x)"


def _proxy_error_cell(row: pd.Series) -> str:
    """The proxy's mean test error; 'NaN' where a proxy run has none (diverged or unknown)."""
    if not row["metric"]:  # a baseline: no proxy
        return ""
    return "NaN" if pd.isna(row["proxy_error"]) else f"{row['proxy_error']:.2f}"


def _sections(table: pd.DataFrame, summary: pd.DataFrame) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(target, caption, header, rows) of the error and time tables of each target."""
    fractions = fraction_labels(summary)
    runs = summary.groupby("target")["runs"].agg(["min", "max"])
    sections = []
    for target, rows in table.groupby("target", sort=False):
        low, high = runs.loc[target]
        seeds = f"{low}" if low == high else f"{low} to {high}"
        error_header = ["selection", "proxy", "metric", "proxy epochs", "proxy error %", *fractions]
        error_rows = [
            [r["selection"], r["proxy"], r["metric"], "" if pd.isna(r["proxy_epochs"]) else str(r["proxy_epochs"]),
             _proxy_error_cell(r)]
            + [r[f"error {f}"] for f in fractions]
            for _, r in rows.iterrows()
        ]
        time_rows = [
            [r["selection"]] + [_time_cell(r[f"seconds {f}"], r[f"speedup {f}"]) for f in fractions]
            for _, r in rows.iterrows()
        ]
        lengths = summary.loc[summary["target"] == target, "training_length"] if "training_length" in summary else pd.Series(dtype=object)
        length = f" (subsets trained for the full data's steps)" if (lengths == "steps").any() else ""
        sections.append(
            (
                target,
                f"Top-1 test error (%) of target {target}{length}, mean +- std over {seeds} seeds, "
                "by the fraction of the training data it was trained on:",
                error_header,
                error_rows,
            )
        )
        if any(r[f"validation {f}"] for _, r in rows.iterrows() for f in fractions):
            sections.append(
                (
                    target,
                    f"Validation error (%) of target {target} on the held-out split (dataset.validation), mean +- std: "
                    "compare selections by this table, not by the test error:",
                    ["selection", *fractions],
                    [[r["selection"]] + [r[f"validation {f}"] for f in fractions] for _, r in rows.iterrows()],
                )
            )
        sections.append(
            (
                target,
                "End-to-end time (proxy training and scoring with every proxy seed, plus target "
                "training; seconds) and speed-up over training the target on the full data:",
                ["selection", *fractions],
                time_rows,
            )
        )
    return sections


def format_markdown(table: pd.DataFrame, summary: pd.DataFrame) -> str:
    return markdown_sections(_sections(table, summary), "Target ")


def format_html(table: pd.DataFrame, summary: pd.DataFrame) -> str:
    """A self-contained HTML page with the same tables as the Markdown."""
    return html_page("SVP results", html_sections(_sections(table, summary), "Target "))


def _stored_config(config_file: str | Path, summary_file: str | Path, summary: pd.DataFrame) -> dict:
    """The stored config.yaml, with every proxy the summary names (its model, seeds and schedule)."""
    try:
        config = yaml.safe_load(Path(config_file).read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise StageInputError(f"{config_file}: not a readable YAML config ({error}); rerun the store_config rule") from None
    proxies = config.get("proxies") if isinstance(config, dict) else None
    for proxy in dict.fromkeys(p for p in summary["proxy"] if p):
        spec = (proxies or {}).get(proxy)
        if not isinstance(spec, dict) or not {"model", "seeds", "training"} <= set(spec):
            raise StageInputError(
                f"{config_file}: no proxy {proxy!r} with its model, seeds and training, which {summary_file} names; "
                "were they made with different configs? Rerun the workflow with one config"
            )
    return config


def write_results_tables(
    *,
    summary_file: str | Path,
    config_file: str | Path,
    csv_out: str | Path,
    markdown_out: str | Path,
    html_out: str | Path,
    proxy_metrics: list[str | Path] = (),
) -> pd.DataFrame:
    """Write the paper-form results table as CSV, Markdown and HTML.

    ``proxy_metrics``: the proxy runs' metrics.json, for the proxies' own test error.
    """
    summary = stage_files.read_table(summary_file, "summary")
    summary[["proxy", "metric"]] = summary[["proxy", "metric"]].fillna("")
    config = _stored_config(config_file, summary_file, summary)
    proxy_errors, notes = proxy_test_errors(proxy_metrics)
    for note in notes:
        print(f"note: {note}")
    table = paper_table(summary, config, proxy_errors)
    with atomic_path(csv_out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(markdown_out) as tmp:
        tmp.write_text(format_markdown(table, summary))
    with atomic_path(html_out) as tmp:
        tmp.write_text(format_html(table, summary))
    print(format_markdown(table, summary))
    return table


def write_run_table(
    *, target_metrics: list[str | Path], proxy_metrics: list[str | Path], score_files: list[str | Path], out: str | Path
) -> pd.DataFrame:
    """Every target run with its test error, end-to-end cost and final training accuracy
    (``summary.RUN_COLUMNS``; the history.csv beside each metrics.json)."""
    targets = load_runs(target_metrics, "target")
    targets["train_accuracy"] = [final_train_accuracy(path) for path in target_metrics]
    runs = end_to_end_runs(targets, load_runs(proxy_metrics, "proxy"), load_scoring(score_files))
    with atomic_path(out) as tmp:
        runs.to_csv(tmp, index=False, float_format="%.6g")
    return runs
