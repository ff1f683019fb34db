"""Choose which training examples the target model sees.

Every selection is an *order* over all examples; the subset for a fraction is its
first round(fraction x N) entries. Because all fractions cut the same order, smaller
subsets are nested in larger ones.
"""

from __future__ import annotations

import math

import numpy as np

from svp.errors import ConfigError
from svp.selection.ranking import positions_of


def subset_size(fraction: float, n_examples: int) -> int:
    """round(fraction x N), halves rounded up (Python's round would round 0.5 to even)."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, min(n_examples, math.floor(fraction * n_examples + 0.5)))


def random_ranks(n_examples: int, seed: int) -> np.ndarray:
    """A uniformly random order, fixed by ``seed``: the baseline with no proxy."""
    order = np.random.default_rng(seed).permutation(n_examples)
    return positions_of(order)


def selection_order(ranks: np.ndarray, labels: np.ndarray, class_balanced: bool) -> np.ndarray:
    """Example indices in the order they join the subset (best-ranked first).

    Plain top-k follows the ranks. Class-balanced selection keeps every prefix close to
    the class shares of the full data set (each class within one example of its share),
    each class contributing its own best-ranked examples: the j-th best example of a
    class with n_c examples is due at fraction (j + 1/2) / n_c, and examples join in order
    of when they are due, ties going to the better overall rank. Uncertainty alone skews
    small subsets toward hard classes, which can lose to random selection.
    """
    ranks = np.asarray(ranks)
    by_rank = np.argsort(ranks, kind="stable")
    if not class_balanced:
        return by_rank
    labels = np.asarray(labels)[by_rank]
    class_sizes = np.bincount(labels)
    class_starts = np.cumsum(class_sizes) - class_sizes
    by_class = np.argsort(labels, kind="stable")  # keeps rank order within each class
    within_class = np.empty(len(labels), dtype=np.int64)
    within_class[by_class] = np.arange(len(labels)) - class_starts[labels[by_class]]
    due = (within_class + 0.5) / class_sizes[labels]
    return by_rank[np.lexsort((np.arange(len(labels)), due))]


def smallest_subset(class_sizes, class_balanced: bool) -> int:
    """The fewest examples a subset needs to hold every class, whatever the ranks.

    Top-k needs one example per class. In ``selection_order``'s class-balanced order the
    smallest class (n_min examples) gets its first example at due time 1/2 / n_min, so
    the subset needs every example due no later: (n_c + n_min) // (2 n_min) per class.
    """
    sizes = np.asarray(class_sizes, dtype=np.int64)
    sizes = sizes[sizes > 0]
    if not class_balanced:
        return len(sizes)
    return int(((sizes + sizes.min()) // (2 * sizes.min())).sum())
