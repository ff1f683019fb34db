"""Which runs an experiment asks for, and how they are named in file paths.

Selections are named ``<proxy>-<metric>`` (top of that proxy's combined ranking),
``<proxy>-<metric>-<keep>`` for another keep policy (``easiest``, ``middle<p>``,
``coverage<b>bins<k>``),
``random`` (a random subset, drawn anew for each target seed), ``full`` (the whole
training set, the baseline every speed-up is measured against) and, with
``report.budget_matched``, ``budget`` (the whole training set for as many SGD steps as
a subset run of the same fraction takes).
"""

from __future__ import annotations

import math

from svp.schema import format_fraction
from svp.models import specs
from svp.selection.methods import METHODS, selection_method
from svp.selection.coverage import NAME_REGEX as COVERAGE_NAME_REGEX
from svp.selection.orders import HARDEST, keep_name

RANDOM = "random"
FULL = "full"
BUDGET = "budget"
FULL_FRACTION = format_fraction(1.0)
# What a keep policy adds to a proxy selection's name (none for hardest): for wildcard patterns.
KEEP_SUFFIX_PATTERN = rf"(-easiest|-middle0\.\d+|-{COVERAGE_NAME_REGEX})?"


def keep_names(config: dict) -> list[str]:
    """The names of the keep policies ``selection.keep`` gives (one, or a list)."""
    keep = config["selection"].get("keep", HARDEST)
    return [keep_name(policy) for policy in (keep if isinstance(keep, list) else [keep])]


def selection_name(proxy: str, metric: str, keep: str = HARDEST) -> str:
    """``<proxy>-<metric>``, with ``-<keep>`` unless it keeps the hardest first (SVP's default)."""
    return f"{proxy}-{metric}" if keep == HARDEST else f"{proxy}-{metric}-{keep}"


def proxy_selections(config: dict) -> list[str]:
    return [
        selection_name(proxy, metric, keep)
        for proxy in config["proxies"]
        for metric in config["selection"]["metrics"]
        for keep in keep_names(config)
    ]


def selections(config: dict) -> list[str]:
    return proxy_selections(config) + ([RANDOM] if config["selection"]["random"] else [])


def parse_selection(selection: str) -> tuple[str | None, str | None]:
    """(proxy, metric) of a proxy selection; (None, None) for random and full."""
    if selection in (RANDOM, FULL) or selection.startswith(f"{RANDOM}-"):
        return None, None
    proxy, metric, *_ = selection.split("-", 2)  # run names hold no '-'
    return proxy, metric


def selection_keep(selection: str) -> str:
    """The keep policy of a proxy selection's name: the part after ``<proxy>-<metric>-``, else hardest."""
    parts = selection.split("-", 2)
    return parts[2] if len(parts) == 3 else HARDEST


def subset_fractions(config: dict) -> list[str]:
    """Fractions below 1, as file-name strings; 1.0 is the full-data baseline."""
    return [format_fraction(f) for f in sorted(config["selection"]["fractions"]) if f < 1.0]


def subset_name(selection: str, seed: int | str) -> str:
    """The subset a target run trains on: random subsets differ per target seed."""
    return f"{RANDOM}-{seed}" if selection == RANDOM else selection


def target_runs(config: dict) -> list[dict]:
    """Every (target, selection, fraction, seed) the experiment trains, full-data runs included."""
    runs = []
    for target, spec in config["targets"].items():
        for seed in spec["seeds"]:
            runs.append({"target": target, "selection": FULL, "fraction": FULL_FRACTION, "seed": seed})
            for selection in selections(config):
                for fraction in subset_fractions(config):
                    runs.append({"target": target, "selection": selection, "fraction": fraction, "seed": seed})
    return runs


def proxy_runs(config: dict) -> list[dict]:
    return [{"proxy": proxy, "seed": seed} for proxy, spec in config["proxies"].items() for seed in spec["seeds"]]


def selecting_proxy_runs(config: dict) -> list[dict]:
    """The proxy runs some selection ranks by (all of them: a config asks for at least one metric)."""
    used = {parse_selection(selection)[0] for selection in proxy_selections(config)}
    return [run for run in proxy_runs(config) if run["proxy"] in used]


def rankings(config: dict) -> list[dict]:
    """Every (proxy, metric) combined ranking a proxy selection is the top of."""
    return [dict(zip(("proxy", "metric"), parse_selection(selection))) for selection in proxy_selections(config)]


def target_subsets(config: dict) -> list[dict]:
    """Every (subset, fraction) a target trains on, each once, sorted: random subsets per target seed."""
    subsets = {
        (subset_name(run["selection"], run["seed"]), run["fraction"])
        for run in target_runs(config)
        if run["selection"] != FULL
    }
    return [{"subset": subset, "fraction": fraction} for subset, fraction in sorted(subsets)]


def full_target_runs(config: dict) -> list[dict]:
    """The full-data target runs (the baseline, and the targets' own example orders)."""
    return [run for run in target_runs(config) if run["selection"] == FULL]


def selection_methods(config: dict) -> list[str]:
    """The metrics beyond uncertainty the config asks for (each scored into files of its own)."""
    return [metric for metric in config["selection"]["metrics"] if metric in METHODS]


def method_runs(config: dict) -> list[dict]:
    """Every (proxy, seed, method) a selection method scores."""
    return [{**run, "method": method} for method in selection_methods(config) for run in selecting_proxy_runs(config)]


def target_method_runs(config: dict, method: str) -> list[dict]:
    """The full-data target runs whose own order by ``method`` the correlation compares:
    those whose trainer supports it (a fastText target has no forgetting counts)."""
    return [
        {**run, "method": method}
        for run in full_target_runs(config)
        if selection_method(method).supported_by(specs.model_spec(config["targets"][run["target"]]["model"]).trainer)
    ]


def budget_runs(config: dict) -> list[dict]:
    """The budget-matched baseline runs, one per (target, fraction below 1, seed), if asked for."""
    if not config["report"]["budget_matched"]:
        return []
    return [
        {"target": target, "selection": BUDGET, "fraction": fraction, "seed": seed}
        for target, spec in config["targets"].items()
        # A target trained for the full data's steps on every subset has its budget-matched
        # baseline already: the full-data run.
        if spec["training"].get("length", "epochs") == "epochs"
        for seed in spec["seeds"]
        for fraction in subset_fractions(config)
    ]


def budget_training(training: dict, fraction: float) -> dict:
    """``training`` with every learning-rate piece's epochs scaled by ``fraction``.

    A subset of fraction f takes about f times the SGD steps of a full-data epoch, so
    full-data training with each piece scaled by f takes about as many steps as the
    subset run, with the schedule's shape kept. Each piece keeps round(f x epochs)
    epochs, halves rounded up, and at least 1, so a 1-epoch warm-up survives; the step
    count therefore matches up to that rounding (and the last, partial batch of each epoch).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    schedule = [
        {**piece, "epochs": max(1, math.floor(piece["epochs"] * fraction + 0.5))} for piece in training["lr_schedule"]
    ]
    return {**training, "lr_schedule": schedule}
