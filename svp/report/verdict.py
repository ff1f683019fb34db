"""The verdict: for each fraction, which selection to trust, judged on validation error only.

A user deciding how much data to drop needs an answer that the test set did not choose:
picking the best row of a test-error table and reporting its test error is selection on
the test set, and flatters every method. The verdict reads the runs' validation error
(``dataset.validation`` holds out a class-stratified share of the training set that is
never scored, selected or trained on) and nothing else to choose; the test error is read
once, afterwards, to say how often the validation choice was also the test set's best,
which is how a user learns whether the validation split is large enough to guide them.

For each target and each fraction below 1:
- the choice is the selection with the lowest mean validation error over its seeds
  (ties go to random, the selection that needs no proxy, then to the cheaper one);
- it *beats* another selection when the two means differ by more than the two standard
  deviations added (their mean +- std intervals do not touch) and by more than the
  validation split can resolve: twice the standard error of the difference of two error
  rates measured on that many examples (sqrt(e(1-e)/n) each). Seeds that agree to the
  example (std 0) on a small split prove nothing; with one seed on either side the spread
  is unknown and nothing is claimed;
- the advice is "keep <fraction> chosen by <selection>" only when a proxy selection beats
  random that way and the budget-matched full data (when measured) does not beat it;
  otherwise "use random, or keep more" (or "train on all the data for the same budget"
  when the budget-matched baseline wins);
- the reasons come from what svp knows without the test set, for the choice and the best
  proxy selection: class skew (the subsets table's smallest share ratio), how many of the
  subset's examples the proxies get wrong against the whole set's share, the proxy's own
  validation error against the full-data target's, and the subset runs' final training
  accuracy against the full-data runs'.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np
import pandas as pd

from svp.plan import BUDGET, FULL, RANDOM

# A subset that keeps a class at less than half its share of the data is skewed (the same
# threshold as the subsets table's warnings).
SKEW_RATIO = 0.5
# Subset runs that end this many points of training accuracy below the full-data runs did
# not fit what they were given (svp's CPU CIFAR-10 targets ended 24-29 % on SVP's 30 %).
UNDERFIT_POINTS = 20.0
# A subset whose examples the proxies get wrong this often (percent), and twice as often
# as the whole training set's, holds mostly what they could not fit.
HARD_SHARE = 20.0
# A proxy that errs on the validation split this many times as often as the full-data
# target, and by this many points more, is weak: its uncertainty is not the target's
# (svp's CPU CIFAR-10 proxies: 51 % against the target's 24 %).
WEAK_PROXY_RATIO = 2.0
WEAK_PROXY_POINTS = 5.0

COLUMNS = [
    "target",
    "fraction",
    "choice",
    "validation_error",
    "validation_std",
    "runs",
    "random_validation_error",
    "random_validation_std",
    "beats_random",
    "budget_validation_error",
    "budget_validation_std",
    "beats_budget",
    "full_validation_error",
    "full_validation_std",
    "validation_examples",
    "seconds",
    "full_seconds",
    "seconds_saved",
    "speedup",
    "advice",
    "why",
]
AGREEMENT_COLUMNS = ["target", "fraction", "choice", "test_best", "agrees"]

# What the verdict says without a validation split: how to get one, never a guess from test error.
NO_SPLIT_LEAD = (
    "No verdict: it chooses by the error on a validation split, and this run has none. Hold out a share of the "
    "training set in the config, e.g."
)
NO_SPLIT_CONFIG = "dataset:\n  validation: 0.1"
NO_SPLIT_TAIL = (
    "(10 % of each class, held out before any proxy trains, never scored, selected or trained on), and run again: "
    "the data is prepared again and every run reports its validation error. svp does not choose by test error."
)
NO_SPLIT = f"{NO_SPLIT_LEAD}\n\n" + "\n".join("    " + line for line in NO_SPLIT_CONFIG.splitlines()) + f"\n\n{NO_SPLIT_TAIL}"


def _stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and count of the validation error, and the mean cost, per selection."""
    grouped = runs.groupby("selection", sort=False)
    stats = grouped.agg(
        validation_error=("validation_error", "mean"),
        validation_std=("validation_error", "std"),
        runs=("validation_error", "size"),
        seconds=("total_seconds", "mean"),
    )
    stats["proxy"] = grouped["proxy"].first().fillna("") if "proxy" in runs else ""
    stats["train_accuracy"] = grouped["train_accuracy"].mean() if "train_accuracy" in runs else math.nan
    stats["training_length"] = grouped["training_length"].first().fillna("epochs") if "training_length" in runs else "epochs"
    return stats


def resolution(error: float, other_error: float, examples: float) -> float:
    """Twice the standard error (percentage points) of the difference between two error
    rates (percent) each measured on ``examples`` examples; 0 when the count is unknown."""
    if not examples or math.isnan(examples):
        return 0.0
    variance = sum((e / 100) * (1 - e / 100) / examples for e in (error, other_error))
    return 200 * math.sqrt(variance)


def beats(mean: float, std: float, other_mean: float, other_std: float, examples: float = math.nan) -> bool | None:
    """Whether an error of ``mean +- std`` is lower than ``other_mean +- other_std`` beyond
    both spreads and beyond what ``examples`` validation examples resolve; None when a
    spread is unknown (one run) or a side is missing."""
    if any(math.isnan(float(v)) for v in (mean, other_mean, std, other_std)):
        return None
    return bool(other_mean - mean > max(std + other_std, resolution(mean, other_mean, examples)))


def _choose(stats: pd.DataFrame) -> str:
    """The lowest mean validation error; ties to random, then to the cheaper selection."""
    order = stats.assign(_not_random=[name != RANDOM for name in stats.index])
    order = order.sort_values(["validation_error", "_not_random", "seconds"], kind="stable")
    return str(order.index[0])


def _reasons(
    selection: str,
    stats: pd.DataFrame,
    fraction: float,
    subsets: pd.DataFrame | None,
    full: dict,
    proxy_errors: dict[str, float],
) -> list[str]:
    """What svp can say, without the test set, about why ``selection`` did as it did at ``fraction``.

    ``full``: the full-data runs' mean ``validation_error`` and ``train_accuracy``.
    """
    reasons = []
    if subsets is not None and selection not in (RANDOM, BUDGET):
        rows = subsets[(subsets["selection"] == selection) & np.isclose(subsets["fraction"].astype(float), fraction)]
        if len(rows):
            row = rows.iloc[0]
            ratio = float(row.get("min_ratio", math.nan))
            if ratio < SKEW_RATIO:
                reasons.append(f"{selection} skews the classes (keeps {row.get('min_ratio_class', '?')} at {ratio:.2f} of its share)")
            wrong, wrong_all = (float(row.get(key, math.nan)) for key in ("disagreement", "disagreement_all"))
            if wrong >= HARD_SHARE and wrong >= 2 * wrong_all:
                reasons.append(
                    f"the proxies get {wrong:.0f} % of {selection}'s examples wrong ({wrong_all:.0f} % of all): it keeps"
                    " what they cannot fit, mislabelled or ambiguous examples among them"
                )
    proxy = str(stats.loc[selection, "proxy"]) if selection in stats.index else ""
    proxy_error, target_error = proxy_errors.get(proxy, math.nan), full["validation_error"]
    if (
        proxy and not math.isnan(proxy_error) and not math.isnan(target_error)
        and proxy_error >= WEAK_PROXY_RATIO * target_error and proxy_error - target_error >= WEAK_PROXY_POINTS
    ):
        reasons.append(
            f"its proxy {proxy} errs on {proxy_error:.1f} % of the validation split against the full-data target's"
            f" {target_error:.1f} %: a weak proxy's uncertainty is not the target's"
        )
    if selection in stats.index and not math.isnan(full["train_accuracy"]):
        accuracy = float(stats.loc[selection, "train_accuracy"])
        if not math.isnan(accuracy) and full["train_accuracy"] - accuracy > UNDERFIT_POINTS:
            steps = stats.loc[selection, "training_length"] == "steps"
            reasons.append(
                f"{selection}'s runs end at {accuracy:.0f} % training accuracy against {full['train_accuracy']:.0f} % on the"
                " full data: the target does not fit the subset ("
                + ("keep more" if steps else "try the target's training.length: steps, or keep more") + ")"
            )
    return reasons


def _advice(fraction, choice, chosen, random, budget, beats_random, budget_wins, choice_beats_budget, examples) -> str:
    if budget_wins:
        return f"train on all the data for the same budget: the budget-matched run ({budget.validation_error:.2f} %) beats every subset"
    if choice == RANDOM:
        return "use random, or keep more: no selection beats random here"
    if random is None:
        return (
            f"use random, or keep more: {choice} is the best selection run, but without random subsets nothing says it"
            " beats them (set selection.random: true)"
        )
    gap = random.validation_error - chosen.validation_error
    if beats_random is None:
        return f"use random, or keep more: {choice} leads random by {gap:.2f} points, but one seed cannot tell them apart: add target seeds"
    if not beats_random:
        if gap <= chosen.validation_std + random.validation_std:
            return f"use random, or keep more: {choice} leads random by {gap:.2f} points, within the seeds' spread"
        floor = resolution(chosen.validation_error, random.validation_error, examples)
        return (
            f"use random, or keep more: {choice} leads random by {gap:.2f} points, less than {int(examples):,} validation"
            f" examples resolve ({floor:.2f}); raise dataset.validation to tell them apart"
        )
    if budget is not None and not choice_beats_budget:
        return (
            f"keep {fraction:g} chosen by {choice}, or train on all the data for the same budget: {choice} beats random,"
            f" but not the budget-matched run ({budget.validation_error:.2f} %), which needs no proxy"
        )
    return f"keep {fraction:g} chosen by {choice}"


def verdict(
    runs: pd.DataFrame,
    subsets: pd.DataFrame | None = None,
    proxy_errors: dict[str, float] | None = None,
    validation_examples: float = math.nan,
) -> pd.DataFrame:
    """One row per (target, fraction below 1), columns ``COLUMNS``.

    ``runs``: one row per target run with target, selection, fraction, seed,
    validation_error (percent), total_seconds (end to end, proxies included) and,
    optionally, proxy and train_accuracy (the final epoch's). Test error is not read.
    ``subsets``: the subsets table (``svp report subsets``), for class skew and the share of
    each subset the proxies get wrong. ``proxy_errors``: each proxy's mean validation error.
    ``validation_examples``: the size of the validation split, which bounds what it resolves.
    """
    missing = [column for column in ("target", "selection", "fraction", "validation_error", "total_seconds") if column not in runs]
    if missing:
        raise ValueError(f"the runs table lacks {', '.join(missing)}; the verdict needs a validation split (dataset.validation)")
    proxy_errors = proxy_errors or {}
    examples = float(validation_examples)
    rows = []
    for target, of_target in runs.groupby("target", sort=False):
        full_runs = of_target[of_target["selection"] == FULL]
        full = {
            key: float(full_runs[key].mean()) if len(full_runs) and key in full_runs else math.nan
            for key in ("validation_error", "total_seconds", "train_accuracy")
        }
        full_std = float(full_runs["validation_error"].std()) if len(full_runs) > 1 else math.nan
        for fraction, at_fraction in of_target[of_target["selection"] != FULL].groupby("fraction", sort=True):
            stats = _stats(at_fraction)
            candidates = stats.drop(index=[BUDGET], errors="ignore")
            if candidates.empty:
                continue
            choice = _choose(candidates)
            chosen = candidates.loc[choice]
            random = candidates.loc[RANDOM] if RANDOM in candidates.index else None
            budget = stats.loc[BUDGET] if BUDGET in stats.index else None
            beats_random = (
                None if random is None or choice == RANDOM
                else beats(chosen.validation_error, chosen.validation_std, random.validation_error, random.validation_std, examples)
            )
            budget_wins = choice_beats_budget = None
            if budget is not None:
                budget_wins = beats(budget.validation_error, budget.validation_std, chosen.validation_error, chosen.validation_std, examples)
                choice_beats_budget = beats(chosen.validation_error, chosen.validation_std, budget.validation_error, budget.validation_std, examples)
            advice = _advice(fraction, choice, chosen, random, budget, beats_random, budget_wins, choice_beats_budget, examples)
            proxies = candidates.drop(index=[RANDOM], errors="ignore")
            best_proxy = _choose(proxies) if len(proxies) else None
            why = _reasons(choice, stats, float(fraction), subsets, full, proxy_errors)
            if best_proxy and best_proxy != choice:
                why += _reasons(best_proxy, stats, float(fraction), subsets, full, proxy_errors)
            seconds = float(chosen.seconds)
            rows.append({
                "target": target,
                "fraction": float(fraction),
                "choice": choice,
                "validation_error": float(chosen.validation_error),
                "validation_std": float(chosen.validation_std),
                "runs": int(chosen.runs),
                "random_validation_error": math.nan if random is None else float(random.validation_error),
                "random_validation_std": math.nan if random is None else float(random.validation_std),
                "beats_random": beats_random,
                "budget_validation_error": math.nan if budget is None else float(budget.validation_error),
                "budget_validation_std": math.nan if budget is None else float(budget.validation_std),
                "beats_budget": choice_beats_budget,
                "full_validation_error": full["validation_error"],
                "full_validation_std": full_std,
                "validation_examples": examples,
                "seconds": seconds,
                "full_seconds": full["total_seconds"],
                "seconds_saved": full["total_seconds"] - seconds,
                "speedup": full["total_seconds"] / seconds if seconds > 0 else math.nan,
                "advice": advice,
                "why": "; ".join(dict.fromkeys(why)),
            })
    # Object columns keep True, False and None (unknown) apart; a bool column would not.
    return pd.DataFrame(rows, columns=COLUMNS).astype({"beats_random": object, "beats_budget": object})


def agreement_with_test(runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """For each verdict row, the selection with the lowest mean *test* error among the same
    candidates, and whether the verdict chose it (a tie with it counts): read after the
    verdict, never by it."""
    rows = []
    for _, row in table.iterrows():
        at = runs[(runs["target"] == row["target"]) & np.isclose(runs["fraction"].astype(float), row["fraction"])]
        errors = at[~at["selection"].isin([FULL, BUDGET])].groupby("selection", sort=False)["test_error"].mean()
        lowest = errors.min()
        # On a tie the choice is the test set's best too.
        best = [row["choice"]] if np.isclose(errors.get(row["choice"], np.nan), lowest) else list(errors[errors == lowest].index)
        rows.append({**{key: row[key] for key in ("target", "fraction", "choice")}, "test_best": best[0] if best else "",
                     "agrees": bool(best) and best[0] == row["choice"]})
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def _yes_no(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else ("yes" if value else "no")


def _error_cell(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} +- {std:.2f}"


def _saving(row) -> str:
    """'speed-up 1.67x, saves 4.0 s' or 'speed-up 0.80x, 8.6 s more' against the full data."""
    saved = row["seconds_saved"]
    return f"speed-up {row['speedup']:.2f}x, " + (f"saves {saved:.1f} s" if saved >= 0 else f"{-saved:.1f} s more")


def _time_text(row) -> str:
    """The choice's end-to-end time against the full data's."""
    text = f"{row['seconds']:.1f} s end to end"
    if math.isnan(row["full_seconds"]):
        return text + " (no full-data run to compare with)"
    return f"{text} against the full data's {row['full_seconds']:.1f} s: {_saving(row)}"


def _check_text(agreement: pd.DataFrame) -> str:
    agrees = int(agreement["agrees"].sum())
    return (
        f"Check, the one place the test error is read (after the verdict, not by it): the choice is also the test set's "
        f"best at {agrees} of {len(agreement)} fraction{'s' if len(agreement) != 1 else ''}. Where it rarely is, the "
        "validation split is too small to guide the choice: raise dataset.validation or add target seeds."
    )


def sections(table: pd.DataFrame, agreement: pd.DataFrame) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(heading, caption, header, rows) of the verdict table and of its check against the
    test set, for ``svp.report.render``."""
    header = ["target", "fraction", "choice", "validation error %", "random %", "beats random", "budget-matched %",
              "full data %", "end to end", "against full data", "advice", "why"]
    rows = [
        [
            r["target"], f"{r['fraction']:g}", r["choice"], _error_cell(r["validation_error"], r["validation_std"]),
            _error_cell(r["random_validation_error"], r["random_validation_std"]), _yes_no(r["beats_random"]),
            _error_cell(r["budget_validation_error"], r["budget_validation_std"]),
            _error_cell(r["full_validation_error"], r["full_validation_std"]),
            f"{r['seconds']:.1f} s",
            "" if math.isnan(r["full_seconds"]) else _saving(r),
            r["advice"], r["why"],
        ]
        for _, r in table.iterrows()
    ]
    examples = table["validation_examples"].dropna()
    split = f"{int(examples.iloc[0]):,} held-out training examples" if len(examples) else "the held-out share of the training set"
    caption = (
        f"For each fraction, the selection with the lowest mean validation error ({split}; the test set is not read), "
        "whether it beats random beyond both seeds' spreads and what the split resolves, the advice, its end-to-end time "
        "against training on the full data, and why, where svp can tell."
    )
    check_rows = [[r["target"], f"{r['fraction']:g}", r["choice"], r["test_best"], _yes_no(r["agrees"])]
                  for _, r in agreement.iterrows()]
    return [
        ("", caption, header, rows),
        ("", _check_text(agreement), ["target", "fraction", "choice", "test set's best", "same"], check_rows),
    ]


def format_text(table: pd.DataFrame, agreement: pd.DataFrame) -> str:
    """The verdict for the terminal: a paragraph per fraction, then the check against the test set."""
    examples = table["validation_examples"].dropna()
    split = f"{int(examples.iloc[0]):,} held-out examples" if len(examples) else "the held-out split"
    lines = [f"Verdict, chosen by validation error ({split}; the test set is not read):"]
    for _, r in table.iterrows():
        against = []
        if r["choice"] != RANDOM and not math.isnan(r["random_validation_error"]):
            against.append(f"random {_error_cell(r['random_validation_error'], r['random_validation_std'])}")
        if not math.isnan(r["budget_validation_error"]):
            against.append(f"budget-matched {_error_cell(r['budget_validation_error'], r['budget_validation_std'])}")
        if not math.isnan(r["full_validation_error"]):
            against.append(f"full data {_error_cell(r['full_validation_error'], r['full_validation_std'])}")
        lines.append(
            f"  {r['target']} at {r['fraction']:g}: {r['choice']}, {_error_cell(r['validation_error'], r['validation_std'])} %"
            f" validation error" + (f" ({', '.join(against)})" if against else "")
        )
        lines.append(f"    {_time_text(r)}")
        lines.append(f"    -> {r['advice']}")
        if r["why"]:
            lines.append(f"    why: {r['why']}")
    lines.append(_check_text(agreement))
    return "\n".join(lines)


def _proxy_validation_errors(proxy_metrics) -> dict[str, float]:
    """Each proxy's mean validation error over its runs (runs without one are left out)."""
    from svp import stage_files

    errors: dict[str, list[float]] = {}
    for path in proxy_metrics:
        metrics = stage_files.read_run_metrics(path, "proxy")
        value = metrics.get("validation_error")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            errors.setdefault(metrics["proxy"], []).append(float(value))
    return {proxy: float(np.mean(values)) for proxy, values in errors.items()}


def write_verdict(
    *,
    runs_file: str | Path,
    data_dir: str | Path,
    csv_out: str | Path,
    markdown_out: str | Path,
    html_out: str | Path,
    text_out: str | Path,
    subsets_file: str | Path | None = None,
    proxy_metrics=(),
) -> pd.DataFrame:
    """Read the runs table (and the subsets table, the proxies' metrics.json); write the
    verdict as CSV, Markdown, HTML and text. Without a validation split (the prepared data's
    manifest records none) every file says that the verdict needs ``dataset.validation``."""
    from svp import data, stage_files
    from svp.errors import StageInputError
    from svp.io import atomic_path
    from svp.report.render import html_page, html_sections, markdown_sections
    from svp.report.subset_tables import read_subset_table

    runs = stage_files.read_table(runs_file, "runs")
    examples = data.read_manifest(data_dir).get("n_validation")
    if examples is None:
        table, agreement = pd.DataFrame(columns=COLUMNS), None
        text = NO_SPLIT
        markdown = f"## Verdict\n\n{NO_SPLIT}\n"
        page = html_page("SVP verdict", [
            "<h2>Verdict</h2>", f"<p>{html.escape(NO_SPLIT_LEAD)}</p>", f"<pre>{html.escape(NO_SPLIT_CONFIG)}</pre>",
            f"<p>{html.escape(NO_SPLIT_TAIL)}</p>",
        ])
    else:
        lacking = runs["validation_error"].isna() if "validation_error" in runs else pd.Series(True, index=runs.index)
        if lacking.any():
            first = runs[lacking].iloc[0]
            raise StageInputError(
                f"{runs_file}: {int(lacking.sum()):,} target run(s) have no validation error (the first: {first['target']}, "
                f"{first['selection']}, fraction {first['fraction']:g}, seed {first['seed']}), though {data_dir} holds a "
                "validation split: they were trained on other data; rerun them (the train_target rule)"
            )
        subsets = read_subset_table(subsets_file) if subsets_file else None
        table = verdict(runs, subsets, _proxy_validation_errors(proxy_metrics), float(examples))
        agreement = agreement_with_test(runs, table)
        parts = sections(table, agreement)
        text = format_text(table, agreement)
        markdown = markdown_sections(parts, "Verdict")
        page = html_page("SVP verdict", html_sections(parts, "Verdict"))
    with atomic_path(csv_out) as tmp:
        shown = table if agreement is None else table.merge(agreement[["target", "fraction", "test_best", "agrees"]], on=["target", "fraction"])
        shown.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(markdown_out) as tmp:
        tmp.write_text(markdown)
    with atomic_path(html_out) as tmp:
        tmp.write_text(page)
    with atomic_path(text_out) as tmp:
        tmp.write_text(text + "\n")
    print(text)
    return table

