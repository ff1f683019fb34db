"""Uncertainty of a classifier about each example, from its class probabilities.

The three scores of the paper (section 3), vectorised over a batch:
- least confidence: 1 - P(y_hat | x)
- margin:           1 - (P(y_hat | x) - P(y_2 | x)), y_2 the runner-up class
- entropy:          -sum_y P(y | x) log P(y | x)  (natural log)
Higher always means more uncertain, so every score ranks the same way.
"""

from __future__ import annotations

import torch

METRICS: tuple[str, ...] = ("least_confidence", "margin", "entropy")


def uncertainty_from_probabilities(probabilities: torch.Tensor) -> dict[str, torch.Tensor]:
    """Return each metric (shape ``(batch,)``) and the prediction for a ``(batch, classes)`` tensor."""
    if probabilities.ndim != 2 or probabilities.shape[1] < 2:
        raise ValueError(
            f"expected probabilities of shape (batch, classes>=2), got {tuple(probabilities.shape)}"
        )
    p = probabilities.double()  # float64 keeps ties between near-certain examples apart
    top2 = p.topk(2, dim=1)
    best, runner_up = top2.values[:, 0], top2.values[:, 1]
    return {
        "prediction": top2.indices[:, 0],
        "least_confidence": 1.0 - best,
        "margin": 1.0 - (best - runner_up),
        # xlogy defines 0 * log 0 = 0, so a class with probability 0 adds nothing.
        "entropy": -torch.special.xlogy(p, p).sum(dim=1),
    }


def uncertainty_from_logits(logits: torch.Tensor) -> dict[str, torch.Tensor]:
    return uncertainty_from_probabilities(torch.softmax(logits.double(), dim=1))
