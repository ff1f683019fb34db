"""The registry of selection methods: every name ``selection.metrics`` takes, what each
needs of a trained model, which columns it writes and how it scores.

A method is one :class:`SelectionMethod` in :data:`REGISTRY`. What it ``needs`` is one
of the things a trainer provides (``svp.trainers``: class probabilities, embeddings,
training dynamics, gradients), so which trainers support it follows from their
``provides``. The command line's choices, the config schema's enums (a test checks
them against this table), the workflow's plan and the score stage's dispatch all read it.

- The uncertainty metrics (``svp.selection.uncertainty``) need probabilities and are
  computed together, one score file per proxy run (``svp score``): ``score`` is None.
- Every other method has a score file of its own per run (``svp score-method``:
  ``scores/<proxy>/seed<k>-<method>.parquet``: index, label and its columns); its
  ``score`` turns what the trainer gave into those columns:

  - ``forgetting`` (Toneva et al., 2019): forgetting events counted during the proxy's
    training (``svp.training.forgetting``); examples never learned rank first;
  - ``grand`` (Paul et al., 2021): the norm of each example's loss gradient
    (``svp.training.per_example.gradient_norms``);
  - ``kcenter`` (Sener and Savarese, 2018): the k-center greedy order over the proxy's
    penultimate-layer embeddings (``svp.selection.kcenter``), as a score.

Scores rank like uncertainty: higher is selected first. Plain numpy: nothing here
imports torch when imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from svp.errors import ConfigError, StageInputError
from svp.selection.uncertainty import METRICS
from svp.trainers.base import EMBEDDINGS, GRADIENTS, PROBABILITIES, TRAINERS, TRAINING_DYNAMICS, Trainer


@dataclass(frozen=True)
class MethodInputs:
    """What a method's ``score`` gets: what the trainer gave, and the facts around it."""

    values: object  # the trainer's output for what the method needs (an array, or model.pt's counts)
    n_examples: int
    seed: int  # the scored model's training seed
    path: str  # the model.pt, for messages
    # The method's own options (kcenter_fraction), and "scratch": a folder for arrays too large for memory.
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SelectionMethod:
    """One selection method: its name, what it needs of a trained model, how it scores."""

    name: str
    needs: str  # PROBABILITIES, EMBEDDINGS, TRAINING_DYNAMICS or GRADIENTS (svp.trainers)
    columns: tuple[str, ...]  # what it writes in its score file; its score, the one ranked, first
    # (MethodInputs) -> {column: per-example array}; None: an uncertainty metric, from `svp score`
    score: Callable[[MethodInputs], dict] | None = None
    # Reads no label: an active-learning strategy can apply it to the unlabelled examples.
    label_free: bool = False

    def supported_by(self, trainer: Trainer) -> bool:
        return self.needs in trainer.provides

    @property
    def trainers(self) -> tuple[str, ...]:
        """The trainers whose models give what it needs."""
        return tuple(trainer.name for trainer in TRAINERS if self.supported_by(trainer))


REGISTRY: dict[str, SelectionMethod] = {}


def register_method(method: SelectionMethod) -> SelectionMethod:
    # Silently replacing an entry would make a config name mean two things.
    if method.name in REGISTRY:
        raise ValueError(f"selection method {method.name!r} is already registered")
    REGISTRY[method.name] = method
    return method


def selection_method(name: str) -> SelectionMethod:
    if name not in REGISTRY:
        raise ConfigError(f"unknown selection method {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def forgetting_scores(events: np.ndarray, ever_correct: np.ndarray, presentations: np.ndarray, epochs: int, path="model.pt") -> np.ndarray:
    """Each example's forgetting events; an example never learned gets ``epochs``, above any count.

    An example presented once per epoch can be forgotten at most every other
    presentation (fewer than ``epochs`` times), so ``epochs`` ranks the never-learned
    examples first, all tied. That is what Toneva et al.'s released code does: it gives
    such an example its number of presentations, one an epoch here. The SVP authors'
    code gives it infinity instead, which ranks the same but would make the score files
    infinite. An example never presented (a model trained on a subset) has no count: it is
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


def _forgetting(inputs: MethodInputs) -> dict:
    counts = inputs.values  # model.pt's counts, checked by the stage that read them
    events = np.asarray(counts["events"], dtype=np.int64)
    ever_correct = np.asarray(counts["ever_correct"], dtype=bool)
    scores = forgetting_scores(events, ever_correct, np.asarray(counts["presentations"]), int(counts["epochs"]), inputs.path)
    return {"forgetting": scores, "forgetting_events": events, "never_learned": ~ever_correct}


def _grand(inputs: MethodInputs) -> dict:
    return {"grand": inputs.values}


def _kcenter(inputs: MethodInputs) -> dict:
    """The greedy order over the first ``kcenter_fraction`` of the examples (the rest score 0)."""
    from svp.selection.kcenter import k_center_greedy

    fraction = inputs.options.get("kcenter_fraction", 1.0)
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"kcenter_fraction must be in (0, 1], got {fraction}")
    embedded, n = inputs.values, inputs.n_examples
    budget = min(n, max(1, math.ceil(fraction * n)))
    order = k_center_greedy(embedded, budget, seed=inputs.seed, scratch=inputs.options.get("scratch"))
    print(f"k-center greedy ordered {budget:,} of {n:,} examples ({embedded.shape[1]}-d embeddings)")
    return {"kcenter": order_scores(order, n)}


# The uncertainty metrics, in svp.selection.uncertainty's order; EL2N reads the label.
for _metric in METRICS:
    register_method(SelectionMethod(_metric, PROBABILITIES, (_metric,), label_free=_metric != "el2n"))
register_method(SelectionMethod("forgetting", TRAINING_DYNAMICS, ("forgetting", "forgetting_events", "never_learned"), _forgetting))
register_method(SelectionMethod("grand", GRADIENTS, ("grand",), _grand))
register_method(SelectionMethod("kcenter", EMBEDDINGS, ("kcenter",), _kcenter, label_free=True))

# Every name selection.metrics takes, and those with a score file of their own.
SELECTION_METRICS: tuple[str, ...] = tuple(REGISTRY)
METHODS: tuple[str, ...] = tuple(name for name, method in REGISTRY.items() if method.score is not None)
