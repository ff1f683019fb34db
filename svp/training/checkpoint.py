"""Resumable training: the whole training state saved atomically after every epoch.

A killed job (pre-empted, out of time, SIGKILL) restarts from its last finished epoch
and ends with the same weights as an uninterrupted run: the state holds the model, the
optimizer (momentum buffers), the random generator that orders batches and draws
augmentations, and the history so far. A state that cannot be read, or that was saved
for other settings, is reported and training starts from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from svp.io import atomic_path

STATE_FORMAT = 1


def save_training_state(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    history: list[dict],
    fingerprint: dict,
    extra: dict | None = None,
) -> None:
    """Save the state; ``extra``: more entries to keep with it (the forgetting counts)."""
    state = {
        **(extra or {}),
        "format": STATE_FORMAT,
        "fingerprint": fingerprint,
        "epochs_done": len(history),
        "history": history,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    save_torch(state, path)


def save_torch(obj, path: str | Path) -> None:
    """``torch.save`` by write-then-rename, through a Python file, so that a full disk
    raises OSError (ENOSPC), which ``atomic_path`` reports as such.

    When the file's write fails inside torch's zip writer, torch still closes the archive,
    which fails again ("unexpected pos ...") and raises a RuntimeError that hides the
    OSError: the OSError is raised instead.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        try:
            torch.save(obj, handle)
        except RuntimeError as error:
            cause = _os_error_behind(error)
            if cause is None:
                raise
            raise cause from None


def _os_error_behind(error: BaseException) -> OSError | None:
    """The OSError that ``error`` was raised while handling (or from), if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def load_training_state(path: str | Path, fingerprint: dict, log: Callable[[str], None]) -> dict | None:
    """The saved state if it exists, is readable and belongs to this run; else None (said in ``log``)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("not a training state of this svp version")
        missing = {"fingerprint", "epochs_done", "history", "model", "optimizer", "generator"} - set(state)
        if missing:
            raise ValueError(f"missing {sorted(missing)}")
    except Exception as error:  # any unreadable file means the same thing: start over
        log(f"checkpoint {path} is corrupt ({type(error).__name__}: {error}); training from scratch")
        return None
    if state["fingerprint"] != fingerprint:
        log(f"checkpoint {path} was saved for other settings; training from scratch")
        return None
    return state


def restore_training_state(
    state: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator
) -> list[dict]:
    """Put ``state`` back into the live objects; return the history of the finished epochs."""
    model.load_state_dict(state["model"])  # copies into the parameters where they are
    optimizer.load_state_dict(state["optimizer"])  # moves its buffers to the parameters' device
    generator.set_state(state["generator"])
    if "torch_rng" in state:
        torch.set_rng_state(state["torch_rng"])
    return list(state["history"])
