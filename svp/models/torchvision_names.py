"""torchvision's classifiers by name (``model: torchvision/<name>``), without torch until asked.

``svp.models.specs`` reads :func:`is_torchvision_model` to know such a name is a model, and
config validation and the stages read the rest; only a question about a torchvision name
loads torchvision (and torch with it, about a second): which classifiers torchvision has
(:func:`architecture`), its weights by name (:func:`weights_enum`) and the smallest input
it documents (:func:`smallest_input`, which ``svp.models.specs.input_problem`` checks the
data's images against). Building the networks is ``svp.models.torchvision_models``'s.
"""

from __future__ import annotations

import difflib

from svp.errors import ConfigError

TORCHVISION_PREFIX = "torchvision/"


def is_torchvision_model(name) -> bool:
    """``name`` has the form ``torchvision/<name>`` (whether torchvision has it is not checked)."""
    return isinstance(name, str) and name.startswith(TORCHVISION_PREFIX) and len(name) > len(TORCHVISION_PREFIX)


def classifier_names() -> list[str]:
    """The classifiers torchvision.models has (not detection, segmentation or video models)."""
    from torchvision import models

    return models.list_models(module=models)


def architecture(name: str) -> str:
    """``resnet50`` of ``torchvision/resnet50``, after checking that torchvision has it."""
    if not is_torchvision_model(name):
        raise ConfigError(f"{name!r} is not a torchvision model name; write {TORCHVISION_PREFIX}<name>, e.g. torchvision/resnet50")
    arch = name[len(TORCHVISION_PREFIX):]
    names = classifier_names()
    if arch not in names:
        close = difflib.get_close_matches(arch, names, n=3)
        hint = f"did you mean {' or '.join(TORCHVISION_PREFIX + c for c in close)}?" if close else f"its classifiers: {', '.join(names)}"
        raise ConfigError(f"model {name!r}: torchvision.models has no classifier {arch!r}; {hint}")
    return arch


def weights_enum(name: str, weights: str):
    """torchvision's weights entry that ``weights`` names for model ``name``: ``ResNet18_Weights.IMAGENET1K_V1``,
    ``IMAGENET1K_V1`` or ``DEFAULT``; a ConfigError listing the model's own otherwise."""
    from torchvision import models

    arch = architecture(name)
    enum = models.get_model_weights(arch)
    member = weights.split(".", 1)[1] if weights.startswith(f"{enum.__name__}.") else weights
    if "." in member or member not in enum.__members__:
        available = ", ".join(f"{enum.__name__}.{m}" for m in enum.__members__)
        raise ConfigError(
            f"weights {weights!r} are not torchvision weights of {name!r}; its weights: {available}; or give the "
            "path of a local checkpoint file"
        )
    return enum[member]


def smallest_input(name: str) -> tuple[int, int]:
    """(height, width) of the smallest image the model reads, as torchvision's weights document it."""
    from torchvision import models

    enum = models.get_model_weights(architecture(name))
    return tuple(enum.DEFAULT.meta.get("min_size", (1, 1)))
