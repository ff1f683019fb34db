"""The active-learning report: error against labelled budget, selection time, speed-up.

From the files the rounds wrote (svp.active): each pool's facts (round, budget, sizes,
the batch choice's seconds), each selector's metrics.json (its training seconds) and
score file (its scoring seconds), and each target's metrics.json (its test error on
that round's pool). A round's selection time is what choosing its batch cost: training
the selector on the pool before it, scoring the training set with it, and choosing the
batch. Random labels cost only the draw. The kcenter strategy has no score file: its
pool's facts hold the forward pass that embedded the training set as its
``scoring_seconds`` (and k-center greedy in its ``batch_seconds``), so proxy and target
selection compare the same parts.

``rounds.csv`` has one row per (labelling, seed, round); ``results.csv`` one per
(target, labelling, budget) with the error's mean and std over seeds, the selection
time spent to reach that budget (mean over seeds) and, for a proxy's labels, the
speed-up of its selection over the target's own selection with the same strategy (the
SVP paper's comparison). The Markdown and HTML tables show the same in the paper's
form, a row per labelling and a column per budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from svp import stage_files
from svp.active import rounds as rounds_plan
from svp.active.rounds import RANDOM
from svp.schema import format_fraction
from svp.errors import StageInputError
from svp.io import atomic_path
from svp.parquet import read_parquet_metadata
from svp.report.render import html_page, html_sections, markdown_sections
from svp.report.tables import format_error

ROUND_COLUMNS = [
    "labelling", "selector", "selector_role", "strategy", "seed", "round", "budget", "pool_size", "batch_size",
    "selector_seconds", "scoring_seconds", "batch_seconds", "selection_seconds", "cumulative_selection_seconds",
]  # fmt: skip
RESULT_COLUMNS = [
    "target", "labelling", "selector", "selector_role", "strategy", "budget", "runs", "error_mean", "error_std",
    "selection_seconds", "compared_with", "selection_speedup",
]  # fmt: skip
KEYS = ["labelling", "seed", "round"]


def _pool_facts(path: str | Path) -> dict:
    facts = read_parquet_metadata(path)
    missing = [key for key in ("labelling", "seed", "round", "budget", "pool_size", "batch_size", "batch_seconds") if key not in facts]
    if missing:
        raise StageInputError(f"{path}: no {', '.join(missing)} among its facts; is it a round's pool? {stage_files.REMAKE['pool']}")
    return facts


def _selector_costs(selector_metrics: list[str | Path], score_files: list[str | Path], labellings) -> pd.DataFrame:
    """labelling, seed (the run's), round, selector_role, model, selector_seconds, scoring_seconds.

    Round 1's selector is shared by the strategies of its selector (its facts name no
    labelling): its costs go to each of ``labellings`` it served, the ones that read its
    scores for its score file, so each labelling's time is what it would cost alone.
    """
    trained = []
    for path in selector_metrics:
        metrics = stage_files.read_run_metrics(path, "selector")
        row = {"seed": metrics["run_seed"], "round": metrics["round"], "selector_role": metrics.get("selector_role", ""),
               "model": metrics.get("model", ""), "selector_seconds": metrics["seconds"]}  # fmt: skip
        trained += [{**row, "labelling": name} for name in _served(metrics, labellings, scored=False)]
    scored = []
    for path in score_files:
        stage_files.read_schema(path, "scores")
        facts = read_parquet_metadata(path)
        if facts.get("role") != "selector" or "scoring_seconds" not in facts:
            raise StageInputError(f"{path}: not a selector's score file (no role 'selector' or scoring_seconds); {stage_files.REMAKE['scores']}")
        row = {"seed": facts["run_seed"], "round": facts["round"], "scoring_seconds": facts["scoring_seconds"]}
        scored += [{**row, "labelling": name} for name in _served(facts, labellings, scored=True)]
    columns = [*KEYS, "selector_role", "model", "selector_seconds"]
    trained = pd.DataFrame(trained).reindex(columns=columns)
    scored = pd.DataFrame(scored).reindex(columns=[*KEYS, "scoring_seconds"])
    for frame, what in ((trained, "selector metrics.json"), (scored, "selector score file")):
        if frame.duplicated(KEYS).any():
            row = frame[frame.duplicated(KEYS)].iloc[0]
            raise StageInputError(f"two {what}s for {row['labelling']}, seed {row['seed']}, round {row['round']}; give each once")
    return trained.merge(scored, on=KEYS, how="outer")


def _served(facts: dict, labellings, scored: bool) -> list[str]:
    """The labellings a selector's run served: its own, or for a shared round-1 selector
    (no labelling) every one of its selector's (that reads scores, for a score file)."""
    if facts.get("labelling"):
        return [facts["labelling"]]
    return [
        name for name in labellings
        if name != RANDOM and rounds_plan.parse_labelling(name)[0] == facts.get("selector")
        and (not scored or rounds_plan.reads_scores(name))
    ]  # fmt: skip


def round_table(pool_files: list[str | Path], selector_metrics: list[str | Path], score_files: list[str | Path]) -> pd.DataFrame:
    """One row per (labelling, seed, round) with the round's selection time and its parts (seconds)."""
    pools = pd.DataFrame([_pool_facts(path) for path in pool_files])
    if pools.empty:
        raise StageInputError("no pool files given: the active-learning report needs each round's pool.parquet")
    if pools.duplicated(KEYS).any():
        row = pools[pools.duplicated(KEYS)].iloc[0]
        raise StageInputError(f"two pools for {row['labelling']}, seed {row['seed']}, round {row['round']}; give each once")
    # A pool whose batch job ran the selector (kcenter) holds that time; others hold none.
    pools = pools.reindex(columns=[*pools.columns.drop("scoring_seconds", errors="ignore"), "scoring_seconds"])
    pools = pools.rename(columns={"scoring_seconds": "embedding_seconds"})
    costs = _selector_costs(selector_metrics, score_files, pools["labelling"].unique())
    rounds = pools.merge(costs, on=KEYS, how="left")
    both = rounds[rounds["embedding_seconds"].notna() & rounds["scoring_seconds"].notna()]
    if not both.empty:
        row = both.iloc[0]
        raise StageInputError(
            f"{row['labelling']}, seed {row['seed']}, round {row['round']}: a score file was given, but its pool's batch "
            "was chosen on embeddings (kcenter), which reads none; give score files of the uncertainty labellings only"
        )
    rounds["scoring_seconds"] = rounds["scoring_seconds"].fillna(rounds["embedding_seconds"])
    selected = rounds["labelling"] != RANDOM
    lacking = rounds[selected & (rounds["selector_seconds"].isna() | rounds["scoring_seconds"].isna())]
    if not lacking.empty:
        row = lacking.iloc[0]
        raise StageInputError(
            f"no selector metrics.json or score file for {row['labelling']}, seed {row['seed']}, round {row['round']}: "
            "give every round's selector/seed<k>/metrics.json, and its scores.parquet where the strategy reads scores "
            "(kcenter's pool holds its own scoring time)"
        )
    rounds["strategy"] = rounds["strategy"].fillna(RANDOM)
    rounds["selector"] = [labelling.partition("-")[0] if labelling != RANDOM else "" for labelling in rounds["labelling"]]
    rounds["selector_role"] = rounds["selector_role"].fillna("")
    rounds[["selector_seconds", "scoring_seconds"]] = rounds[["selector_seconds", "scoring_seconds"]].fillna(0.0)
    rounds["selection_seconds"] = rounds["selector_seconds"] + rounds["scoring_seconds"] + rounds["batch_seconds"]
    rounds = rounds.sort_values(KEYS, kind="stable").reset_index(drop=True)
    rounds["cumulative_selection_seconds"] = rounds.groupby(["labelling", "seed"])["selection_seconds"].cumsum()
    return rounds[ROUND_COLUMNS]


def load_target_runs(target_metrics: list[str | Path]) -> pd.DataFrame:
    runs = pd.DataFrame([stage_files.read_run_metrics(path, "active_target") for path in target_metrics])
    if runs.empty:
        raise StageInputError("no target metrics.json given: the active-learning report needs the targets trained on the pools")
    # The same run given twice would count as two seeds in the mean and std.
    repeated = runs.duplicated(["target", "labelling", "seed", "round"], keep=False)
    if repeated.any():
        row = runs[repeated].iloc[0]
        files = [str(path) for path, twice in zip(target_metrics, repeated) if twice]
        raise StageInputError(
            f"the target run {row['target']} on {row['labelling']}, seed {row['seed']}, round {row['round']} is given "
            f"more than once ({', '.join(files)}); give each target run's metrics.json once"
        )
    return runs


def results_table(rounds: pd.DataFrame, target_runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, labelling, budget); see the module's docstring."""
    cost = rounds[["labelling", "seed", "round", "cumulative_selection_seconds", "selector_role", "selector", "strategy"]]
    runs = target_runs[["target", "labelling", "seed", "round", "budget", "test_error"]].merge(
        cost, on=["labelling", "seed", "round"], how="left"
    )
    if runs["cumulative_selection_seconds"].isna().any():
        row = runs[runs["cumulative_selection_seconds"].isna()].iloc[0]
        raise StageInputError(f"a target was trained on the pool of {row['labelling']}, seed {row['seed']}, round {row['round']}, but that pool was not given")
    table = (
        runs.groupby(["target", "labelling", "budget"], sort=False)
        .agg(
            selector=("selector", "first"), selector_role=("selector_role", "first"), strategy=("strategy", "first"),
            runs=("seed", "size"), error_mean=("test_error", "mean"), error_std=("test_error", "std"),
            selection_seconds=("cumulative_selection_seconds", "mean"),
        )
        .reset_index()
    )  # fmt: skip
    # Proxy selection against the target's own selection with the same strategy, at the
    # same budget: the selector named like the row's target if it selects, else the only
    # target that selects; no comparison when there is none (or several).
    target_selectors = sorted(set(table.loc[table["selector_role"] == "target", "selector"]))
    compared = []
    for _, row in table.iterrows():
        reference = ""
        if row["selector_role"] == "proxy":
            chosen = row["target"] if row["target"] in target_selectors else (target_selectors[0] if len(target_selectors) == 1 else "")
            reference = f"{chosen}-{row['strategy']}" if chosen else ""
        compared.append(reference)
    table["compared_with"] = compared
    seconds = table.set_index(["target", "labelling", "budget"])["selection_seconds"]
    table["selection_speedup"] = [
        seconds.get((row["target"], row["compared_with"], row["budget"]), np.nan) / row["selection_seconds"]
        if row["compared_with"] else np.nan
        for _, row in table.iterrows()
    ]
    order = {"proxy": 0, "target": 1, "": 2}
    table = table.assign(_order=table["selector_role"].map(order).fillna(2))
    table = table.sort_values(["target", "_order", "labelling", "budget"], kind="stable").drop(columns="_order")
    return table[RESULT_COLUMNS].reset_index(drop=True)


def _who(row: pd.Series) -> str:
    if row["labelling"] == RANDOM:
        return "random labels"
    return f"{row['selector_role']} {row['selector']}, {row['strategy']}"


def _sections(results: pd.DataFrame) -> list[tuple[str, str, list[str], list[list[str]]]]:
    budgets = sorted(results["budget"].unique())
    labels = [format_fraction(b) for b in budgets]
    sections = []
    for target, rows in results.groupby("target", sort=False):
        by_labelling = list(rows.groupby("labelling", sort=False))
        seeds = sorted(set(rows["runs"]))
        error_rows, time_rows = [], []
        for labelling, group in by_labelling:
            cells = group.set_index("budget")
            first = group.iloc[0]
            error_rows.append(
                [labelling, _who(first)]
                + [format_error(cells.at[b, "error_mean"], cells.at[b, "error_std"]) if b in cells.index else "" for b in budgets]
            )
            time_cells = []
            for b in budgets:
                if b not in cells.index:
                    time_cells.append("")
                    continue
                speedup = cells.at[b, "selection_speedup"]
                time_cells.append(f"{cells.at[b, 'selection_seconds']:.1f} s" + ("" if np.isnan(speedup) else f" ({speedup:.2f}x)"))
            time_rows.append([labelling, first["compared_with"] or ""] + time_cells)
        runs = "/".join(str(s) for s in seeds)
        sections.append((
            target,
            f"Top-1 test error (%) of target {target} trained from scratch on the labelled pool, mean +- std over {runs} "
            "seeds, by the share of the training set labelled:",
            ["labels", "chosen by", *labels],
            error_rows,
        ))  # fmt: skip
        sections.append((
            target,
            "Selection time to reach each budget (every round's selector training, scoring and batch choice, "
            "summed; seconds, mean over seeds), and for a proxy the speed-up over the target selecting with the "
            "same strategy:",
            ["labels", "speed-up over", *labels],
            time_rows,
        ))  # fmt: skip
    return sections


def _markdown(results: pd.DataFrame) -> str:
    return markdown_sections(_sections(results), "Active learning: target ")


def _html(results: pd.DataFrame) -> str:
    return html_page("SVP active learning", html_sections(_sections(results), "Active learning: target "))


def write_active_tables(
    *,
    pool_files: list[str | Path],
    selector_metrics: list[str | Path],
    score_files: list[str | Path],
    target_metrics: list[str | Path],
    rounds_out: str | Path,
    csv_out: str | Path,
    markdown_out: str | Path,
    html_out: str | Path,
) -> pd.DataFrame:
    rounds = round_table(pool_files, selector_metrics, score_files)
    results = results_table(rounds, load_target_runs(target_metrics))
    with atomic_path(rounds_out) as tmp:
        rounds.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(csv_out) as tmp:
        results.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(markdown_out) as tmp:
        tmp.write_text(_markdown(results))
    with atomic_path(html_out) as tmp:
        tmp.write_text(_html(results))
    print(_markdown(results), flush=True)
    return results


def write_active_figures(*, rounds_file: str | Path, target_metrics: list[str | Path], error_out: str | Path, time_out: str | Path) -> None:
    """Error against labelled budget (one panel per target) and selection seconds per round."""
    from svp.report.figures import _target_axes, save_figure, selection_colours

    rounds = pd.read_csv(rounds_file, keep_default_na=False)
    missing = [column for column in ROUND_COLUMNS if column not in rounds.columns]
    if missing:
        raise StageInputError(f"{rounds_file}: no column {', '.join(missing)}; rerun `svp report active-tables`")
    results = results_table(rounds, load_target_runs(target_metrics))
    colours = selection_colours(results["labelling"])
    figure, axes = _target_axes(list(dict.fromkeys(results["target"])))
    labellings = list(dict.fromkeys(results["labelling"]))
    spacing = float(np.diff(sorted(results["budget"].unique())).min()) if results["budget"].nunique() > 1 else 0.1
    for target, ax in axes.items():
        for labelling, group in results[results["target"] == target].groupby("labelling", sort=False):
            # Nudged sideways so that equal errors (or their bars) at one budget do not hide each other.
            dodge = 0.03 * spacing * (labellings.index(labelling) - (len(labellings) - 1) / 2)
            ax.errorbar(
                group["budget"] + dodge, group["error_mean"], yerr=group["error_std"].fillna(0.0), label=labelling,
                color=colours[labelling], marker="o", capsize=3,
            )  # fmt: skip
        budgets = sorted(results["budget"].unique())
        ax.set_xticks(budgets, [format_fraction(b) for b in budgets])
        ax.set_xlabel("share of the training set labelled")
        ax.set_ylabel("test error (%)")
        ax.set_title(f"target {target}: error against labelled budget")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    save_figure(figure, error_out)

    per_round = rounds.groupby(["labelling", "round"], sort=False)["selection_seconds"].agg(["mean", "std"]).reset_index()
    figure, axes = _target_axes(["selection"])
    ax = axes["selection"]
    for labelling, group in per_round.groupby("labelling", sort=False):
        ax.errorbar(
            group["round"], group["mean"], yerr=group["std"].fillna(0.0), label=labelling, color=colours[labelling],
            marker="o", capsize=3,
        )  # fmt: skip
    ax.set_yscale("log")
    ax.set_xticks(sorted(per_round["round"].unique()))
    ax.set_xlabel("round")
    ax.set_ylabel("selection seconds (selector training + scoring + batch)")
    ax.set_title("selection time per round (mean over seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    save_figure(figure, time_out)
