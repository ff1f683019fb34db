"""Forgetting events (Toneva et al., 2019), counted while a model trains.

Each time an example is presented in a minibatch, the training loop hands over whether
the model's prediction on it (the augmented input, as seen in training, before that
step's update) was right. A forgetting event is a presentation that is wrong after the
example's previous presentation was right. Per example the tracker keeps the last
outcome, the number of forgetting events, whether it was ever right, and how often it
was presented: four small tensors on the training device, updated with a few
vectorised operations per batch (no host round-trip).

The state is saved with the resume state after every epoch, so a killed and resumed
run ends with the same counts as one that was never interrupted, and stored in model.pt
(``MODEL_KEY``), where the forgetting method (``svp score-method --method forgetting``)
reads it.
"""

from __future__ import annotations

import torch

from svp.errors import StageInputError

# The key of the counts in model.pt and in the resume state.
MODEL_KEY = "forgetting"
FIELDS = ("events", "ever_correct", "presentations", "last_correct")


class ForgettingTracker:
    """Per-example forgetting statistics over ``n_examples`` examples (the whole training set)."""

    def __init__(self, n_examples: int, device: torch.device):
        self.events = torch.zeros(n_examples, dtype=torch.int32, device=device)
        self.ever_correct = torch.zeros(n_examples, dtype=torch.bool, device=device)
        self.presentations = torch.zeros(n_examples, dtype=torch.int32, device=device)
        # Right at the previous presentation (False before the first: nothing to forget yet).
        self.last_correct = torch.zeros(n_examples, dtype=torch.bool, device=device)

    def update(self, index: torch.Tensor, correct: torch.Tensor) -> None:
        """Record one minibatch: ``index`` the examples (each at most once), ``correct`` their outcome."""
        forgotten = self.last_correct.index_select(0, index) & ~correct
        self.events.index_add_(0, index, forgotten.to(torch.int32))
        self.ever_correct.index_copy_(0, index, self.ever_correct.index_select(0, index) | correct)
        self.presentations.index_add_(0, index, torch.ones_like(index, dtype=torch.int32))
        self.last_correct.index_copy_(0, index, correct)

    def state_dict(self) -> dict:
        """The state on the CPU, as model.pt and the resume state store it."""
        return {name: getattr(self, name).cpu() for name in FIELDS}

    def load_state_dict(self, state: dict) -> None:
        for name in FIELDS:
            value = state[name]
            current = getattr(self, name)
            if value.shape != current.shape or value.dtype != current.dtype:
                raise StageInputError(
                    f"the resume state's forgetting counts {name!r} are {value.dtype}{tuple(value.shape)}, but this "
                    f"training needs {current.dtype}{tuple(current.shape)}; delete the resume.pt beside the model to train afresh"
                )
            current.copy_(value)
