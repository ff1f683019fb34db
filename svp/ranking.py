"""Turn uncertainty scores into example orders, and combine the orders of several runs.

A rank is a position: rank 0 is the most uncertain example. Ties are broken by the
example index so every order is fully determined by the scores.
"""

from __future__ import annotations

import numpy as np


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """Rank of each example when sorted by decreasing score (0 = most uncertain)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return positions_of(order)


def positions_of(order: np.ndarray) -> np.ndarray:
    """Invert a permutation: ``positions_of(order)[order[i]] == i``."""
    positions = np.empty(len(order), dtype=np.int64)
    positions[order] = np.arange(len(order), dtype=np.int64)
    return positions


def combine_ranks(run_ranks: np.ndarray) -> np.ndarray:
    """Rank combination (paper, section 4.2): average each example's rank over runs, re-rank.

    ``run_ranks`` has shape ``(runs, examples)``; the result is a rank per example,
    0 for the lowest mean rank, i.e. the example the runs agree is most uncertain.
    """
    run_ranks = np.atleast_2d(np.asarray(run_ranks))
    mean_rank = run_ranks.mean(axis=0)
    return positions_of(np.argsort(mean_rank, kind="stable"))
