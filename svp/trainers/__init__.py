"""What trains a model and scores with it: the Trainer protocol and its two implementations.

- ``base``: the protocol (no torch): :class:`Trainer` (the ``training`` settings it takes,
  what its models provide for selection), the jobs the stages hand over and what comes back;
- ``torch_trainer``: svp's torch loop (``svp.training``): a registered network built,
  trained on device-held data and scored;
- ``fasttext_trainer``: fastText, trained and scored outside torch.

Importing this package loads only the protocol; :func:`implementation` imports a
trainer's module when a stage runs it. A new trainer (a library that is not torch) is a
:class:`Trainer` in ``base`` and a module here with ``settings``, ``fit``, ``predict_chunks`` and ``predict``
(and ``embeddings``, ``gradient_norms`` for what it provides), named in :func:`implementation`.
"""

from svp.trainers.base import (
    EMBEDDINGS,
    FASTTEXT,
    GRADIENTS,
    PROBABILITIES,
    REMAKE_CHECKPOINT,
    TORCH,
    TRAINERS,
    TRAINING_DYNAMICS,
    FittedModel,
    Predictions,
    ScoringJob,
    Trainer,
    TrainingJob,
    first_sentence,
)

__all__ = [
    "EMBEDDINGS", "FASTTEXT", "GRADIENTS", "PROBABILITIES", "REMAKE_CHECKPOINT", "TORCH", "TRAINERS",
    "TRAINING_DYNAMICS", "FittedModel", "Predictions", "ScoringJob", "Trainer", "TrainingJob", "first_sentence",
    "implementation",
]  # fmt: skip


def implementation(trainer: Trainer):
    """The module that does ``trainer``'s work, imported now: the stages call it, a config
    check never does, so validating a config loads neither torch nor fastText."""
    if trainer.name == TORCH.name:
        from svp.trainers import torch_trainer

        return torch_trainer
    if trainer.name == FASTTEXT.name:
        from svp.trainers import fasttext_trainer

        return fasttext_trainer
    raise ValueError(f"trainer {trainer.name!r} has no implementation in svp.trainers")
