import numpy as np

from svp.selection.ranking import average_ranks, combine_ranks, positions_of, ranks_from_scores


def test_rank_zero_is_the_most_uncertain_and_ties_go_to_the_lower_index():
    scores = np.array([0.1, 0.9, 0.5, 0.9])
    np.testing.assert_array_equal(ranks_from_scores(scores), [3, 0, 2, 1])


def test_positions_invert_an_order():
    order = np.array([2, 0, 3, 1])
    positions = positions_of(order)
    np.testing.assert_array_equal(order[positions], np.arange(4))


def test_rank_combination_on_a_constructed_case():
    # Mean ranks: a=(0+2+1)/3=1, b=(1+0+0)/3=1/3, c=(2+1+2)/3=5/3, d=3.
    run_ranks = np.array(
        [
            [0, 1, 2, 3],
            [2, 0, 1, 3],
            [1, 0, 2, 3],
        ]
    )
    np.testing.assert_array_equal(combine_ranks(run_ranks), [1, 0, 2, 3])


def test_rank_combination_of_one_run_is_that_run():
    ranks = ranks_from_scores(np.random.default_rng(0).random(50))
    np.testing.assert_array_equal(combine_ranks(ranks[None, :]), ranks)


def test_equal_mean_ranks_break_ties_by_index():
    np.testing.assert_array_equal(combine_ranks(np.array([[0, 1], [1, 0]])), [0, 1])


def test_fast_sorts_equal_a_stable_sort_with_ties_and_nans():
    def stable_ranks(scores):
        return positions_of(np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"))

    rng = np.random.default_rng(0)
    for scores in [
        rng.random(500),
        rng.integers(0, 4, 500).astype(float),  # ties everywhere
        rng.choice([0.0, -0.0, 1.0, np.nan, np.inf, -np.inf], 500),
        np.round(rng.random(500), 2).astype(np.float32),
    ]:
        np.testing.assert_array_equal(ranks_from_scores(scores), stable_ranks(scores))
    run_ranks = np.stack([ranks_from_scores(rng.integers(0, 3, 500)) for _ in range(4)])
    expected = positions_of(np.argsort(run_ranks.mean(axis=0), kind="stable"))
    np.testing.assert_array_equal(combine_ranks(run_ranks), expected)


def test_average_ranks_share_the_mean_position_of_their_ties():
    scores = np.array([0.5, 0.9, 0.5, 0.1, 0.5])
    np.testing.assert_array_equal(average_ranks(scores), [2.0, 0.0, 2.0, 4.0, 2.0])
    untied = np.random.default_rng(0).random(100)
    np.testing.assert_array_equal(average_ranks(untied), ranks_from_scores(untied))


def test_a_collapsed_run_no_longer_pulls_the_combination_toward_low_indices():
    """A run whose scores all tie (a collapsed proxy) adds the same rank to every example,
    so the combination follows the informative runs alone; ties broken by index would
    have moved the low indices up."""
    rng = np.random.default_rng(0)
    informative = [rng.random(1000) for _ in range(2)]
    collapsed = np.zeros(1000)
    alone = combine_ranks(np.stack([average_ranks(s) for s in informative]))
    with_collapsed = combine_ranks(np.stack([average_ranks(s) for s in [*informative, collapsed]]))
    np.testing.assert_array_equal(with_collapsed, alone)
    by_index = combine_ranks(np.stack([ranks_from_scores(s) for s in [*informative, collapsed]]))
    top = np.argsort(by_index)[:100]
    assert np.mean(top) < 350  # the old tie-break's bias, which average ranks remove
    assert 400 < np.mean(np.argsort(with_collapsed)[:100]) < 600


def test_every_metric_ranks_confident_examples_apart():
    """Logit gaps of 40 and 45, where 1 - P(y_hat) is exactly 0 in float64: every metric
    still ranks the less confident example first (the README's claim; least confidence
    and margin as 1 - P tied them at 0)."""
    from svp.selection.ranking import ranks_from_scores
    from svp.selection.uncertainty import METRICS, uncertainty_from_logits

    logits = np.zeros((2, 10))
    logits[:, 0] = [45.0, 40.0]
    scores = uncertainty_from_logits(logits, np.zeros(len(logits), int))
    for metric in METRICS:
        assert scores[metric][1] > scores[metric][0] > 0, metric
        assert ranks_from_scores(scores[metric]).tolist() == [1, 0], metric
