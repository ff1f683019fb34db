"""Selection methods beyond the uncertainty scores: their names, and each one's per-example
score (higher = selected first, as for uncertainty), from what the proxy gives.

- ``forgetting`` (Toneva et al., 2019): forgetting events counted during the proxy's
  training (``svp.training.forgetting``); examples never learned rank first;
- ``grand`` (Paul et al., 2021): the norm of each example's loss gradient
  (``svp.training.per_example.gradient_norms``);
- ``kcenter`` (Sener and Savarese, 2018): the k-center greedy order over the proxy's
  penultimate-layer embeddings (``svp.selection.kcenter``), as a score.

Each is computed per proxy run by ``svp score-method`` into a file of its own
(``scores/<proxy>/seed<k>-<method>.parquet``: index, label and the method's column), and
ranked and combined over runs like any metric. Plain numpy: nothing here imports torch.
"""

from __future__ import annotations

import numpy as np

from svp.errors import StageInputError
from svp.selection.uncertainty import METRICS

METHODS: tuple[str, ...] = ("forgetting", "grand", "kcenter")
# Every name selection.metrics takes.
SELECTION_METRICS: tuple[str, ...] = METRICS + METHODS


def forgetting_scores(events: np.ndarray, ever_correct: np.ndarray, presentations: np.ndarray, epochs: int, path="model.pt") -> np.ndarray:
    """Each example's forgetting events; an example never learned gets ``epochs``, above any count.

    An example presented once per epoch can be forgotten at most every other
    presentation (fewer than ``epochs`` times), so ``epochs`` ranks the never-learned
    examples first, all tied. That is what Toneva et al.'s released code does: it gives
    such an example its number of presentations, one an epoch here. The SVP authors'
    code gives it infinity instead, which ranks the same but would make the score files
    infinite.
    An example never presented (a model trained on a subset) has no count: it is
    refused, naming ``path``.
    """
    events = np.asarray(events, dtype=np.float64)
    unseen = np.asarray(presentations) == 0
    if unseen.any():
        raise StageInputError(
            f"{path}: {int(unseen.sum()):,} of {len(events):,} training examples were never presented in training "
            f"(the first: example {int(np.flatnonzero(unseen)[0])}), so they have no forgetting count: the model "
            "was trained on a subset. Count forgetting events with a model trained on all the data (a proxy)"
        )
    return np.where(np.asarray(ever_correct, dtype=bool), events, float(epochs))


def order_scores(order: np.ndarray, n_examples: int) -> np.ndarray:
    """A score per example from a selection order: the first chosen gets ``len(order)``, the
    next one less, down to 1; examples not in the order get 0, all tied."""
    order = np.asarray(order, dtype=np.int64)
    scores = np.zeros(n_examples, dtype=np.float64)
    scores[order] = np.arange(len(order), 0, -1, dtype=np.float64)
    return scores
