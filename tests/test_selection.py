import numpy as np
import pytest

from svp.selection.ranking import ranks_from_scores
from svp.selection.orders import random_ranks, selection_order, subset_size


@pytest.mark.parametrize(
    "fraction, n, expected", [(0.4, 10, 4), (0.25, 10, 3), (0.5, 5, 3), (1.0, 7, 7), (0.001, 10, 1), (0.3, 1347, 404)]
)
def test_subset_size_is_fraction_times_n_rounded(fraction, n, expected):
    assert subset_size(fraction, n) == expected


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_subset_size_rejects_fractions_outside_zero_one(fraction):
    with pytest.raises(ValueError, match="fraction"):
        subset_size(fraction, 10)


def _labels_and_ranks(n=1000, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    # Make class 0 much harder so plain top-k over-represents it.
    scores = rng.random(n) + (labels == 0) * 2.0
    return labels, ranks_from_scores(scores)


def test_top_k_follows_the_ranks():
    labels, ranks = _labels_and_ranks()
    order = selection_order(ranks, labels, class_balanced=False)
    np.testing.assert_array_equal(ranks[order], np.arange(len(ranks)))


@pytest.mark.parametrize("class_balanced", [False, True])
def test_subsets_are_nested_across_fractions(class_balanced):
    labels, ranks = _labels_and_ranks()
    order = selection_order(ranks, labels, class_balanced)
    assert sorted(order.tolist()) == list(range(len(labels)))  # a permutation: every example once
    subsets = [set(order[: subset_size(f, len(labels))].tolist()) for f in (0.1, 0.4, 0.6, 0.8, 1.0)]
    assert all(small <= large for small, large in zip(subsets, subsets[1:]))


def test_class_balanced_prefixes_keep_class_shares():
    labels, ranks = _labels_and_ranks()
    shares = np.bincount(labels) / len(labels)
    order = selection_order(ranks, labels, class_balanced=True)
    for fraction in (0.05, 0.1, 0.3, 0.5, 0.9):
        k = subset_size(fraction, len(labels))
        counts = np.bincount(labels[order[:k]], minlength=len(shares))
        assert np.all(np.abs(counts - shares * k) <= 1.0), (fraction, counts, shares * k)
    plain = selection_order(ranks, labels, class_balanced=False)[:100]
    assert np.mean(labels[plain] == 0) > 0.9  # the skew balancing removes


def test_class_balanced_takes_each_class_in_its_own_rank_order():
    labels, ranks = _labels_and_ranks()
    order = selection_order(ranks, labels, class_balanced=True)
    for label in range(10):
        chosen = order[labels[order] == label]
        assert np.all(np.diff(ranks[chosen]) > 0)


def test_random_orders_differ_by_seed_and_repeat_with_the_same_seed():
    np.testing.assert_array_equal(random_ranks(100, 1), random_ranks(100, 1))
    assert not np.array_equal(random_ranks(100, 1), random_ranks(100, 2))
    assert sorted(random_ranks(100, 3).tolist()) == list(range(100))
