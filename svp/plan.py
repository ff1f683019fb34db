"""Which runs an experiment asks for, and how they are named in file paths.

Selections are named ``<proxy>-<metric>`` (top of that proxy's combined ranking),
``random`` (a random subset, drawn anew for each target seed) and ``full`` (the whole
training set, the baseline every speed-up is measured against).
"""

from __future__ import annotations

from svp.config import format_fraction

RANDOM = "random"
FULL = "full"


def proxy_selections(config: dict) -> list[str]:
    return [f"{proxy}-{metric}" for proxy in config["proxies"] for metric in config["selection"]["metrics"]]


def selections(config: dict) -> list[str]:
    return proxy_selections(config) + ([RANDOM] if config["selection"]["random"] else [])


def parse_selection(selection: str) -> tuple[str | None, str | None]:
    """(proxy, metric) of a proxy selection; (None, None) for random and full."""
    if selection in (RANDOM, FULL) or selection.startswith(f"{RANDOM}-"):
        return None, None
    proxy, metric = selection.rsplit("-", 1)
    return proxy, metric


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
            runs.append({"target": target, "selection": FULL, "fraction": format_fraction(1.0), "seed": seed})
            for selection in selections(config):
                for fraction in subset_fractions(config):
                    runs.append({"target": target, "selection": selection, "fraction": fraction, "seed": seed})
    return runs


def proxy_runs(config: dict) -> list[dict]:
    return [{"proxy": proxy, "seed": seed} for proxy, spec in config["proxies"].items() for seed in spec["seeds"]]
