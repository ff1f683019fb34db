"""The plan of an active-learning experiment: rounds, pool sizes, seeds and run names.

Everything is known from the config, so the rounds form a static DAG: round 0 is a
random labelled pool of ``initial_fraction`` of the training set; round r (1..R, one per
budget) trains the selector on pool r-1 and labels the examples that bring the pool to
``budgets[r-1]`` of the training set. Pool sizes are round(fraction x N), halves
rounded up, like a core-set subset's (svp.selection.orders.subset_size).

A labelling names how a run chooses its batches: ``<selector>-<strategy>`` (a proxy or
a target trained on the pool, then its least sure examples by an uncertainty strategy,
or by ``kcenter`` the examples farthest from the labelled ones in its embedding) or
``random``. Every labelling of a seed starts from the same random pool.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from svp.errors import ConfigError
from svp.models import specs
from svp.selection.methods import REGISTRY, selection_method
from svp.trainers import EMBEDDINGS, PROBABILITIES

# The label-free selection methods (svp.selection.methods): the examples to be labelled
# have no label yet, so EL2N, forgetting and GraNd are no active-learning strategies.
# Uncertainty strategies read the selector's score file (`svp score`); the geometric one,
# the core-set active learning of Sener and Savarese (2018), runs k-center greedy on the
# selector's penultimate-layer embeddings with the labelled pool as the first centres
# (svp.active.embedding_batch): it reads the selector's model, not its scores.
UNCERTAINTY_STRATEGIES: tuple[str, ...] = tuple(
    name for name, method in REGISTRY.items() if method.label_free and method.needs == PROBABILITIES
)
EMBEDDING_STRATEGIES: tuple[str, ...] = tuple(
    name for name, method in REGISTRY.items() if method.label_free and method.needs == EMBEDDINGS
)
STRATEGIES: tuple[str, ...] = UNCERTAINTY_STRATEGIES + EMBEDDING_STRATEGIES
RANDOM = "random"
# Round seeds are below 2**31: fastText takes its seed as a 32-bit C int.
SEED_LIMIT = 2**31


def section(config: dict) -> dict | None:
    """The config's ``active_learning`` section, or None when the config asks for none."""
    return config.get("active_learning")


def round_seed(seed: int | str, round_: int | str) -> int:
    """The seed of round ``round_`` of the run with seed ``seed``: a hash of both.

    The selector of that round trains with it, and a random draw (the start pool is round
    0's) draws with it, so runs of one seed differ from round to round and rerunning a
    config gives the same pools. A hash rather than ``seed * k + round``: no two (seed,
    round) pairs of a config share a seed however many rounds there are.
    """
    digest = hashlib.sha256(f"svp-active-learning:{int(seed)}:{int(round_)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % SEED_LIMIT


def pool_size(fraction: float, n_examples: int) -> int:
    """round(fraction x N), halves rounded up."""
    return math.floor(fraction * n_examples + 0.5)


def pool_sizes(n_examples: int, initial_fraction: float, budgets: Sequence[float]) -> list[int]:
    """The labelled pool's size after each round (round 0, the start, first).

    Raises ConfigError naming the config key when a round would add no example, when the
    start is empty, or when the last pool leaves nothing unlabelled.
    """
    check_budget_order(initial_fraction, budgets)
    sizes = [pool_size(initial_fraction, n_examples)]
    if sizes[0] < 1:
        least = (0.5 / n_examples) * 1.0001
        raise ConfigError(
            f"config key 'active_learning.initial_fraction': {initial_fraction!r} of {n_examples:,} training examples "
            f"labels no example; give at least {least:.2g}"
        )
    for index, budget in enumerate(budgets):
        size = pool_size(budget, n_examples)
        if size <= sizes[-1]:
            raise ConfigError(
                f"config key 'active_learning.budgets[{index}]': {budget!r} of {n_examples:,} training examples is "
                f"{size:,} labelled examples, no more than the {sizes[-1]:,} of the round before, so the round would "
                "label nothing; space the budgets further apart"
            )
        sizes.append(size)
    if sizes[-1] >= n_examples:
        raise ConfigError(
            f"config key 'active_learning.budgets[{len(budgets) - 1}]': {budgets[-1]!r} labels all {n_examples:,} "
            "training examples, so its round has nothing to choose from; keep every budget below that"
        )
    return sizes


def batch_sizes(n_examples: int, initial_fraction: float, budgets: Sequence[float]) -> list[int]:
    """The examples each round 1..R labels: each pool's size less the one before."""
    sizes = pool_sizes(n_examples, initial_fraction, budgets)
    return [after - before for before, after in zip(sizes, sizes[1:])]


def check_budget_order(initial_fraction: float, budgets: Sequence[float]) -> None:
    """Budgets must grow from the start's fraction, each below 1 (the data set's size aside)."""
    if not 0.0 < initial_fraction < 1.0:  # NaN fails too
        raise ConfigError(f"config key 'active_learning.initial_fraction': {initial_fraction!r} is not in (0, 1)")
    previous, key = initial_fraction, "initial_fraction"
    for index, budget in enumerate(budgets):
        if not 0.0 < budget < 1.0:
            raise ConfigError(f"config key 'active_learning.budgets[{index}]': {budget!r} is not in (0, 1)")
        if budget <= previous:
            raise ConfigError(
                f"config key 'active_learning.budgets[{index}]': {budget!r} is not larger than {key} ({previous!r}); "
                "each round's budget must be larger than the one before it, the first larger than initial_fraction"
            )
        previous, key = budget, f"budgets[{index}]"


def labelling_name(selector: str, strategy: str) -> str:
    return f"{selector}-{strategy}"


def parse_labelling(labelling: str) -> tuple[str | None, str]:
    """(selector, strategy) of a labelling's name; (None, 'random') for random labels."""
    if labelling == RANDOM:
        return None, RANDOM
    selector, _, strategy = labelling.partition("-")  # run names hold no '-'
    if strategy not in STRATEGIES:
        raise ConfigError(f"not an active-learning labelling: {labelling!r} (expected <selector>-<strategy> or random)")
    return selector, strategy


def selector_role(config: dict, selector: str) -> str:
    """'proxy' or 'target': which config section the selector's model and training come from."""
    in_proxies, in_targets = selector in config["proxies"], selector in config["targets"]
    if in_proxies and in_targets:
        raise ConfigError(
            f"config key 'active_learning.selectors': {selector!r} names both a proxy and a target; rename one of them"
        )
    if not (in_proxies or in_targets):
        raise ConfigError(
            f"config key 'active_learning.selectors': {selector!r} is neither a proxy ({', '.join(config['proxies'])}) "
            f"nor a target ({', '.join(config['targets'])}); a selector names one of them"
        )
    return "proxy" if in_proxies else "target"


def selector_spec(config: dict, selector: str) -> dict:
    """The selector's run mapping (model, training) from ``proxies`` or ``targets``."""
    role = selector_role(config, selector)
    return config["proxies" if role == "proxy" else "targets"][selector]


def reads_scores(labelling: str) -> bool:
    """Whether a labelling's batches are chosen from its selector's score file (uncertainty)."""
    return parse_labelling(labelling)[1] in UNCERTAINTY_STRATEGIES


def labellings(config: dict) -> list[str]:
    """Every labelling the config asks for, selectors first; none without ``active_learning``."""
    active = section(config)
    if active is None:
        return []
    names = [labelling_name(selector, strategy) for selector in active["selectors"] for strategy in active["strategies"]]
    return names + ([RANDOM] if active["random"] else [])


def rounds(config: dict) -> list[int]:
    """The rounds that label a batch: 1..R, one per budget."""
    active = section(config)
    return [] if active is None else list(range(1, len(active["budgets"]) + 1))


def budget_of(config: dict, round_: int | str) -> float:
    """The share of the training set labelled after round ``round_`` (0: the start)."""
    active = section(config)
    round_ = int(round_)
    if round_ == 0:
        return active["initial_fraction"]
    if not 1 <= round_ <= len(active["budgets"]):
        raise ConfigError(f"active learning has rounds 0..{len(active['budgets'])}, not {round_}")
    return active["budgets"][round_ - 1]


def seeds(config: dict) -> list[int]:
    active = section(config)
    return [] if active is None else list(active["seeds"])


def start_runs(config: dict) -> list[dict]:
    return [{"seed": seed} for seed in seeds(config)]


def pool_runs(config: dict) -> list[dict]:
    """Every (labelling, seed, round) pool a round writes (round 0 is the shared start)."""
    return [
        {"labelling": labelling, "seed": seed, "round": round_}
        for labelling in labellings(config)
        for seed in seeds(config)
        for round_ in rounds(config)
    ]


def selector_runs(config: dict) -> list[dict]:
    """Every selector training of round 2 on (one per labelling with a selector, seed and
    round), with its round seed. Round 1's are :func:`first_selector_runs`."""
    return [
        {"labelling": run["labelling"], "run_seed": run["seed"], "round": run["round"],
         "seed": round_seed(run["seed"], run["round"])}
        for run in pool_runs(config)
        if run["labelling"] != RANDOM and run["round"] > 1
    ]  # fmt: skip


def scored_selector_runs(config: dict) -> list[dict]:
    """The selector runs of round 2 on scored with ``svp score``: those of uncertainty
    labellings (a k-center labelling embeds the training set in its batch job instead)."""
    return [run for run in selector_runs(config) if reads_scores(run["labelling"])]


def first_selector_runs(config: dict) -> list[dict]:
    """Round 1's selectors, one per selector and seed, shared by its strategies: each
    trains on the shared random start with the round's seed, so every strategy would
    train the same model."""
    selectors = dict.fromkeys(parse_labelling(name)[0] for name in labellings(config) if name != RANDOM)
    return [
        {"selector": selector, "run_seed": seed, "seed": round_seed(seed, 1)}
        for selector in selectors
        for seed in seeds(config)
        if rounds(config)
    ]


def scored_first_selector_runs(config: dict) -> list[dict]:
    """Round 1's shared selectors that some uncertainty strategy reads the scores of."""
    scored = {parse_labelling(name)[0] for name in labellings(config) if name != RANDOM and reads_scores(name)}
    return [run for run in first_selector_runs(config) if run["selector"] in scored]


def target_runs(config: dict) -> list[dict]:
    """Every target trained from scratch on a round's pool: each target, labelling, seed and budget."""
    return [{**run, "target": target} for target in config["targets"] for run in pool_runs(config)]


def check_config(config: dict, n_examples: int | None) -> None:
    """What the schema cannot check: selectors name a run (whose model gives embeddings
    where a strategy needs them), budgets grow, each round labels at least one example
    (where the training set's size ``n_examples`` is known)."""
    active = section(config)
    if active is None:
        return
    embedding = [strategy for strategy in active["strategies"] if strategy in EMBEDDING_STRATEGIES]
    for selector in active["selectors"]:
        model = selector_spec(config, selector)["model"]
        trainer = specs.model_spec(model).trainer if specs.is_model(model) else None  # an unknown model is refused elsewhere
        for strategy in embedding:
            if trainer is not None and not selection_method(strategy).supported_by(trainer):
                raise ConfigError(
                    f"config key 'active_learning.strategies': {strategy!r} needs the embeddings of selector {selector!r} "
                    f"(model {model!r}, trained by {trainer.title}), which gives none; drop {strategy!r} or that selector"
                )
    check_budget_order(active["initial_fraction"], active["budgets"])
    if n_examples is not None:
        pool_sizes(n_examples, active["initial_fraction"], active["budgets"])
