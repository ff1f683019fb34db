"""Start a torch model from the weights in a local checkpoint file (``training.weights: path``).

The file may hold a bare state dict (what ``torch.save(model.state_dict())`` writes, and
torchvision's downloads), svp's model.pt (``state_dict``), or a training checkpoint of
torchvision's reference scripts (``model``); keys saved from a DistributedDataParallel
model (``module.`` prefixes) are read too. Every key and shape must be the model's, but
for the classifier head (the last ``nn.Linear``): trained for another number of classes,
it keeps its fresh weights (drawn from the run's seed) and the rest is loaded.
Config validation uses the path checks here without loading torch.
"""

from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

from svp.errors import ConfigError, StageInputError
from svp.trainers.base import first_sentence

if TYPE_CHECKING:
    from torch import nn

# Suffixes that mark a `training.weights` value as a file rather than a torchvision weights name.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".tar")


def is_path(weights: str) -> bool:
    """Whether ``weights`` names a file (an existing one, or one written as a path) rather than torchvision weights."""
    return Path(weights).expanduser().is_file() or "/" in weights or "\\" in weights or weights.endswith(CHECKPOINT_SUFFIXES)


def check_path(weights: str, where: str) -> None:
    """A ConfigError naming ``where`` (the config key) unless ``weights`` is a readable file."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"{where}: checkpoint file not found: {path.resolve()}; fix the path, or give torchvision weights "
            "by name (e.g. ResNet18_Weights.IMAGENET1K_V1) for a torchvision/<name> model"
        )


def _shown(keys, limit: int = 5) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def read_state_dict(path: str | Path) -> dict:
    """The state dict in the checkpoint at ``path``, refused with a message naming the file."""
    import torch  # here: config validation reads this module's path checks without torch

    path = Path(path).expanduser()
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise StageInputError(f"{path}: checkpoint file not found; fix training.weights in the config") from None
    except Exception as error:  # noqa: BLE001  torch's reader fails on a damaged or foreign file with whatever it hit
        raise StageInputError(
            f"{path}: not a readable torch checkpoint ({first_sentence(error)}); give a file written by torch.save"
        ) from None
    if isinstance(stored, dict):
        for key in ("state_dict", "model"):
            if isinstance(stored.get(key), dict):
                stored = stored[key]
                break
    if not isinstance(stored, dict) or not stored or not all(isinstance(v, torch.Tensor) for v in stored.values()):
        raise StageInputError(
            f"{path}: holds no state dict (a mapping of parameter names to tensors, alone or under 'state_dict' "
            "or 'model'); save one with torch.save(model.state_dict(), path)"
        )
    if all(key.startswith("module.") for key in stored):  # saved from a DistributedDataParallel wrapper
        stored = {key[len("module."):]: value for key, value in stored.items()}
    return stored


def load_weights(model: nn.Module, path: str | Path, model_name: str, head: str | None) -> None:
    """Load the checkpoint at ``path`` into ``model`` (named ``model_name`` in messages).

    ``head`` is the qualified name of the classifier head (its last nn.Linear), whose
    weights may differ in shape (another number of classes): then the fresh head stays.
    """
    stored = read_state_dict(path)
    own = model.state_dict()
    missing, unexpected = set(own) - set(stored), set(stored) - set(own)
    if missing or unexpected:
        parts = [f"missing {_shown(missing)}" if missing else "", f"unexpected {_shown(unexpected)}" if unexpected else ""]
        raise StageInputError(
            f"{path}: its weights are not those of model {model_name!r}: keys {'; '.join(p for p in parts if p)}; "
            "give a checkpoint of the same architecture"
        )
    head_keys = {f"{head}.weight", f"{head}.bias"} if head else set()
    wrong = {key for key in own if tuple(stored[key].shape) != tuple(own[key].shape)}
    if wrong - head_keys:
        shown = "; ".join(f"{k} {tuple(stored[k].shape)} instead of {tuple(own[k].shape)}" for k in sorted(wrong - head_keys)[:3])
        raise StageInputError(
            f"{path}: its weights do not fit model {model_name!r}: {shown}; give a checkpoint of the same architecture"
        )
    if wrong:
        classes = stored[f"{head}.weight"].shape[0]
        print(f"{path}: trained for {classes} classes; a fresh classifier head ({head}) replaces its own", flush=True)
        stored = {key: value for key, value in stored.items() if key not in head_keys}
    model.load_state_dict(stored, strict=not wrong)
