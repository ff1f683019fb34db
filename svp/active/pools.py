"""Labelled-pool files, and the two stages that write them: the random start and the next batch.

A pool file is a subset file (``svp train --subset`` reads it as it is): one row per
labelled example with its ``index`` and ``label``, plus ``round``, the round that
labelled it. Rows keep the order of labelling: the previous pool's rows first, then the
new batch, most uncertain first. So pools are nested across rounds by construction, and
each stage checks its input pool against the training labels before choosing.

The parquet metadata holds the round's facts: round, budget, pool and batch sizes,
strategy, selector, seeds, and ``batch_seconds``, the time the batch choice itself took
(the report adds the selector's training and scoring time to it).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from svp import data, stage_files
from svp.active import rounds
from svp.errors import StageInputError
from svp.parquet import read_parquet_metadata, write_parquet

REMAKE_POOL = stage_files.REMAKE["pool"]


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
    run_info: dict | None = None,
) -> pd.DataFrame:
    """Round ``round_``: add to the pool of the round before the unlabelled examples that
    bring it to round(budget x N): the most uncertain by ``strategy`` in ``scores_file``
    (one score per training example; only unlabelled examples compete), or a random draw
    with ``random_seed``."""
    if (scores_file is None) == (random_seed is None):
        raise ValueError("give exactly one of scores_file (with strategy) and random_seed")
    if scores_file is not None and strategy not in rounds.STRATEGIES:
        raise StageInputError(f"unknown active-learning strategy {strategy!r}; known: {', '.join(rounds.STRATEGIES)}")
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
    unlabelled = np.flatnonzero(~labelled)
    if scores_file is not None:
        scores = stage_files.read_scores(scores_file, (strategy,))
        if len(scores["index"]) != n_examples:
            raise StageInputError(
                f"{scores_file}: {len(scores['index']):,} rows, but the training set has {n_examples:,} examples; "
                f"score the training set this pool comes from ({stage_files.REMAKE['scores']})"
            )
        batch = uncertain_first(scores[strategy], unlabelled, count)
    else:
        batch = np.random.default_rng(random_seed).choice(unlabelled, size=count, replace=False)
    index = np.concatenate([previous["index"].to_numpy(), batch])
    round_labelled = np.concatenate([previous["round"].to_numpy(), np.full(count, round_)])
    pool = _pool_frame(index, labels, round_labelled)
    facts = {
        **(run_info or {}),
        "round": round_,
        "budget": budget,
        "strategy": strategy if scores_file is not None else rounds.RANDOM,
        **({"random_seed": random_seed} if random_seed is not None else {"scores": str(scores_file)}),
        "pool_size": len(pool),
        "batch_size": count,
        "n_total": n_examples,
        "batch_seconds": time.perf_counter() - started,
    }
    write_parquet(pool, pool_out, facts)
    print(f"round {round_}: labelled {count:,} more examples, {len(pool):,} of {n_examples:,} in all", flush=True)
    return pool
