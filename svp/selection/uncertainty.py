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
    probabilities (rows summing to 1) and the examples' labels.

    Every ``1 - P(c)`` is computed as the sum of the other classes' probabilities: on a
    confident example P(c) rounds to 1 in float64 (from a logit gap of about 37), and
    ``1 - P(c)`` loses its digits long before that (EL2N written as sum p^2 - 2 p_y + 1
    was exactly 0 from a gap of 21), while the small probabilities keep full relative
    precision. So every metric keeps confident examples apart until exp(-gap) underflows.
    """
    from scipy.special import xlogy  # here: ranking and planning need METRICS, not scipy

    p = np.asarray(probabilities, dtype=np.float64)  # float64 keeps near-certain examples apart
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"expected probabilities of shape (examples, classes>=2), got {p.shape}")
    labels = np.asarray(labels)
    if labels.shape != (len(p),):
        raise ValueError(f"expected one label per example ({len(p)}), got labels of shape {labels.shape}")
    rows = np.arange(len(p))
    prediction = p.argmax(axis=1)
    best = p[rows, prediction]
    not_best = _without_column(p, prediction)
    # The runner-up without sorting every class.
    runner_up = not_best.max(axis=1)
    not_best_sum = not_best.sum(axis=1)  # 1 - P(y_hat)
    return {
        "prediction": prediction,
        "least_confidence": not_best_sum,
        # 1 - (P(y_hat) - P(y_2)) = (1 - P(y_hat)) + P(y_2)
        "margin": not_best_sum + runner_up,
        # xlogy defines 0 * log 0 = 0, so a class with probability 0 adds nothing; the
        # predicted class's log P is log1p(-(1 - P)), which log(P) would round to 0.
        "entropy": -xlogy(not_best, not_best).sum(axis=1) - best * np.log1p(-np.minimum(not_best_sum, 1.0)),
        "el2n": _error_l2_norm(_without_column(p, labels)),
    }


def _without_column(p: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """A copy of ``p`` with each row's entry at ``columns`` set to 0."""
    rest = p.copy()
    rest[np.arange(len(p)), columns] = 0.0
    return rest


def _error_l2_norm(not_label: np.ndarray) -> np.ndarray:
    """||p - onehot(y)||_2 from the probabilities of the classes other than the label.

    ||p - e_y||^2 = (1 - p_y)^2 + sum_{c != y} p_c^2 with 1 - p_y = s = sum_{c != y} p_c,
    written as s * sqrt(1 + sum (p_c / s)^2): no cancellation (Paul et al.'s float32
    formula and sum p^2 - 2 p_y + 1 both lose confident examples), and no squares that
    underflow before s itself does.
    """
    s = not_label.sum(axis=1)
    scaled = np.divide(not_label, s[:, None], out=np.zeros_like(not_label), where=s[:, None] > 0)
    return s * np.sqrt(1.0 + (scaled * scaled).sum(axis=1))


def uncertainty_from_logits(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    from scipy.special import softmax

    return uncertainty_from_probabilities(softmax(np.asarray(logits, dtype=np.float64), axis=1), labels)
