"""Do the proxies order the examples like the target would? (The paper's Figure 3.)

For one uncertainty metric, the orders compared are each proxy run's, each proxy's rank
combination (what selection used), each full-data target run's (the target's own view
of which examples are uncertain) and a random order (the floor). Two correlations:

- Spearman's rho between the *orders* (ranks; rank 0 = most uncertain). This is what
  selection depends on, and equals the paper's Pearson correlation of the ranks.
- Pearson's r between the *scores* themselves (for a rank combination, the runs' mean
  score), which also weighs how far apart examples are; uncertain outliers dominate it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from svp.errors import StageInputError
from svp.io import atomic_path
from svp.parquet import read_parquet_metadata
from svp.plan import RANDOM
from svp.report.figures import save_figure
from svp.selection.ranking import average_ranks, combine_ranks
from svp.stage_files import read_scores

METHODS = ("spearman", "pearson")
# The random order is a reference point, not an experiment: one fixed draw is enough.
RANDOM_ORDER_SEED = 0


def _run_name(path: str | Path, role_key: str) -> tuple[str, str]:
    """(model name, 'seed<k>') of a score file, from the facts stored in it."""
    info = read_parquet_metadata(path)
    return str(info.get(role_key, Path(path).parent.name)), f"seed{info.get('seed', Path(path).stem)}"


def load_orders(
    metric: str, proxy_score_files: list[str | Path], target_score_files: list[str | Path]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and ranks of every order to compare, one column each, one row per example.

    Columns: '<proxy> seed<k>' for each proxy run followed by '<proxy> combined', then
    '<target> seed<k>' for each full-data target run, then 'random'.
    """
    scores: dict[str, np.ndarray] = {}
    ranks: dict[str, np.ndarray] = {}
    runs_by_proxy: dict[str, list[str]] = {}
    for path in proxy_score_files:
        proxy, seed = _run_name(path, "proxy")
        runs_by_proxy.setdefault(proxy, []).append(f"{proxy} {seed}")
        scores[f"{proxy} {seed}"] = _read_scores(path, metric)
    for proxy, runs in runs_by_proxy.items():
        # Tied scores (forgetting counts often tie) share their average rank, as in rank_examples.
        ranks.update({run: average_ranks(scores[run]) for run in runs})
        # The same rank combination rank_examples gave the selection.
        ranks[f"{proxy} combined"] = combine_ranks(np.stack([ranks[run] for run in runs]))
        scores[f"{proxy} combined"] = np.mean([scores[run] for run in runs], axis=0)
    for path in target_score_files:
        target, seed = _run_name(path, "target")
        scores[f"{target} {seed}"] = _read_scores(path, metric)
    lengths = {len(values) for values in scores.values()}
    if len(lengths) != 1:
        counts = ", ".join(f"{name}: {len(values):,}" for name, values in scores.items())
        raise StageInputError(f"the score files cover different numbers of examples ({counts}); were they scored on the same data?")
    scores[RANDOM] = np.random.default_rng(RANDOM_ORDER_SEED).random(lengths.pop())
    for name, values in scores.items():
        if name not in ranks:
            ranks[name] = average_ranks(values)
    columns = [name for proxy, runs in runs_by_proxy.items() for name in [*runs, f"{proxy} combined"]]
    columns += [name for name in scores if name not in columns]
    return pd.DataFrame(scores)[columns], pd.DataFrame(ranks)[columns]


def _read_scores(path: str | Path, metric: str) -> np.ndarray:
    return read_scores(path, (metric,))[metric]


def correlation_matrix(values: pd.DataFrame, method: str) -> pd.DataFrame:
    """Pairwise correlation of ``values``' columns: 'spearman' (scipy.stats.spearmanr) or 'pearson'."""
    correlate = {"spearman": stats.spearmanr, "pearson": stats.pearsonr}[method]
    names = list(values.columns)
    matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            value = correlate(values[first].to_numpy(), values[second].to_numpy())[0]
            matrix.loc[first, second] = matrix.loc[second, first] = float(value)
    return matrix


def correlation_matrices(scores: pd.DataFrame, ranks: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Spearman's rho between the orders, Pearson's r between the scores."""
    return {"spearman": correlation_matrix(ranks, "spearman"), "pearson": correlation_matrix(scores, "pearson")}


TITLES = {"spearman": "Spearman's rho of the orders", "pearson": "Pearson's r of the scores"}


def plot_correlation(matrices: dict[str, pd.DataFrame], metric: str, out: str | Path) -> None:
    """The matrices side by side, each cell annotated with its value."""
    n_runs = len(next(iter(matrices.values())))
    side = max(3.5, 0.55 * n_runs + 1.5)
    figure = Figure(figsize=(2 * side + 1.0, side + 0.6), layout="constrained")
    axes = figure.subplots(1, len(matrices))
    for ax, (method, matrix) in zip(np.atleast_1d(axes), matrices.items()):
        image = ax.imshow(matrix.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_xticks(range(n_runs), matrix.columns, rotation=45, ha="right")
        ax.set_yticks(range(n_runs), matrix.index)
        for (row, column), value in np.ndenumerate(matrix.to_numpy()):
            label = "" if np.isnan(value) else f"{value:.2f}".replace("-0.00", "0.00")
            ax.text(column, row, label, ha="center", va="center", fontsize=8, color="white" if abs(value) > 0.6 else "black")
        ax.set_title(TITLES[method])
    figure.colorbar(image, ax=axes, shrink=0.8, label="correlation")
    figure.suptitle(f"Example orders by {metric.replace('_', ' ')}: proxies, their combination, targets, random")
    save_figure(figure, out)


def write_correlation(
    *,
    metric: str,
    proxy_score_files: list[str | Path],
    target_score_files: list[str | Path],
    csv_out: str | Path,
    figure_out: str | Path,
) -> dict[str, pd.DataFrame]:
    """Correlate the orders for ``metric``; write the matrices (CSV) and their figure."""
    scores, ranks = load_orders(metric, proxy_score_files, target_score_files)
    matrices = correlation_matrices(scores, ranks)
    table = pd.concat(
        [matrix.rename_axis("run").reset_index().assign(metric=metric, method=method) for method, matrix in matrices.items()]
    )
    table = table[["metric", "method", "run", *scores.columns]]
    with atomic_path(csv_out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    plot_correlation(matrices, metric, figure_out)
    for method, matrix in matrices.items():
        print(f"{TITLES[method]} ({metric}):\n{matrix.round(3).to_string()}\n")
    return matrices
