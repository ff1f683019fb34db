"""Uncertainty of a classifier about each example, from its class probabilities.

The three scores of the paper (section 3), vectorised over all examples at once:
- least confidence: 1 - P(y_hat | x)
- margin:           1 - (P(y_hat | x) - P(y_2 | x)), y_2 the runner-up class
- entropy:          -sum_y P(y | x) log P(y | x)  (natural log)
Higher always means more uncertain, so every score ranks the same way. Plain numpy:
the image proxies (logits from torch) and fastText (probabilities) share it.
"""

from __future__ import annotations

import numpy as np

METRICS: tuple[str, ...] = ("least_confidence", "margin", "entropy")


def uncertainty_from_probabilities(probabilities: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric (shape ``(examples,)``) and the prediction, for ``(examples, classes)`` probabilities."""
    from scipy.special import xlogy  # here: ranking and planning need METRICS, not scipy

    p = np.asarray(probabilities, dtype=np.float64)  # float64 keeps near-certain examples apart
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"expected probabilities of shape (examples, classes>=2), got {p.shape}")
    # The two largest probabilities per row without sorting every class.
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    best, runner_up = top2[:, 0], top2[:, 1]
    return {
        "prediction": p.argmax(axis=1),
        "least_confidence": 1.0 - best,
        "margin": 1.0 - (best - runner_up),
        # xlogy defines 0 * log 0 = 0, so a class with probability 0 adds nothing.
        "entropy": -xlogy(p, p).sum(axis=1),
    }


def uncertainty_from_logits(logits: np.ndarray) -> dict[str, np.ndarray]:
    from scipy.special import softmax

    return uncertainty_from_probabilities(softmax(np.asarray(logits, dtype=np.float64), axis=1))
