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


def _exact_metrics(logits: list[float], label: int) -> dict[str, float]:
    """Every metric of one example from its logits, in 60-digit decimal arithmetic."""
    from decimal import Decimal, localcontext

    with localcontext() as context:
        context.prec = 60
        top = max(logits)
        weights = [(Decimal(repr(z)) - Decimal(repr(top))).exp() for z in logits]
        total = sum(weights)
        p = [w / total for w in weights]
        ordered = sorted(p, reverse=True)
        error = [pc - (1 if c == label else 0) for c, pc in enumerate(p)]
        return {
            "least_confidence": float(1 - ordered[0]),
            "margin": float(1 - (ordered[0] - ordered[1])),
            "entropy": float(-sum(pc * pc.ln() for pc in p)),
            "el2n": float(sum(e * e for e in error).sqrt()),
        }


def test_confident_examples_stay_apart_and_exact_for_every_metric():
    """Logit margins of 15 to 40 over nine other classes: every metric matches a 60-digit
    reference to 1e-12 and keeps all 2,000 examples apart, strictly falling as the margin
    grows. (EL2N computed as sum p^2 - 2 p_y + 1 was exactly 0 for over half of them,
    least confidence and margin from a margin of 37; entropy was 5 % off at 20.)"""
    others = [0.0, -0.3, -0.7, -1.1, -1.6, -2.0, -2.5, -3.1, -3.6]
    gaps = np.linspace(15.0, 40.0, 2000)
    logits = np.array([[gap, *others] for gap in gaps])
    labels = np.zeros(len(gaps), dtype=np.int64)
    scores = uncertainty_from_logits(logits, labels)
    for metric in METRICS:
        values = scores[metric]
        exact = np.array([_exact_metrics(row.tolist(), 0)[metric] for row in logits[::50]])
        np.testing.assert_allclose(values[::50], exact, rtol=1e-12, atol=0, err_msg=metric)
        assert len(np.unique(values)) == len(gaps), metric
        assert np.all(np.diff(values) < 0), metric


def test_confident_mistakes_are_exact_for_every_metric():
    """The same logits with the label on a runner-up class: EL2N near sqrt(2), no cancellation either."""
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.uniform(15.0, 40.0, (50, 1)), rng.normal(0.0, 1.0, (50, 4))], axis=1)
    labels = rng.integers(1, 5, size=50)
    scores = uncertainty_from_logits(logits, labels)
    for metric in METRICS:
        exact = [_exact_metrics(row.tolist(), int(label))[metric] for row, label in zip(logits, labels)]
        np.testing.assert_allclose(scores[metric], exact, rtol=1e-12, atol=0, err_msg=metric)


def test_metrics_stay_positive_until_the_smaller_probabilities_underflow():
    """Two classes, logit gap g: every metric is positive and falling up to g = 700 (the
    other class's probability exp(-g) still a normal float64)."""
    gaps = np.array([100.0, 300.0, 500.0, 700.0])
    scores = uncertainty_from_logits(np.stack([gaps, np.zeros_like(gaps)], axis=1), np.zeros(len(gaps), dtype=np.int64))
    for metric in METRICS:
        assert np.all(scores[metric] > 0), metric
        assert np.all(np.diff(scores[metric]) < 0), metric
    np.testing.assert_allclose(scores["least_confidence"], np.exp(-gaps), rtol=1e-12)
    np.testing.assert_allclose(scores["el2n"], np.sqrt(2) * np.exp(-gaps), rtol=1e-12)
