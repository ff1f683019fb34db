"""What each active-learning rule (workflow/rules/active.smk) is given, from the config and its wildcards.

Like svp.workflow_inputs, for the rounds: ``ActiveJobSettings(config)``'s methods are the
rules' ``params`` (Snakemake calls each with the job's wildcards), and the functions of
path patterns take the pattern of the rule that writes the file, so the rules stay the
one place paths are set. The run facts stored in each metrics.json and pool file are
what the report groups by. Nothing here imports Snakemake.
"""

from __future__ import annotations

import json
import shlex

from svp.active import rounds
from svp.errors import ConfigError


def selector_run_facts(config: dict, labelling: str, run_seed: int | str, round_: int | str) -> dict:
    """A selector's facts; ``svp train`` adds ``seed``, the round seed it trained with."""
    selector, strategy = rounds.parse_labelling(labelling)
    return {
        "role": "selector",
        "labelling": labelling,
        "selector": selector,
        "selector_role": rounds.selector_role(config, selector),
        "strategy": strategy,
        "run_seed": int(run_seed),
        "round": int(round_),
    }


def first_selector_facts(config: dict, selector: str, run_seed: int | str) -> dict:
    """The facts of round 1's selector, shared by every strategy of ``selector``: no labelling."""
    return {
        "role": "selector",
        "labelling": None,
        "selector": selector,
        "selector_role": rounds.selector_role(config, selector),
        "strategy": None,
        "run_seed": int(run_seed),
        "round": 1,
    }


def active_target_facts(config: dict, target: str, labelling: str, seed: int | str, round_: int | str) -> dict:
    selector, strategy = rounds.parse_labelling(labelling)
    return {
        "role": "active_target",
        "target": target,
        "labelling": labelling,
        "selector": selector,
        "selector_role": None if selector is None else rounds.selector_role(config, selector),
        "strategy": strategy,
        "seed": int(seed),
        "round": int(round_),
        "budget": rounds.budget_of(config, round_),
    }


class ActiveJobSettings:
    """The settings of each active-learning job, as its rule's ``params``."""

    def __init__(self, config: dict):
        self.config = config

    def _selector(self, wildcards) -> dict:
        # Round 1's shared selector names its selector; a later round's, its labelling.
        selector = getattr(wildcards, "selector", None) or rounds.parse_labelling(wildcards.labelling)[0]
        return rounds.selector_spec(self.config, selector)

    def selector_model(self, wildcards) -> str:
        return self._selector(wildcards)["model"]

    def selector_gpus(self, wildcards) -> tuple[int, str]:
        """GPUs that train the selector together (its proxies or targets entry's `gpus`), and that entry's key."""
        selector = getattr(wildcards, "selector", None) or rounds.parse_labelling(wildcards.labelling)[0]
        role = "proxies" if rounds.selector_role(self.config, selector) == "proxy" else "targets"
        return self._selector(wildcards).get("gpus", 1), f"{role}.{selector}"

    def selector_training(self, wildcards) -> str:
        return json.dumps(self._selector(wildcards)["training"])

    def selector_info(self, wildcards) -> str:
        return json.dumps(selector_run_facts(self.config, wildcards.labelling, wildcards.run_seed, wildcards.round))

    def first_selector_info(self, wildcards) -> str:
        return json.dumps(first_selector_facts(self.config, wildcards.selector, wildcards.run_seed))

    def target_info(self, wildcards) -> str:
        return json.dumps(active_target_facts(self.config, wildcards.target, wildcards.labelling, wildcards.seed, wildcards.round))

    def initial_fraction(self, wildcards) -> str:
        return repr(rounds.section(self.config)["initial_fraction"])

    def start_seed(self, wildcards) -> int:
        return rounds.round_seed(wildcards.seed, 0)

    def budget(self, wildcards) -> str:
        return repr(rounds.budget_of(self.config, wildcards.round))

    def start_info(self, wildcards) -> str:
        return json.dumps({"role": "pool", "labelling": None, "seed": int(wildcards.seed)})

    def pool_info(self, wildcards) -> str:
        selector, strategy = rounds.parse_labelling(wildcards.labelling)
        return json.dumps(
            {"role": "pool", "labelling": wildcards.labelling, "selector": selector, "seed": int(wildcards.seed)}
        )


def previous_pool(labelling: str, seed: int | str, round_: int | str, start_pattern: str, pool_pattern: str) -> str:
    """The pool round ``round_`` adds to: the shared random start before round 1."""
    before = int(round_) - 1
    if before < 0:
        raise ConfigError(f"active learning: round {round_} has no round before it")
    if before == 0:
        return start_pattern.format(seed=seed)
    return pool_pattern.format(labelling=labelling, seed=seed, round=before)


def checked_round_seed(run_seed: int | str, round_: int | str, seed: int | str) -> None:
    """A selector's folder names the seed it trains with: refuse one that is not its round's."""
    expected = rounds.round_seed(run_seed, round_)
    if int(seed) != expected:
        raise ConfigError(
            f"active learning: the selector of round {round_} of seed {run_seed} trains with seed {expected}, not {seed}"
        )


def batch_inputs(
    labelling: str, seed: int | str, round_: int | str, previous: str, scores_pattern: str, model_pattern: str,
    first_scores_pattern: str, first_model_pattern: str,
) -> dict:
    """A round's inputs: the pool before it and, for a selector, its scores (uncertainty)
    or its model (k-center embeds the training set with it; no score file is made).
    Round 1's selector is the one its selector's strategies share (the ``first_`` patterns)."""
    inputs = {"pool": previous}
    if labelling != rounds.RANDOM:
        selector_files = {"labelling": labelling, "run_seed": seed, "round": round_, "seed": rounds.round_seed(seed, round_)}
        if int(round_) == 1:
            selector_files["selector"] = rounds.parse_labelling(labelling)[0]
            scores_pattern, model_pattern = first_scores_pattern, first_model_pattern
        if rounds.reads_scores(labelling):
            inputs["scores"] = scores_pattern.format(**selector_files)
        else:
            inputs["checkpoint"] = model_pattern.format(**selector_files)
    return inputs


def embeds(labelling: str) -> bool:
    """Whether a labelling's batch job runs the selector's model (a torch job: threads, GPU)."""
    return labelling != rounds.RANDOM and not rounds.reads_scores(labelling)


def batch_source_args(
    labelling: str,
    seed: int | str,
    round_: int | str,
    scores: str | None,
    checkpoint: str | None = None,
    *,
    batch_size: int = 1024,
    threads: int = 1,
) -> str:
    """``svp active next``'s source options: the selector's scores and strategy, its model
    and strategy (with the embedding's batch size and threads), or a random seed."""
    if scores is not None:
        return f"--scores {shlex.quote(scores)} --strategy {rounds.parse_labelling(labelling)[1]}"
    if checkpoint is not None:
        return (
            f"--checkpoint {shlex.quote(checkpoint)} --strategy {rounds.parse_labelling(labelling)[1]}"
            f" --batch-size {int(batch_size)} --threads {int(threads)}"
        )
    return f"--random-seed {rounds.round_seed(seed, round_)}"
