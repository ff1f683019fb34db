"""The report's figures: error and time against fraction, learning curves, error against time,
the subsets' class composition.

Each selection keeps one colour in every figure (the baselines: random grey, budget-matched
purple, full data black). Figures are drawn with matplotlib's object interface
(``Figure``, no pyplot), so no display or global backend state is involved, and saved
in the format their file name ends with (png, svg, pdf).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from svp import stage_files
from svp.schema import format_fraction
from svp.errors import StageInputError
from svp.io import atomic_path
from svp.plan import BUDGET, FULL, RANDOM

BASELINE_COLOURS = {RANDOM: "tab:grey", BUDGET: "tab:purple", FULL: "black"}
STAGE_COLUMNS = {"proxy_seconds": "proxy training", "scoring_seconds": "scoring", "target_seconds": "target training"}
STAGE_COLOURS = {"proxy_seconds": "tab:orange", "scoring_seconds": "tab:green", "target_seconds": "tab:blue"}
FRACTION_MARKERS = "osD^vP*X"


def selection_colours(selections) -> dict[str, str]:
    """A colour per selection: proxy selections from a qualitative palette, baselines fixed."""
    palette = [c for i, c in enumerate(colormaps["tab10"].colors) if i not in (4, 7)]  # purple, grey: baselines
    proxy_selections = [s for s in dict.fromkeys(selections) if s not in BASELINE_COLOURS]
    colours = {s: palette[i % len(palette)] for i, s in enumerate(proxy_selections)}
    return {**colours, **BASELINE_COLOURS}


def save_figure(figure: Figure, out: str | Path) -> None:
    """Write a figure in the format its file name says, atomically."""
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format=Path(out).suffix.lstrip("."), dpi=120)


def _target_axes(targets: list[str], width: float = 6.0, height: float = 4.2):
    figure = Figure(figsize=(width * len(targets), height), layout="constrained")
    axes = figure.subplots(1, len(targets), squeeze=False)[0]
    return figure, dict(zip(targets, axes))


def plot_error_vs_fraction(summary: pd.DataFrame, out: str | Path) -> None:
    """Test error of each selection against the fraction kept; std over seeds as error bars.

    The full-data result is a horizontal line with its std as a band, so every
    fraction's distance from it reads directly.
    """
    colours = selection_colours(summary["selection"])
    figure, axes = _target_axes(list(dict.fromkeys(summary["target"])))
    for target, ax in axes.items():
        rows = summary[summary["target"] == target]
        subset_selections = [s for s in dict.fromkeys(rows["selection"]) if s != FULL]
        for selection, group in rows.groupby("selection", sort=False):
            group = group.sort_values("fraction")
            std = group["error_std"].fillna(0.0)
            if selection == FULL:
                mean, spread = group["error_mean"].iloc[0], std.iloc[0]
                ax.axhline(mean, color=colours[FULL], linestyle="--", linewidth=1)
                ax.axhspan(mean - spread, mean + spread, color=colours[FULL], alpha=0.08)
            # Nudge each selection sideways so that error bars at one fraction do not hide each other.
            dodge = 0.0
            if selection != FULL:
                dodge = 0.006 * (subset_selections.index(selection) - (len(subset_selections) - 1) / 2)
            ax.errorbar(
                group["fraction"] + dodge, group["error_mean"], yerr=std, label=selection, color=colours[selection],
                marker="o", capsize=3, linewidth=1.5 if selection != FULL else 0,
            )
        fractions = sorted(rows["fraction"].unique())
        ax.set_xticks(fractions, [format_fraction(f) for f in fractions])
        ax.set_xlabel("fraction of the training data kept")
        ax.set_ylabel("top-1 test error (%)")
        ax.set_title(f"target {target}: error (mean +- std over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(figure, out)


def plot_time_vs_fraction(summary: pd.DataFrame, out: str | Path) -> None:
    """End-to-end time of each selection and fraction, stacked by stage.

    Bars are grouped by fraction; each bar stacks proxy training and scoring (every
    proxy seed, as the rank combination needs them all) and the mean target training
    time. The dashed line is the full-data target's time, the cost to beat.
    """
    figure, axes = _target_axes(list(dict.fromkeys(summary["target"])), width=max(6.0, 0.55 * len(summary) + 2))
    for target, ax in axes.items():
        rows = summary[summary["target"] == target].sort_values("fraction", kind="stable").reset_index(drop=True)
        positions = np.arange(len(rows)) + rows["fraction"].rank(method="dense").to_numpy() - 1  # gap between groups
        bottom = np.zeros(len(rows))
        for column, stage in STAGE_COLUMNS.items():
            ax.bar(positions, rows[column], bottom=bottom, color=STAGE_COLOURS[column], label=stage, width=0.8)
            bottom += rows[column].to_numpy()
        for position, row in zip(positions, rows.itertuples()):
            ax.text(position, row.total_seconds, f"{row.speedup:.2f}x", ha="center", va="bottom", fontsize=7)
        full = rows.loc[rows["selection"] == FULL, "target_seconds"]
        if len(full):
            ax.axhline(full.iloc[0], color="black", linestyle="--", linewidth=1, label="full data")
        labels = [f"{row.selection} {format_fraction(row.fraction)}" for row in rows.itertuples()]
        ax.set_xticks(positions, labels, rotation=35, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_ylabel("end-to-end time (s)")
        ax.set_title(f"target {target}: time by stage (speed-up over full data on top)")
        ax.margins(y=0.12)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save_figure(figure, out)


HISTORY_COLUMNS = ("epoch", "train_loss")  # what every run's history.csv holds; test_error only where evaluated


def load_histories(metrics_files: list[str | Path]) -> pd.DataFrame:
    """Every run's history.csv (beside its metrics.json), with the run's facts as columns.

    ``test_error`` is there (NaN) even where no run evaluated the test set per epoch
    (``eval_every: 0``), and ``final_test_error`` holds each run's final error from its
    metrics.json, which every run has.
    """
    frames = []
    for path in metrics_files:
        info = stage_files.read_run_metrics(path, "proxy", "target")
        history_file = Path(path).with_name("history.csv")
        try:
            history = pd.read_csv(history_file)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise StageInputError(f"{history_file}: not a readable history ({error}); rerun the training that wrote it") from None
        missing = [column for column in HISTORY_COLUMNS if column not in history]
        if missing or history.empty:
            raise StageInputError(
                f"{history_file}: {'no rows' if not missing else 'no column ' + ', '.join(missing)}; rerun the training that wrote it"
            )
        facts = {key: info.get(key) for key in ("role", "proxy", "target", "selection", "fraction", "seed")}
        facts["final_test_error"] = info["test_error"]
        frames.append(history.assign(**{k: ("" if v is None else v) for k, v in facts.items()}))
    histories = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*HISTORY_COLUMNS, "role"])
    return histories.reindex(columns=[*histories.columns, *(["test_error"] if "test_error" not in histories else [])])


FINAL_ONLY_NOTE = "no per-epoch test error (eval_every: 0); * marks the final error, from metrics.json"


def _draw_test_error(ax, epochs: pd.Series, errors: pd.Series, final_epoch: int, final_error: float, **style) -> bool:
    """Test error on the epochs where it was evaluated; where none was, the final error as a star.

    Returns whether the run had no evaluated epoch.
    """
    evaluated = errors.notna()
    if evaluated.any():
        ax.plot(epochs[evaluated], errors[evaluated], marker=".", **style)
        return False
    ax.plot([final_epoch], [final_error], marker="*", markersize=10, **{**style, "linestyle": "none"})
    return True


def plot_learning_curves(histories: pd.DataFrame, out: str | Path) -> list[str]:
    """Training loss and test error per epoch: one row of panels per proxy and per target.

    Proxy runs are drawn one line per seed. Target runs are averaged over seeds, one line
    per selection (colour) and fraction (line style: solid for the largest), since their
    seeds share the schedule. Test error is drawn on the epochs where it was evaluated; a
    run that evaluated none (``eval_every: 0``) shows its final error, and its panel says
    so. Returns notes on what was missing, for the log.
    """
    proxies = histories[histories["role"] == "proxy"]
    targets = histories[histories["role"] == "target"]
    models = [("proxy", p) for p in dict.fromkeys(proxies["proxy"])] + [("target", t) for t in dict.fromkeys(targets["target"])]
    figure = Figure(figsize=(12, 3.6 * max(1, len(models))), layout="constrained")
    grid = figure.subplots(max(1, len(models)), 2, squeeze=False)
    colours = selection_colours(targets["selection"]) if len(targets) else {}
    styles = ["-", "--", ":", "-."]
    notes = []
    for (role, name), (loss_ax, error_ax) in zip(models, grid):
        final_only = []
        if role == "proxy":
            runs = proxies[proxies["proxy"] == name]
            for seed, run in runs.groupby("seed"):
                loss_ax.plot(run["epoch"], run["train_loss"], label=f"seed {seed}")
                if _draw_test_error(error_ax, run["epoch"], run["test_error"], run["epoch"].max(), run["final_test_error"].iloc[0],
                                    label=f"seed {seed}"):
                    final_only.append(f"seed {seed}")
        else:
            runs = targets[targets["target"] == name]
            fractions = sorted(runs["fraction"].unique(), reverse=True)
            for (selection, fraction), group in runs.groupby(["selection", "fraction"], sort=False):
                mean = group.groupby("epoch")[["train_loss", "test_error"]].mean()
                label = f"{selection} {format_fraction(fraction)}"
                style = dict(color=colours[selection], linestyle=styles[fractions.index(fraction) % len(styles)])
                loss_ax.plot(mean.index, mean["train_loss"], label=label, **style)
                if _draw_test_error(error_ax, mean.index.to_series(), mean["test_error"], mean.index.max(),
                                    group.groupby("seed")["final_test_error"].first().mean(), label=label, **style):
                    final_only.append(label)
        if final_only:
            error_ax.text(0.5, 0.97, FINAL_ONLY_NOTE, transform=error_ax.transAxes, ha="center", va="top", fontsize=7,
                          bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
            notes.append(f"{role} {name}: no per-epoch test error recorded for {', '.join(final_only)}; drawn: the final error only")
        loss_ax.set_yscale("log")
        loss_ax.set_ylabel("training loss")
        error_ax.set_ylabel("test error (%)")
        for ax, what in ((loss_ax, "training loss"), (error_ax, "test error")):
            ax.set_title(f"{role} {name}: {what}" + (" (mean over seeds)" if role == "target" else ""))
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        error_ax.legend(fontsize=7, ncol=2)
    save_figure(figure, out)
    return notes


def plot_error_vs_time(runs: pd.DataFrame, out: str | Path) -> None:
    """Test error against end-to-end time, one small point per target run.

    Each selection's mean over seeds is a large marker (its shape gives the fraction),
    joined across fractions: the lowest curve to the left reaches an error fastest.
    """
    colours = selection_colours(runs["selection"])
    figure, axes = _target_axes(list(dict.fromkeys(runs["target"])), width=6.5, height=4.8)
    fractions = sorted(runs["fraction"].unique())
    markers = {f: FRACTION_MARKERS[i % len(FRACTION_MARKERS)] for i, f in enumerate(fractions)}
    for target, ax in axes.items():
        rows = runs[runs["target"] == target]
        for selection, group in rows.groupby("selection", sort=False):
            colour = colours[selection]
            ax.scatter(group["total_seconds"], group["test_error"], color=colour, s=12, alpha=0.5)
            means = group.groupby("fraction")[["total_seconds", "test_error"]].mean().sort_index()
            ax.plot(means["total_seconds"], means["test_error"], color=colour, linewidth=1, label=selection)
            for fraction, mean in means.iterrows():
                ax.scatter(mean["total_seconds"], mean["test_error"], color=colour, marker=markers[fraction], s=60,
                           edgecolor="white", zorder=3)
        for fraction, marker in markers.items():
            ax.scatter([], [], color="grey", marker=marker, label=f"fraction {format_fraction(fraction)}")
        ax.set_xlabel("end-to-end time (s): proxies, scoring, target")
        ax.set_ylabel("top-1 test error (%)")
        ax.set_title(f"target {target}: error against cost, one point per run")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(figure, out)


def write_summary_figures(*, summary_file: str | Path, error_out: str | Path, time_out: str | Path) -> None:
    summary = stage_files.read_table(summary_file, "summary")
    plot_error_vs_fraction(summary, error_out)
    plot_time_vs_fraction(summary, time_out)


def write_learning_curves(*, metrics_files: list[str | Path], out: str | Path) -> None:
    for note in plot_learning_curves(load_histories(metrics_files), out):
        print(f"note: {note}")


def write_error_vs_time(*, runs_file: str | Path, out: str | Path) -> None:
    plot_error_vs_time(stage_files.read_table(runs_file, "runs"), out)


def plot_class_composition(subsets: pd.DataFrame, out: str | Path) -> None:
    """Each subset's class mix beside the full training set's (``subsets``: report/subsets.csv).

    Left: the share of each class (stacked bars, one per subset, the full data set on top).
    Right: each class's share divided by its share of the full data set (1: kept in
    proportion; red below 1, blue above), outlined where it is below half, which warns.
    Rows are grouped by fraction: proxy selections, then random subsets.
    """
    share_columns = [c for c in subsets.columns if c.startswith("share ")]
    classes = [c.removeprefix("share ") for c in share_columns]
    full = subsets[subsets["subset"] == FULL]
    if len(full) != 1:
        raise StageInputError(
            f"the subsets table needs one row 'full' (the full training set) to compare with, got {len(full)}; "
            f"{stage_files.REMAKE['subsets table']}"
        )
    rows = pd.concat([full, subsets[subsets["subset"] != FULL].sort_values("fraction", kind="stable")])
    labels = ["full data" if r.subset == FULL else f"{r.subset} {format_fraction(r.fraction)}" for r in rows.itertuples()]
    shares = rows[share_columns].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = shares / full[share_columns].to_numpy(dtype=np.float64)
    n_rows, n_classes = shares.shape
    figure = Figure(figsize=(7 + max(4.0, 0.45 * n_classes), 1.6 + 0.38 * n_rows), layout="constrained")
    bars_ax, ratio_ax = figure.subplots(1, 2, width_ratios=[1.0, max(1.0, 0.07 * n_classes)])
    palette = colormaps["tab10" if n_classes <= 10 else "tab20" if n_classes <= 20 else "viridis"]
    colours = palette.colors[:n_classes] if hasattr(palette, "colors") and n_classes <= 20 else palette(np.linspace(0, 1, n_classes))
    positions = np.arange(n_rows)
    left = np.zeros(n_rows)
    for column, name, colour in zip(range(n_classes), classes, colours):
        values = np.nan_to_num(shares[:, column])
        bars_ax.barh(positions, values, left=left, color=colour, label=name, height=0.8)
        left += values
    bars_ax.set_yticks(positions, labels, fontsize=8)
    bars_ax.invert_yaxis()
    bars_ax.set_xlim(0, 100)
    bars_ax.set_xlabel("share of the subset (%)")
    bars_ax.set_title("class composition")
    if n_classes <= 20:
        figure.legend(title="class", fontsize=7, ncol=min(n_classes, 10), loc="outside lower left")
    finite = ratios[np.isfinite(ratios)]
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=max(2.0, float(finite.max()) if finite.size else 2.0))
    image = ratio_ax.imshow(np.ma.masked_invalid(ratios), cmap="RdBu", norm=norm, aspect="auto")
    ratio_ax.set_xticks(range(n_classes), classes, rotation=90 if n_classes > 10 else 0, fontsize=8)
    ratio_ax.set_yticks(positions, labels, fontsize=8)
    ratio_ax.set_xlabel("class")
    ratio_ax.set_title("share / share in the full data (< 0.5 outlined: warned)")
    for (row, column), value in np.ndenumerate(ratios):
        if np.isfinite(value) and value < 0.5:
            ratio_ax.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5))
        if n_classes <= 20 and np.isfinite(value):
            dark = abs(norm(value) - 0.5) > 0.3
            ratio_ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if dark else "black")
    for ax in (bars_ax, ratio_ax):  # a line between the full data and each fraction's group
        for boundary in np.flatnonzero(np.diff(rows["fraction"].to_numpy())) + 0.5:
            ax.axhline(boundary, color="black", linewidth=0.8)
    figure.colorbar(image, ax=ratio_ax, shrink=0.8, label="share ratio")
    save_figure(figure, out)


def write_class_composition(*, subsets_file: str | Path, out: str | Path) -> None:
    table = stage_files.read_table(subsets_file, "subsets table")
    table["subset"] = table["subset"].astype(str)
    plot_class_composition(table, out)
