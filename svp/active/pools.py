"""Labelled-pool files, and the two stages that write them: the random start and the next batch.

A pool file is a subset file (``svp train --subset`` reads it as it is): one row per
labelled example with its ``index`` and ``label``, plus ``round``, the round that
labelled it. Rows keep the order of labelling: the previous pool's rows first, then the
new batch in the order it was chosen (most uncertain first; for k-center, greedy order).
So pools are nested across rounds by construction, and each stage checks its input pool
against the training labels before choosing.

The batch comes from a score file (uncertainty), a random draw, or a ``chooser``: a
function the stage calls once the pool and budget are checked, for strategies that need
a model (k-center greedy, svp.active.embedding_batch, which imports torch; this module
does not).

The parquet metadata holds the round's facts: round, budget, pool and batch sizes,
strategy, selector, seeds, and ``batch_seconds``, the time the batch choice itself took
(the report adds the selector's training and scoring time to it). A chooser that runs
the selector over the training set reports that forward pass as ``scoring_seconds``,
which ``batch_seconds`` then leaves out, as a score file's scoring is left out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from svp import data, stage_files
from svp.active import rounds
from svp.errors import StageInputError
from svp.parquet import read_parquet_metadata, write_parquet

REMAKE_POOL = stage_files.REMAKE["pool"]

# A chooser: (the labelled pool's indices in labelling order, how many to add, the
# training set's size) -> (the batch's indices in the order chosen, facts for the pool's
# metadata; ``scoring_seconds`` among them is the time spent running the selector).
Chooser = Callable[[np.ndarray, int, int], "tuple[np.ndarray, dict]"]


def _pool_frame(index: np.ndarray, labels: np.ndarray, round_labelled: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"index": index.astype(np.int64), "label": labels[index].astype(np.int64), "round": round_labelled.astype(np.int64)}
    )


def _checked_size(budget: float, n_examples: int, key: str) -> int:
    size = rounds.pool_size(budget, n_examples)
    if size < 1:
        raise StageInputError(f"{key} {budget!r} of {n_examples:,} training examples labels no example; give a larger one")
    if size >= n_examples:
        raise StageInputError(
            f"{key} {budget!r} labels all {n_examples:,} training examples, leaving nothing to choose; give one below that"
        )
    return size


def start_pool(*, data_dir: str | Path, fraction: float, random_seed: int, pool_out: str | Path, run_info: dict | None = None) -> pd.DataFrame:
    """Round 0: a uniformly random labelled pool of round(fraction x N) training examples."""
    started = time.perf_counter()
    labels = data.load_labels(data_dir, "train")
    size = _checked_size(fraction, len(labels), "initial fraction")
    index = np.random.default_rng(random_seed).permutation(len(labels))[:size]
    pool = _pool_frame(index, labels, np.zeros(size))
    facts = {
        **(run_info or {}),
        "round": 0,
        "budget": fraction,
        "strategy": rounds.RANDOM,
        "random_seed": random_seed,
        "pool_size": size,
        "batch_size": size,
        "n_total": len(labels),
        "batch_seconds": time.perf_counter() - started,
    }
    write_parquet(pool, pool_out, facts)
    print(f"round 0: labelled {size:,} random examples of {len(labels):,}", flush=True)
    return pool


def read_pool(path: str | Path, labels: np.ndarray) -> pd.DataFrame:
    """A pool file, checked against the training ``labels``: indices in range and each once,
    their labels the training data's, and a whole-number ``round`` column."""
    index = stage_files.subset_index(path, len(labels), kind="pool")
    table = stage_files.read_columns(path, ["index", "label", "round"], "pool")
    pool_labels = stage_files.whole_numbers(path, table, "label", "pool")
    wrong = np.flatnonzero(pool_labels != labels[index])
    if wrong.size:
        row = int(wrong[0])
        raise StageInputError(
            f"{path}, row {row}: example {index[row]} has label {pool_labels[row]}, but the training data's is "
            f"{labels[index[row]]}; was the pool made from other data? {REMAKE_POOL}"
        )
    round_labelled = stage_files.whole_numbers(path, table, "round", "pool")
    return pd.DataFrame({"index": index, "label": pool_labels, "round": round_labelled})


def uncertain_first(scores: np.ndarray, candidates: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` candidates with the highest score, highest first; ties go to the lower index."""
    values = scores[candidates]
    order = np.lexsort((candidates, -values))
    return candidates[order[:count]]


def _checked_batch(batch: np.ndarray, labelled: np.ndarray, count: int, strategy: str) -> np.ndarray:
    """A chooser's batch: ``count`` distinct unlabelled training indices (anything else is a bug in it)."""
    if batch.shape != (count,) or not np.issubdtype(batch.dtype, np.integer):
        raise RuntimeError(f"the {strategy} chooser returned {batch.dtype} of shape {batch.shape}, not {count} indices")
    if batch.size and (batch.min() < 0 or batch.max() >= len(labelled)):
        raise RuntimeError(f"the {strategy} chooser returned indices outside 0..{len(labelled) - 1}")
    if len(np.unique(batch)) != count or labelled[batch].any():
        raise RuntimeError(f"the {strategy} chooser returned a repeated or already labelled example")
    return batch.astype(np.int64)


def next_batch(
    *,
    pool_file: str | Path,
    data_dir: str | Path,
    budget: float,
    round_: int,
    pool_out: str | Path,
    scores_file: str | Path | None = None,
    strategy: str | None = None,
    random_seed: int | None = None,
    chooser: Chooser | None = None,
    run_info: dict | None = None,
) -> pd.DataFrame:
    """Round ``round_``: add to the pool of the round before the unlabelled examples that
    bring it to round(budget x N): the most uncertain by ``strategy`` in ``scores_file``
    (one score per training example; only unlabelled examples compete), a random draw
    with ``random_seed``, or what ``chooser`` (named by ``strategy``) picks."""
    if sum(source is not None for source in (scores_file, random_seed, chooser)) != 1:
        raise ValueError("give exactly one of scores_file (with strategy), random_seed and chooser (with strategy)")
    if scores_file is not None and strategy not in rounds.UNCERTAINTY_STRATEGIES:
        raise StageInputError(
            f"a score file gives the strategies {', '.join(rounds.UNCERTAINTY_STRATEGIES)}, not {strategy!r}"
        )
    if chooser is not None and strategy not in rounds.EMBEDDING_STRATEGIES:
        raise StageInputError(f"a chooser gives the strategies {', '.join(rounds.EMBEDDING_STRATEGIES)}, not {strategy!r}")
    started = time.perf_counter()
    labels = data.load_labels(data_dir, "train")
    n_examples = len(labels)
    previous = read_pool(pool_file, labels)
    stored_round = read_parquet_metadata(pool_file).get("round")
    if stored_round is not None and stored_round != round_ - 1:
        raise StageInputError(
            f"{pool_file}: the pool of round {stored_round}, but round {round_} adds to the pool of round {round_ - 1}"
        )
    size = _checked_size(budget, n_examples, "budget")
    count = size - len(previous)
    if count < 1:
        raise StageInputError(
            f"budget {budget!r} is {size:,} labelled examples of {n_examples:,}, but {pool_file} already holds "
            f"{len(previous):,}: round {round_} would label nothing; its budget must exceed the round before's"
        )
    labelled = np.zeros(n_examples, dtype=bool)
    labelled[previous["index"].to_numpy()] = True
    chosen_facts: dict = {}
    unlabelled = np.flatnonzero(~labelled)
    if scores_file is not None:
        scores = stage_files.read_scores(scores_file, (strategy,))
        if len(scores["index"]) != n_examples:
            raise StageInputError(
                f"{scores_file}: {len(scores['index']):,} rows, but the training set has {n_examples:,} examples; "
                f"score the training set this pool comes from ({stage_files.REMAKE['scores']})"
            )
        wrong = np.flatnonzero(scores["label"] != labels)
        if wrong.size:
            example = int(wrong[0])
            raise StageInputError(
                f"{scores_file}: example {example} has label {scores['label'][example]}, but the training data's is "
                f"{labels[example]}; were these scores made from other data? ({stage_files.REMAKE['scores']})"
            )
        batch = uncertain_first(scores[strategy], unlabelled, count)
    elif chooser is not None:
        batch, chosen_facts = chooser(previous["index"].to_numpy(), count, n_examples)
        batch = _checked_batch(np.asarray(batch), labelled, count, strategy)
    else:
        batch = np.random.default_rng(random_seed).choice(unlabelled, size=count, replace=False)
    index = np.concatenate([previous["index"].to_numpy(), batch])
    round_labelled = np.concatenate([previous["round"].to_numpy(), np.full(count, round_)])
    pool = _pool_frame(index, labels, round_labelled)
    if random_seed is not None:
        source = {"random_seed": random_seed}
    else:
        source = {"scores": str(scores_file)} if scores_file is not None else chosen_facts
    facts = {
        **(run_info or {}),
        "round": round_,
        "budget": budget,
        "strategy": strategy if random_seed is None else rounds.RANDOM,
        **source,
        "pool_size": len(pool),
        "batch_size": count,
        "n_total": n_examples,
        # The selector's forward pass (a chooser's scoring_seconds) is counted as scoring, not twice.
        "batch_seconds": time.perf_counter() - started - chosen_facts.get("scoring_seconds", 0.0),
    }
    write_parquet(pool, pool_out, facts)
    print(f"round {round_}: labelled {count:,} more examples, {len(pool):,} of {n_examples:,} in all", flush=True)
    return pool
