"""Why a selection wins or loses: what each subset holds, against the full training set.

For every subset a target trains on (a proxy selection ``<proxy>-<metric>`` or a random
subset ``random-<seed>``, at each fraction):

- **class composition**: each class's share of the subset against its share of the full
  training set; the smallest ratio of the two and the class that has it (0 when a class
  is missing from the subset); the total variation distance between the two
  distributions (half the sum of the absolute differences of the shares: 0 for the same
  mix of classes, 1 for no class in common);
- **agreement of the proxy runs**: the mean Jaccard overlap, over every pair of proxy
  runs, of the subsets each single run would have chosen at that fraction (through the
  class-balanced order where the selection used it). Undefined (NaN) with one run. Two
  independent random subsets of fraction f overlap by about f / (2 - f);
- **the proxy itself**: its mean test error over its runs (percent), and the share of the
  subset's examples whose proxy prediction disagrees with the label (percent; the mean
  over the proxy runs of each run's share, i.e. of ``1 - correct`` averaged over runs),
  beside the same share over all training examples. Uncertainty selection favours the
  examples a proxy gets wrong: hard, ambiguous or mislabelled ones.

A subset that keeps less than half of some class's share of the training set gets a
warning that says what to try.

``svp select`` records what its own inputs allow (composition, the runs' Jaccard, the
disagreement share from the ranks' ``correct_mean``) in the subset's parquet metadata,
key ``diagnostics``; the report recomputes all of it from the subsets, ranks, scores and
proxy metrics (:func:`diagnose_subsets`), and ``svp.report.subset_tables`` writes it as
``report/subsets.csv``, ``.md`` and ``.html``.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd

from svp import data, plan, stage_files
from svp.errors import StageInputError
from svp.schema import format_fraction
from svp.io import read_json
from svp.parquet import read_parquet_metadata
from svp.plan import FULL
from svp.selection.orders import HARDEST, selection_order, subset_size

# A subset holding a class at less than this share of its share of the data gets a warning.
MIN_SHARE_RATIO = 0.5
SHARE_PREFIX = "share "
COLUMNS = [
    "subset",
    "selection",
    "proxy",
    "metric",
    "fraction",
    "class_balanced",
    "n_examples",
    "n_total",
    "min_ratio",
    "min_ratio_class",
    "classes_below_half",
    "tv_distance",
    "proxy_error",
    "proxy_runs",
    "jaccard",
    "disagreement",
    "disagreement_all",
    "warning",
]


def _labels(values) -> np.ndarray:
    labels = np.asarray(values)
    if labels.ndim != 1 or (labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0)):
        raise ValueError(f"labels must be a 1-d array of class numbers 0, 1, ..., got {labels.dtype} of shape {labels.shape}")
    return labels.astype(np.int64)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.full(len(counts), np.nan)


def class_composition(subset_labels, all_labels, num_classes: int | None = None) -> dict:
    """Class counts and shares of a subset against the full training set.

    ``ratios[c]`` is the subset's share of class c divided by the data's share of c (1: kept
    in proportion, 0: missing from the subset; NaN for a class with no training example).
    ``min_ratio`` and ``min_ratio_class`` are the smallest ratio and its class (the lowest
    label on ties), ``tv_distance`` the total variation distance of the two distributions.
    An empty subset has no shares: all three are NaN/None.
    """
    subset_labels, all_labels = _labels(subset_labels), _labels(all_labels)
    n_classes = max([num_classes or 0] + [int(labels.max()) + 1 for labels in (subset_labels, all_labels) if labels.size])
    full_counts = np.bincount(all_labels, minlength=n_classes)
    subset_counts = np.bincount(subset_labels, minlength=n_classes)
    full_shares, subset_shares = _shares(full_counts), _shares(subset_counts)
    present = full_counts > 0
    ratios = np.full(n_classes, np.nan)
    ratios[present] = subset_shares[present] / full_shares[present]
    if subset_labels.size == 0 or not present.any():
        min_ratio, min_class, tv_distance, below = math.nan, None, math.nan, 0
    else:
        min_class = int(np.flatnonzero(present)[np.argmin(ratios[present])])
        min_ratio = float(ratios[min_class])
        tv_distance = float(0.5 * np.abs(subset_shares - full_shares).sum())
        below = int((ratios[present] < MIN_SHARE_RATIO).sum())
    return {
        "n_examples": int(subset_labels.size),
        "n_total": int(all_labels.size),
        "class_counts": subset_counts,
        "full_class_counts": full_counts,
        "shares": subset_shares,
        "full_shares": full_shares,
        "ratios": ratios,
        "min_ratio": min_ratio,
        "min_ratio_class": min_class,
        "classes_below_half": below,
        "tv_distance": tv_distance,
    }


def run_ranks(ranks: pd.DataFrame) -> dict[str, np.ndarray]:
    """{'seed<k>' (or a score file's name): ranks} of every single proxy run in a ranks table (its ``rank_<run>`` columns)."""
    prefix = stage_files.RUN_RANK_PREFIX
    return {column.removeprefix(prefix): ranks[column].to_numpy() for column in ranks.columns if column.startswith(prefix)}


def single_run_subsets(
    runs: dict[str, np.ndarray], labels, fraction: float, class_balanced: bool, keep: str = HARDEST
) -> dict[str, np.ndarray]:
    """The subset of ``fraction`` each single run would have chosen alone, by the selection's own rule.

    A ranks file holds each run's ranks but not its scores, so a coverage policy bins a
    single run by its ranks (equal-count bins): its Jaccard then shows how much the runs'
    hardest shares and strata differ, with the same draw."""
    labels = _labels(labels)
    size = subset_size(fraction, len(labels))
    return {
        run: selection_order(ranks, labels, class_balanced, keep, len(ranks) - 1.0 - np.asarray(ranks))[:size]
        for run, ranks in runs.items()
    }


def jaccard(first, second) -> float:
    """|A and B| / |A or B| of two sets of example indices; NaN when both are empty."""
    union = len(np.union1d(first, second))
    return len(np.intersect1d(first, second)) / union if union else math.nan


def mean_pairwise_jaccard(subsets) -> float:
    """The mean Jaccard index over every pair of ``subsets``; NaN for fewer than two (undefined)."""
    pairs = list(itertools.combinations(list(subsets), 2))
    return float(np.mean([jaccard(a, b) for a, b in pairs])) if pairs else math.nan


def disagreement_share(correct_mean: np.ndarray, index) -> float:
    """Percent of the examples ``index`` whose proxy prediction disagrees with the label.

    ``correct_mean`` is, per training example, the share of proxy runs that predicted its
    label, so this is the mean over runs of each run's share of disagreements. NaN for
    no example.
    """
    index = np.asarray(index, dtype=np.int64)
    return float(100.0 * (1.0 - np.mean(np.asarray(correct_mean, dtype=np.float64)[index]))) if index.size else math.nan


def describe_subset(
    index,
    labels,
    *,
    fraction: float,
    class_balanced: bool,
    keep: str = HARDEST,
    runs: dict[str, np.ndarray] | None = None,
    correct_mean: np.ndarray | None = None,
    num_classes: int | None = None,
) -> dict:
    """Everything known about one subset (example indices ``index`` of the training set).

    ``labels``: every training example's label. ``runs``: the single proxy runs' ranks
    ({run name: rank per example}), for their Jaccard overlap. ``correct_mean``: per example,
    the share of proxy runs that predicted its label, for the disagreement shares.
    """
    labels = _labels(labels)
    index = np.asarray(index, dtype=np.int64)
    if index.size and (index.min() < 0 or index.max() >= len(labels)):
        raise ValueError(f"the subset holds example indices outside 0..{len(labels) - 1} (was it selected from other data?)")
    if correct_mean is not None and len(correct_mean) != len(labels):
        raise ValueError(f"{len(correct_mean)} proxy predictions for {len(labels)} training examples")
    runs = runs or {}
    single = single_run_subsets(runs, labels, fraction, class_balanced, keep) if runs else {}
    no_proxy = correct_mean is None
    return {
        **class_composition(labels[index], labels, num_classes),
        "proxy_runs": len(runs),
        "jaccard": mean_pairwise_jaccard(single.values()),
        "disagreement": math.nan if no_proxy else disagreement_share(correct_mean, index),
        "disagreement_all": math.nan if no_proxy else disagreement_share(correct_mean, np.arange(len(labels))),
    }


def _json_value(value):
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metadata(description: dict, warning: str = "") -> dict:
    """A subset's description as JSON-ready metadata (NaN becomes null)."""
    renamed = {"shares": "class_shares", "full_shares": "full_class_shares", "ratios": "class_ratios"}
    facts = {renamed.get(key, key): _json_value(value) for key, value in description.items()}
    return {**facts, "min_share_ratio_warned_below": MIN_SHARE_RATIO, "warning": warning}


def _format_percent(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.1f}%"


def composition_warning(
    subset: str,
    fraction: float,
    description: dict,
    class_names: list[str] | None = None,
    *,
    class_balanced: bool,
    proxy: str | None = None,
    proxy_error: float = math.nan,
) -> str:
    """The warning for a subset that keeps less than half of some class's share ('' if none)."""
    where = f"subset {subset} at fraction {format_fraction(fraction)}"
    if description["n_examples"] == 0:
        return f"{where} is empty: the target trained on no example"
    ratio = description["min_ratio"]
    if not ratio < MIN_SHARE_RATIO:  # NaN too: nothing to compare
        return ""
    def name(label: int) -> str:
        return class_names[label] if class_names and label < len(class_names) else str(label)

    label = description["min_ratio_class"]
    ratios = np.asarray(description["ratios"], dtype=np.float64)
    others = [c for c in np.argsort(ratios, kind="stable") if c != label and ratios[c] < MIN_SHARE_RATIO]
    listed = ", ".join(f"'{name(c)}' at {ratios[c]:.2f}" for c in others[:5]) + (", ..." if len(others) > 5 else "")
    more = f"; also below half: {listed}" if others else ""
    tries = [] if class_balanced else ["selection.class_balanced: true"]
    tries.append("a larger fraction")
    if proxy:
        tries.append(f"a better proxy ({proxy}: {_format_percent(proxy_error)} test error)")
        tries.append("selection.keep: easiest or {middle: 0.1} (the hardest examples are the skewed ones)")
    advice = tries[0] if len(tries) == 1 else ", ".join(tries[:-1]) + " or " + tries[-1]
    return (
        f"{where} keeps class '{name(label)}' at {ratio:.2f} of its share of the training set "
        f"({100 * description['shares'][label]:.1f}% of the subset against "
        f"{100 * description['full_shares'][label]:.1f}% of the data{more}). Try {advice}."
    )


def proxy_test_errors(metrics_files) -> tuple[dict[str, float], list[str]]:
    """({proxy: mean test error over its runs, in percent}, notes on runs without a finite error).

    A run whose ``test_error`` is missing or not finite (a diverged run) makes its proxy's
    mean NaN rather than being left out, so a failed proxy run cannot hide.
    """
    errors: dict[str, list[float]] = {}
    notes = []
    for path in metrics_files:
        info = read_json(path)
        proxy = str(info.get("proxy", Path(path).parent.parent.name))
        value = info.get("test_error")
        error = float(value) if isinstance(value, (int, float)) else math.nan
        if not math.isfinite(error):
            notes.append(f"{path}: test_error is {value!r}; proxy {proxy}'s mean test error is shown as NaN")
            error = math.nan
        errors.setdefault(proxy, []).append(error)
    return {proxy: float(np.mean(values)) for proxy, values in errors.items()}, notes


def proxy_correct_means(score_files) -> dict[str, np.ndarray]:
    """{proxy: per training example, the share of the proxy's runs whose prediction equals its label}."""
    correct: dict[str, list[np.ndarray]] = {}
    for path in score_files:
        run = stage_files.read_scores(path, with_correct=True)
        proxy = str(read_parquet_metadata(path).get("proxy", Path(path).parent.name))
        correct.setdefault(proxy, []).append(run["correct"].astype(np.float64))
    for proxy, runs in correct.items():
        if len({len(run) for run in runs}) != 1:
            raise StageInputError(f"the score files of proxy {proxy} cover different numbers of examples; rerun its scoring")
    return {proxy: np.mean(runs, axis=0) for proxy, runs in correct.items()}


def _subset_facts(path: str | Path, n_examples: int) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """(example indices, their labels if stored, svp metadata) of a subset file."""
    index = stage_files.subset_index(path, n_examples, allow_empty=True)
    info = read_parquet_metadata(path)
    try:
        fraction, class_balanced = float(info["fraction"]), bool(info["class_balanced"])
    except (KeyError, TypeError, ValueError):
        raise StageInputError(f"{path}: no fraction and class_balanced in its metadata; write subsets with `svp select`") from None
    has_labels = "label" in stage_files.read_schema(path, "subset").names
    labels = stage_files.whole_numbers(path, stage_files.read_columns(path, ["label"], "subset"), "label", "subset") if has_labels else None
    # Subsets written before keep policies existed kept the hardest first.
    return index, labels, {**info, "fraction": fraction, "class_balanced": class_balanced, "keep": info.get("keep", HARDEST)}


def diagnose_subsets(
    *, data_dir: str | Path, subset_files, rank_files=(), score_files=(), proxy_metrics=()
) -> tuple[pd.DataFrame, list[str]]:
    """One row per subset file and a last row for the full training set (columns ``COLUMNS``,
    then ``share <class>`` in percent), and notes about inputs that left values undefined.

    A subset's name is its folder (``subsets/<name>/<fraction>.parquet``); a proxy
    selection's ranks file is ``<name>.parquet``, its proxy runs are found by the
    ``proxy`` recorded in the score files and metrics.
    """
    labels = _labels(data.load_labels(data_dir, "train"))
    names = [str(name) for name in data.read_manifest(data_dir).get("classes") or []]
    n_classes = max(len(names), int(labels.max()) + 1 if labels.size else 0)
    names += [str(label) for label in range(len(names), n_classes)]
    ranks_by_selection = {Path(path).stem: stage_files.read_ranks(path, labels) for path in rank_files}
    correct_by_proxy = proxy_correct_means(score_files)
    for proxy, correct in correct_by_proxy.items():
        if len(correct) != len(labels):
            raise StageInputError(f"proxy {proxy}'s score files cover {len(correct):,} examples, the training data {len(labels):,}; rerun its scoring")
    errors, notes = proxy_test_errors(proxy_metrics)
    rows, shares = [], []
    for path in subset_files:
        subset = Path(path).parent.name
        index, subset_labels, info = _subset_facts(path, len(labels))
        if info.get("n_total", len(labels)) != len(labels):
            raise StageInputError(f"{path}: selected from {info['n_total']:,} examples, but the training data has {len(labels):,}; rerun the selection")
        proxy, metric = plan.parse_selection(subset) if "-" in subset else (None, None)
        ranks = ranks_by_selection.get(f"{proxy}-{metric}")
        if proxy and ranks is None:
            notes.append(f"{path}: no ranks file {proxy}-{metric}.parquet given; the proxy runs' Jaccard is left empty")
        description = describe_subset(
            index, labels, fraction=info["fraction"], class_balanced=info["class_balanced"], keep=info["keep"],
            runs=run_ranks(ranks) if ranks is not None else None, correct_mean=correct_by_proxy.get(proxy), num_classes=n_classes,
        )
        if subset_labels is not None and not np.array_equal(subset_labels, labels[index]):
            raise StageInputError(f"{path}: its labels differ from the training data's; was it selected from other data?")
        if proxy and description["proxy_runs"] == 1:
            notes.append(f"subset {subset}: one proxy run, so the runs' Jaccard overlap is undefined (left empty)")
        proxy_error = errors.get(proxy, math.nan) if proxy else math.nan
        rows.append({
            "subset": subset,
            "selection": plan.RANDOM if subset.startswith(f"{plan.RANDOM}-") else subset,
            "proxy": proxy or "",
            "metric": metric or "",
            "fraction": info["fraction"],
            "class_balanced": info["class_balanced"],
            **{key: description[key] for key in COLUMNS if key in description},
            "min_ratio_class": "" if description["min_ratio_class"] is None else names[description["min_ratio_class"]],
            "proxy_error": proxy_error,
            "warning": composition_warning(subset, info["fraction"], description, names, class_balanced=info["class_balanced"],
                                           proxy=proxy, proxy_error=proxy_error),
        })
        shares.append(100 * description["shares"])
    full = class_composition(labels, labels, n_classes)
    rows.append({"subset": FULL, "selection": FULL, "proxy": "", "metric": "", "fraction": 1.0, "class_balanced": False,
                 **{key: full[key] for key in COLUMNS if key in full}, "min_ratio_class": "",
                 "proxy_runs": 0, "proxy_error": math.nan, "jaccard": math.nan, "disagreement": math.nan,
                 "disagreement_all": math.nan, "warning": ""})
    shares.append(100 * full["shares"])
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    table = pd.concat([table, pd.DataFrame(shares, columns=[f"{SHARE_PREFIX}{name}" for name in names])], axis=1)
    return _in_report_order(table), notes


def _in_report_order(table: pd.DataFrame) -> pd.DataFrame:
    """Proxy selections, then random subsets (by seed), each by fraction; the full data set last."""
    group = table["selection"].map({plan.RANDOM: 1, FULL: 2}).fillna(0)
    seed = pd.to_numeric(table["subset"].str.extract(rf"^{plan.RANDOM}-(\d+)$")[0], errors="coerce").fillna(-1)
    ordered = table.assign(_group=group, _seed=seed).sort_values(["_group", "selection", "_seed", "fraction"], kind="stable")
    return ordered.drop(columns=["_group", "_seed"]).reset_index(drop=True)


def class_columns(table: pd.DataFrame) -> list[str]:
    return [column for column in table.columns if column.startswith(SHARE_PREFIX)]


def warnings_of(table: pd.DataFrame) -> list[str]:
    return [text for text in table["warning"].fillna("") if text]
