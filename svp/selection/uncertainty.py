"""How hard a classifier finds each example, from its class probabilities (and the label).

The three uncertainty scores of the paper (section 3), vectorised over all examples:
- least confidence: 1 - P(y_hat | x)
- margin:           1 - (P(y_hat | x) - P(y_2 | x)), y_2 the runner-up class
- entropy:          -sum_y P(y | x) log P(y | x)  (natural log)
and one score that also reads the label:
- el2n:             || P(. | x) - onehot(y) ||_2, the error L2 norm of Paul et al. (2021),
                    who compute it early in training; svp computes it from the proxy it
                    scores with, which for svp's short proxies is an early model too.
Higher always means harder, so every score ranks the same way. Plain numpy: the image
proxies (logits from torch) and fastText (probabilities) share it.
"""

from __future__ import annotations

import numpy as np

METRICS: tuple[str, ...] = ("least_confidence", "margin", "entropy", "el2n")


def uncertainty_from_probabilities(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric (shape ``(examples,)``) and the prediction, for ``(examples, classes)``
    probabilities and the examples' labels."""
    from scipy.special import xlogy  # here: ranking and planning need METRICS, not scipy

    p = np.asarray(probabilities, dtype=np.float64)  # float64 keeps near-certain examples apart
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"expected probabilities of shape (examples, classes>=2), got {p.shape}")
    labels = np.asarray(labels)
    if labels.shape != (len(p),):
        raise ValueError(f"expected one label per example ({len(p)}), got labels of shape {labels.shape}")
    # The two largest probabilities per row without sorting every class.
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    best, runner_up = top2[:, 0], top2[:, 1]
    return {
        "prediction": p.argmax(axis=1),
        "least_confidence": 1.0 - best,
        "margin": 1.0 - (best - runner_up),
        # xlogy defines 0 * log 0 = 0, so a class with probability 0 adds nothing.
        "entropy": -xlogy(p, p).sum(axis=1),
        "el2n": _error_l2_norm(p, labels),
    }


def _error_l2_norm(p: np.ndarray, labels: np.ndarray) -> np.ndarray:
    # ||p - e_y||^2 = sum_c p_c^2 - 2 p_y + 1, without building the one-hot matrix.
    p_label = p[np.arange(len(p)), labels]
    return np.sqrt(np.maximum((p * p).sum(axis=1) - 2.0 * p_label + 1.0, 0.0))


def uncertainty_from_logits(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    from scipy.special import softmax

    return uncertainty_from_probabilities(softmax(np.asarray(logits, dtype=np.float64), axis=1), labels)
