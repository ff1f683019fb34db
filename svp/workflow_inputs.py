"""What each Snakemake job is given, from the config and the job's wildcards.

The rules (``workflow/rules/*.smk``) hold files; this module turns the validated config
and a job's wildcards into the rest of what its ``svp`` command is called with: the
model and training settings (JSON), the run facts every ``metrics.json`` and score file
stores (the record format, below), and the subset or ranking a job reads. Nothing here
imports Snakemake, so it is tested on its own (tests/test_plan_inputs.py).

``JobSettings(config)``'s methods are what the rules name as ``params``: Snakemake calls
each with the job's wildcards. Functions of file paths take the path pattern of the rule
that writes the file (``rules.x.output.y``), so the rules stay the one place paths are set.

A job's ``params`` are Snakemake's rerun trigger: a change in any string returned here
reruns the jobs it belongs to, so each keeps its exact form (``json.dumps`` defaults, keys
in the order below).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable

from svp import plan
from svp.selection.methods import METHODS


# The run facts stored with a run's outputs (metrics.json, the score files' metadata),
# which the summary and report group runs by.
def proxy_run_facts(proxy: str, seed: int | str) -> dict:
    return {"role": "proxy", "proxy": proxy, "seed": int(seed)}


def target_run_facts(target: str, selection: str, fraction: float | str, seed: int | str) -> dict:
    """A target run's facts; ``proxy`` and ``metric`` are None unless a proxy selected its subset."""
    proxy, metric = (None, None) if selection == plan.BUDGET else plan.parse_selection(selection)
    return {
        "role": "target",
        "target": target,
        "selection": selection,
        "proxy": proxy,
        "metric": metric,
        "fraction": float(fraction),
        "seed": int(seed),
    }


def target_scoring_facts(target: str, seed: int | str) -> dict:
    """The facts of a full-data target's own scores (for the order correlation)."""
    return {"role": "target", "target": target, "seed": int(seed)}


class JobSettings:
    """The settings of each job, as its rule's ``params`` (called with the job's wildcards)."""

    def __init__(self, config: dict):
        self.config = config

    def proxy_model(self, wildcards) -> str:
        return self.config["proxies"][wildcards.proxy]["model"]

    def proxy_training(self, wildcards) -> str:
        return json.dumps(self.config["proxies"][wildcards.proxy]["training"])

    def proxy_info(self, wildcards) -> str:
        return json.dumps(proxy_run_facts(wildcards.proxy, wildcards.seed))

    def proxy_gpus(self, wildcards) -> int:
        """GPUs that train one run of the proxy together (its `gpus`, default 1)."""
        return self.config["proxies"][wildcards.proxy].get("gpus", 1)

    def target_gpus(self, wildcards) -> int:
        return self.config["targets"][wildcards.target].get("gpus", 1)

    def target_model(self, wildcards) -> str:
        return self.config["targets"][wildcards.target]["model"]

    def target_training(self, wildcards) -> str:
        return json.dumps(self.config["targets"][wildcards.target]["training"])

    def target_info(self, wildcards) -> str:
        return json.dumps(target_run_facts(wildcards.target, wildcards.selection, wildcards.fraction, wildcards.seed))

    def budget_training(self, wildcards) -> str:
        """The target's training with each piece's epochs scaled by the fraction (svp.plan.budget_training)."""
        training = self.config["targets"][wildcards.target]["training"]
        return json.dumps(plan.budget_training(training, float(wildcards.fraction)))

    def budget_info(self, wildcards) -> str:
        return json.dumps(target_run_facts(wildcards.target, plan.BUDGET, wildcards.fraction, wildcards.seed))

    def target_score_info(self, wildcards) -> str:
        return json.dumps(target_scoring_facts(wildcards.target, wildcards.seed))


def score_files(metric: str, runs: Iterable[dict], scores_pattern: str, method_pattern: str) -> list[str]:
    """The score file of each run (a dict with the patterns' wildcards) that holds ``metric``:
    the uncertainty scores (``scores_pattern``) or the file of a selection method
    (``method_pattern``, its ``method`` wildcard filled in with ``metric``)."""
    if metric in METHODS:
        return [method_pattern.format(**{**run, "method": metric}) for run in runs]
    return [scores_pattern.format(**run) for run in runs]


def subset_source(subset: str, ranks_pattern: str) -> dict:
    """The input a subset's order comes from: a proxy's combined ranking; none for a random seed."""
    if subset.startswith(f"{plan.RANDOM}-"):
        return {}
    proxy, metric = plan.parse_selection(subset)
    return {"ranks": ranks_pattern.format(proxy=proxy, metric=metric)}


def subset_source_args(subset: str, ranks: str | None, labels: str) -> str:
    """``svp select``'s source options: the ranking, or the random seed; and the data folder."""
    data = f"--data {shlex.quote(os.path.dirname(labels))}"
    if ranks is not None:
        # The default policy adds nothing, so default selections' commands (and caches) stay as they were.
        keep = plan.selection_keep(subset)
        policy = "" if keep == plan.HARDEST else f" --keep {keep}"
        return f"--ranks {shlex.quote(ranks)}{policy} {data}"
    seed = subset.split("-", 1)[1]
    return f"--random-seed {seed} {data}"


def target_subset(selection: str, fraction: str, seed: int | str, subset_pattern: str) -> dict:
    """The subset file a target run trains on; the full-data baseline needs none."""
    if selection == plan.FULL:
        return {}
    return {"subset": subset_pattern.format(subset=plan.subset_name(selection, seed), fraction=fraction)}


def capped_gpus_message(key: str, gpus: int, limit: int) -> str:
    """What a run whose `gpus` exceeds `--resources gpu=` is told: Snakemake lowers a job's
    resources to the limit, so it trains on fewer GPUs."""
    return (
        f"config key '{key}.gpus' is {gpus}, but --resources gpu={limit} gives a job at most {limit}: its runs train "
        f"on {limit} GPU{'s' if limit != 1 else ''}. Run with --resources gpu={gpus} (or more) to train them on {gpus}"
    )


def processes_args(gpus: int) -> str:
    """``svp train``'s ``--processes`` option for a job granted ``gpus`` GPUs: one process (rank)
    per GPU, started by torchrun; nothing for one GPU or none."""
    return f"--processes {gpus}" if gpus > 1 else ""


def subset_args(subset: str | None) -> str:
    """``svp train``'s ``--subset`` option; nothing when a run trains on all the data."""
    return f"--subset {shlex.quote(subset)}" if subset is not None else ""


def data_dir(manifest: str) -> str:
    """The prepared data folder, from its manifest's path."""
    return os.path.dirname(manifest)


def run_files(pattern: str, runs: Iterable[dict]) -> list[str]:
    """``pattern`` (a rule's output, with wildcards) filled in for each run."""
    return [pattern.format(**run) for run in runs]


def history_files(metrics_files: Iterable[str]) -> list[str]:
    """The history.csv beside each run's metrics.json."""
    return [os.path.join(os.path.dirname(path), "history.csv") for path in metrics_files]


def report_command(results: str, configfiles: Iterable[str]) -> str:
    """The command that writes an experiment's HTML report (--cores: the rules' threads need it)."""
    words = ["snakemake", "--report", f"{results}/report.html", "--cores", "1"]
    for path in configfiles:
        words += ["--configfile", str(path)]
    return shlex.join(words)
