"""The stages that order examples (ranking, selection): read input files, write parquet outputs.

They need no model and no torch, so they start fast. Each subset's parquet metadata also
holds its diagnostics (class composition, the proxy runs' agreement; ``svp.selection.diagnostics``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from svp import data, stage_files
from svp.selection import diagnostics
from svp.errors import ConfigError, StageInputError
from svp.parquet import read_parquet_metadata, write_parquet
from svp.selection.ranking import average_ranks, combine_ranks, positions_of, ranks_from_scores
from svp.selection.coverage import bin_counts, parse_coverage
from svp.selection.orders import HARDEST, coverage_dropped, fraction_problem, parse_keep, random_ranks, selection_order, subset_size
from svp.selection.methods import SELECTION_METRICS


def run_names(score_files: list[str | Path]) -> list[str]:
    """A name per proxy run: ``seed<k>`` from the seed svp stores in a score file, else the
    file's name without ``.parquet`` (its path where two files share a name), for scores
    computed by other tools."""
    seeds = [read_parquet_metadata(path).get("seed") for path in score_files]
    stems = [Path(path).stem for path in score_files]
    by_file = stems if len(set(stems)) == len(stems) else [str(path) for path in score_files]
    names = [f"seed{seed}" if seed is not None else name for seed, name in zip(seeds, by_file)]
    for position, name in enumerate(names):
        if name in names[:position]:
            first = score_files[names.index(name)]
            what = f"seed {seeds[position]}" if seeds[position] is not None else f"run name {name!r}"
            raise StageInputError(f"{score_files[position]}: {what} again (also {first}); give each proxy run's scores once")
    return names


def rank_runs(*, score_files: list[str | Path], metric: str, ranks_out: str | Path, run_info: dict | None = None) -> pd.DataFrame:
    """Rank examples by ``metric`` in each proxy run, and combine the runs' ranks.

    A score file is any parquet with ``index``, ``label`` and the metric's column (svp's
    own, or one written by other code); ``rank_<run>`` holds each run's own order (ties by
    index), ``rank`` their combination, in which tied examples share their average rank.
    """
    if metric not in SELECTION_METRICS:
        raise ConfigError(f"unknown metric {metric!r}; known: {', '.join(SELECTION_METRICS)}")
    runs = [
        stage_files.read_scores(path, (metric,), with_correct="correct" in stage_files.read_schema(path, "scores").names)
        for path in score_files
    ]
    for path, run in zip(score_files, runs):
        if len(run["index"]) != len(runs[0]["index"]):
            raise StageInputError(
                f"{path}: {len(run['index']):,} rows, but {score_files[0]} has {len(runs[0]['index']):,}; "
                "were the runs scored on the same data? Rerun `svp score` (the score_examples rule)"
            )
        if not np.array_equal(run["label"], runs[0]["label"]):
            raise StageInputError(f"{path}: labels differ from {score_files[0]}; were the runs scored on the same data?")
    names = run_names(score_files)
    combined = combine_ranks(np.stack([average_ranks(run[metric]) for run in runs]))
    ranked = pd.DataFrame({"index": runs[0]["index"], "label": runs[0]["label"], "rank": combined})
    ranked["score_mean"] = np.mean([run[metric] for run in runs], axis=0)
    if all("correct" in run for run in runs):
        # Per example, the share of runs that predicted its label: the subsets' diagnostics use it.
        ranked["correct_mean"] = np.mean([run["correct"].astype(np.float64) for run in runs], axis=0)
    for name, run in zip(names, runs):
        ranked[f"{stage_files.RUN_RANK_PREFIX}{name}"] = ranks_from_scores(run[metric])
    write_parquet(ranked, ranks_out, {**(run_info or {}), "metric": metric, "runs": [str(p) for p in score_files]})
    return ranked


def _coverage_metadata(coverage, ranks, labels, scores, order, class_balanced, fraction, keep) -> dict:
    """The coverage draw's settings and bins for a subset's metadata; a StageInputError if the
    subset reaches the hardest share the policy drops."""
    dropped = coverage_dropped(ranks, labels if class_balanced else None, coverage)
    if dropped[order].any():
        where, within = "", np.ones(len(labels), dtype=bool)
        if class_balanced:  # the class of the first dropped example the subset would take
            short = labels[order[np.argmax(dropped[order])]]
            where, within = f" of class {short}", labels == short
        raise StageInputError(
            f"config key selection.keep: {keep} drops the hardest {coverage.prune_hardest:g} and leaves "
            f"{np.count_nonzero(within & ~dropped):,} examples{where}, but fraction {fraction:g} takes "
            f"{np.count_nonzero(within[order]):,}; lower prune_hardest or the fraction (a coverage subset never "
            "holds the examples it drops)"
        )
    if class_balanced:
        # Bins are per class: report each bin position summed over the classes.
        per_class = [
            bin_counts(scores[members], positions_of(np.argsort(ranks[members], kind="stable")), coverage,
                       np.flatnonzero(np.isin(members, order)))
            for members in (np.flatnonzero(labels == c) for c in np.unique(labels))
        ]
        counts = {key: np.sum([c[key] for c in per_class], axis=0).tolist() for key in ("bin_sizes", "bin_taken")}
    else:
        counts = bin_counts(scores, ranks, coverage, order)
        counts.pop("dropped_taken")
    return {
        "coverage": {
            "prune_hardest": coverage.prune_hardest,
            "bins": coverage.bins,
            "seed": coverage.seed,
            "dropped": int(np.count_nonzero(dropped)),
            "bins_per_class": class_balanced,
            **counts,
        }
    }


def select_subset(
    *,
    fraction: float,
    subset_out: str | Path,
    class_balanced: bool,
    keep: str = HARDEST,
    ranks_file: str | Path | None = None,
    data_dir: str | Path | None = None,
    random_seed: int | None = None,
    run_info: dict | None = None,
) -> pd.DataFrame:
    """Write the examples of one subset, in selection order (most valuable first).

    With ``ranks_file`` the order follows the combined proxy ranks, from the end the keep
    policy ``keep`` names (``svp.selection.orders.keep_order``); with ``random_seed`` it is
    a random order (labels read from ``data_dir``; with ``ranks_file`` they are checked
    against the ranks). Fraction 1.0 keeps everything. A coverage policy bins the ranks
    file's ``score_mean`` (the proxy runs' mean score) and refuses a fraction that would
    reach the hardest share it drops.
    """
    if (ranks_file is None) == (random_seed is None):
        raise ValueError("give exactly one of ranks_file (proxy selection) and random_seed (random selection)")
    parse_keep(keep)  # refused before any file is read
    if random_seed is not None and keep != HARDEST:
        raise ConfigError(f"keep policy {keep!r} needs a proxy's ranks (--ranks); a random order has no hard or easy end")
    runs, correct_mean, scores = {}, None, None
    coverage = parse_coverage(keep)
    if ranks_file is not None:
        # Checked against the training labels when the data is given: a ranks file cut short would select from part of it.
        ranked = stage_files.read_ranks(ranks_file, None if data_dir is None else data.load_labels(data_dir, "train"))
        labels, ranks = ranked["label"].to_numpy(), ranked["rank"].to_numpy()
        runs = diagnostics.run_ranks(ranked)
        correct_mean = ranked["correct_mean"].to_numpy() if "correct_mean" in ranked else None
        if coverage is not None:
            if "score_mean" not in ranked:
                raise StageInputError(
                    f"{ranks_file}: no column 'score_mean', which keep policy {keep!r} bins the examples by; "
                    "rerun `svp rank` (the rank_examples rule) to remake it"
                )
            scores = ranked["score_mean"].to_numpy()
    else:
        labels = data.load_labels(data_dir, "train")
        ranks = random_ranks(len(labels), random_seed)
    # Config validation checks this only for data sets whose size it knows.
    if problem := fraction_problem(fraction, np.unique(labels, return_counts=True)[1], class_balanced):
        raise StageInputError(f"config key selection.fractions: {problem}")
    order = selection_order(ranks, labels, class_balanced, keep, scores)[: subset_size(fraction, len(labels))]
    coverage_info = {}
    if coverage is not None:
        coverage_info = _coverage_metadata(coverage, ranks, labels, scores, order, class_balanced, fraction, keep)
    subset = pd.DataFrame({"index": order.astype(np.int64), "label": labels[order]})
    description = diagnostics.describe_subset(
        order, labels, fraction=fraction, class_balanced=class_balanced, keep=keep, runs=runs, correct_mean=correct_mean
    )
    out = Path(subset_out)
    # The workflow's subsets/<name>/<fraction>.parquet is named by its folder; any other file by its path.
    name = out.parent.name if out.parent.parent.name == "subsets" else str(out)
    warning = diagnostics.composition_warning(name, fraction, description, class_balanced=class_balanced)
    write_parquet(
        subset,
        subset_out,
        {
            **(run_info or {}),
            "fraction": fraction,
            "class_balanced": class_balanced,
            # Only another policy is recorded: SVP's default subsets stay as they were.
            **({} if keep == HARDEST else {"keep": keep}),
            **coverage_info,
            "n_total": len(labels),
            "diagnostics": diagnostics.metadata(description, warning),
        },
    )
    if warning:
        print(f"warning: {warning}", flush=True)
    return subset
