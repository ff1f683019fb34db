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
  deviations added (their mean +- std intervals do not touch); with one seed on either
  side the spread is unknown and nothing is claimed;
- the advice is "keep <fraction> chosen by <selection>" only when a proxy selection beats
  random that way and the budget-matched full data (when measured) does not beat it;
  otherwise "use random, or keep more" (or "train on all the data for the same budget"
  when the budget-matched baseline wins);
- the reasons come from what svp knows about the choice and the best proxy selection:
  class skew (the subsets table's smallest share ratio), the proxy's test error, and the
  subset runs' final training accuracy against the full-data runs'.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from svp.plan import BUDGET, FULL, RANDOM

# A subset that keeps a class at less than half its share of the data is skewed (the same
# threshold as the subsets table's warnings).
SKEW_RATIO = 0.5
# Subset runs that end this many points of training accuracy below the full-data runs did
# not fit what they were given (svp's CPU CIFAR-10 targets ended 24-29 % on SVP's 30 %).
UNDERFIT_POINTS = 20.0

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
    "beats_budget",
    "seconds",
    "full_seconds",
    "seconds_saved",
    "speedup",
    "advice",
    "why",
]


def _stats(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and count of the validation error, and the mean cost, per selection."""
    grouped = runs.groupby("selection", sort=False)
    stats = grouped.agg(
        validation_error=("validation_error", "mean"),
        validation_std=("validation_error", "std"),
        runs=("validation_error", "size"),
        seconds=("total_seconds", "mean"),
    )
    if "train_accuracy" in runs:
        stats["train_accuracy"] = grouped["train_accuracy"].mean()
    return stats


def beats(mean: float, std: float, other_mean: float, other_std: float) -> bool | None:
    """Whether an error of ``mean +- std`` is lower than ``other_mean +- other_std`` beyond
    both spreads; None when a spread is unknown (one run) or a side is missing."""
    if any(isinstance(v, float) and math.isnan(v) for v in (mean, other_mean)):
        return None
    if any(isinstance(v, float) and math.isnan(v) for v in (std, other_std)):
        return None
    return bool(other_mean - mean > std + other_std)


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
    full_train_accuracy: float,
) -> list[str]:
    """What svp can say about why ``selection`` did as it did at ``fraction``."""
    reasons = []
    if subsets is not None and selection not in (RANDOM, BUDGET):
        rows = subsets[(subsets["selection"] == selection) & np.isclose(subsets["fraction"].astype(float), fraction)]
        if len(rows):
            row = rows.iloc[0]
            ratio = float(row.get("min_ratio", math.nan))
            if ratio < SKEW_RATIO:
                reasons.append(f"{selection} skews the classes (keeps {row.get('min_ratio_class', '?')} at {ratio:.2f} of its share)")
            proxy_error = float(row.get("proxy_error", math.nan))
            if not math.isnan(proxy_error):
                reasons.append(f"its proxy's test error is {proxy_error:.1f} %")
    if "train_accuracy" in stats and selection in stats.index and not math.isnan(full_train_accuracy):
        accuracy = float(stats.loc[selection, "train_accuracy"])
        if not math.isnan(accuracy) and full_train_accuracy - accuracy > UNDERFIT_POINTS:
            reasons.append(
                f"{selection}'s runs end at {accuracy:.0f} % training accuracy against {full_train_accuracy:.0f} % on the"
                " full data: the target does not fit the subset (try steps instead of epochs, or keep more)"
            )
    return reasons


def verdict(runs: pd.DataFrame, subsets: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (target, fraction below 1), columns ``COLUMNS``.

    ``runs``: one row per target run with target, selection, fraction, seed,
    validation_error (percent), total_seconds (end to end, proxies included) and,
    optionally, train_accuracy (the final epoch's). Test error is not read.
    ``subsets``: the subsets table (``svp report subsets``), for class skew and proxy error.
    """
    missing = [column for column in ("target", "selection", "fraction", "validation_error", "total_seconds") if column not in runs]
    if missing:
        raise ValueError(f"the runs table lacks {', '.join(missing)}; the verdict needs a validation split (dataset.validation)")
    rows = []
    for target, of_target in runs.groupby("target", sort=False):
        full = of_target[of_target["selection"] == FULL]
        full_seconds = float(full["total_seconds"].mean()) if len(full) else math.nan
        full_accuracy = float(full["train_accuracy"].mean()) if len(full) and "train_accuracy" in full else math.nan
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
                else beats(chosen.validation_error, chosen.validation_std, random.validation_error, random.validation_std)
            )
            budget_wins = (
                None if budget is None
                else beats(budget.validation_error, budget.validation_std, chosen.validation_error, chosen.validation_std)
            )
            proxies = candidates.drop(index=[RANDOM], errors="ignore")
            best_proxy = _choose(proxies) if len(proxies) else None
            if budget_wins:
                advice = "train on all the data for the same budget (the budget-matched run beats every subset)"
            elif choice != RANDOM and beats_random:
                advice = f"keep {fraction:g} chosen by {choice}"
            elif choice != RANDOM and beats_random is None and random is not None:
                advice = f"{choice} leads, but one seed cannot tell it from random: add target seeds"
            else:
                advice = "use random, or keep more: no selection beats random here"
            why = _reasons(choice, stats, float(fraction), subsets, full_accuracy)
            if best_proxy and best_proxy != choice:
                why += _reasons(best_proxy, stats, float(fraction), subsets, full_accuracy)
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
                "beats_budget": None if budget_wins is None else not budget_wins,
                "seconds": float(chosen.seconds),
                "full_seconds": full_seconds,
                "seconds_saved": full_seconds - float(chosen.seconds),
                "speedup": full_seconds / float(chosen.seconds) if chosen.seconds > 0 else math.nan,
                "advice": advice,
                "why": "; ".join(why),
            })
    # Object columns keep True, False and None (unknown) apart; a bool column would not.
    return pd.DataFrame(rows, columns=COLUMNS).astype({"beats_random": object, "beats_budget": object})


def agreement_with_test(runs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """For each verdict row, the selection with the lowest mean *test* error among the same
    candidates, and whether the verdict chose it: read after the verdict, never by it."""
    rows = []
    for _, row in table.iterrows():
        at = runs[(runs["target"] == row["target"]) & np.isclose(runs["fraction"].astype(float), row["fraction"])]
        at = at[~at["selection"].isin([FULL, BUDGET])]
        test_best = at.groupby("selection", sort=False)["test_error"].mean().sort_values(kind="stable").index[0]
        rows.append({"target": row["target"], "fraction": row["fraction"], "choice": row["choice"],
                     "test_best": test_best, "agrees": test_best == row["choice"]})
    return pd.DataFrame(rows, columns=["target", "fraction", "choice", "test_best", "agrees"])
