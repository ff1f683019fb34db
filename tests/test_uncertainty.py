import math

import numpy as np
import pytest
import torch

from svp.uncertainty import METRICS, uncertainty_from_logits, uncertainty_from_probabilities


def test_metrics_match_hand_computed_values():
    probabilities = torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]])
    scores = uncertainty_from_probabilities(probabilities)
    np.testing.assert_allclose(scores["least_confidence"], [0.3, 0.6, 0.0], atol=1e-12)
    np.testing.assert_allclose(scores["margin"], [1 - 0.5, 1 - 0.0, 1 - 1.0], atol=1e-12)
    entropy_first = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    entropy_second = -(2 * 0.4 * math.log(0.4) + 0.2 * math.log(0.2))
    # A certain prediction has zero entropy: 0 log 0 counts as 0, not NaN.
    np.testing.assert_allclose(scores["entropy"], [entropy_first, entropy_second, 0.0], atol=1e-12)
    assert scores["prediction"].tolist() == [0, 0, 0]


def test_uniform_distribution_is_maximally_uncertain():
    scores = uncertainty_from_probabilities(torch.full((1, 4), 0.25))
    assert scores["least_confidence"].item() == pytest.approx(0.75)
    assert scores["margin"].item() == pytest.approx(1.0)
    assert scores["entropy"].item() == pytest.approx(math.log(4))


def test_logits_go_through_softmax():
    logits = torch.tensor([[2.0, 0.0], [0.0, 5.0]])
    from_logits = uncertainty_from_logits(logits)
    from_probabilities = uncertainty_from_probabilities(torch.softmax(logits.double(), dim=1))
    for metric in METRICS:
        torch.testing.assert_close(from_logits[metric], from_probabilities[metric])
    assert from_logits["prediction"].tolist() == [0, 1]


def test_rejects_a_single_class():
    with pytest.raises(ValueError, match="classes>=2"):
        uncertainty_from_probabilities(torch.ones(3, 1))
