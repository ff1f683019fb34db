import math

import numpy as np
import pytest

from svp.selection.uncertainty import METRICS, uncertainty_from_logits, uncertainty_from_probabilities


def test_metrics_match_hand_computed_values():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]])
    scores = uncertainty_from_probabilities(probabilities, np.array([0, 2, 1]))
    np.testing.assert_allclose(scores["least_confidence"], [0.3, 0.6, 0.0], atol=1e-12)
    np.testing.assert_allclose(scores["margin"], [1 - 0.5, 1 - 0.0, 1 - 1.0], atol=1e-12)
    entropy_first = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    entropy_second = -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2))
    # A certain prediction has zero entropy: 0 log 0 counts as 0, not NaN.
    np.testing.assert_allclose(scores["entropy"], [entropy_first, entropy_second, 0.0], atol=1e-12)
    # EL2N, by hand: ||p - onehot(label)||_2 for labels 0, 2 and 1.
    el2n = [math.sqrt(0.3**2 + 0.2**2 + 0.1**2), math.sqrt(0.4**2 + 0.4**2 + 0.8**2), math.sqrt(1 + 1)]
    np.testing.assert_allclose(scores["el2n"], el2n, atol=1e-12)
    assert scores["prediction"].tolist() == [0, 0, 0]


def test_uniform_distribution_is_maximally_uncertain():
    scores = uncertainty_from_probabilities(np.full((1, 4), 0.25), np.array([3]))
    assert scores["least_confidence"][0] == pytest.approx(0.75)
    assert scores["margin"][0] == pytest.approx(1.0)
    assert scores["entropy"][0] == pytest.approx(math.log(4))


def test_logits_go_through_softmax():
    logits = np.array([[2.0, 0.0], [0.0, 5.0]])
    labels = np.array([1, 1])
    from_logits = uncertainty_from_logits(logits, labels)
    from_probabilities = uncertainty_from_probabilities(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), labels)
    for metric in METRICS:
        np.testing.assert_allclose(from_logits[metric], from_probabilities[metric], rtol=1e-12)
    assert from_logits["prediction"].tolist() == [0, 1]


def test_rejects_a_single_class():
    with pytest.raises(ValueError, match="classes>=2"):
        uncertainty_from_probabilities(np.ones((3, 1)), np.zeros(3, int))
    with pytest.raises(ValueError, match="one label per example"):
        uncertainty_from_probabilities(np.full((3, 2), 0.5), np.zeros(2, int))


def test_el2n_ranks_a_confident_mistake_above_an_unsure_example():
    """Uncertainty cannot tell a confidently wrong prediction from a confidently right one; EL2N can."""
    p = np.array([[0.99, 0.01], [0.99, 0.01], [0.6, 0.4]])
    scores = uncertainty_from_probabilities(p, np.array([0, 1, 0]))
    assert scores["entropy"][0] == scores["entropy"][1] < scores["entropy"][2]
    assert scores["el2n"][1] > scores["el2n"][2] > scores["el2n"][0]
