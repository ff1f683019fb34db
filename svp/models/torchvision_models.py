"""Any torchvision.models classifier by name (``model: torchvision/resnet50``), with its weights.

torchvision builds the network (``torchvision.models.get_model``) with as many outputs as
the data has classes. ``training.weights`` starts it from trained weights instead of a
seeded draw: a torchvision weights name (``ResNet18_Weights.IMAGENET1K_V1``, or just
``IMAGENET1K_V1`` or ``DEFAULT``), which torchvision downloads into torch's hub cache, or
the path of a local checkpoint (``svp.models.pretrained``). Trained for other classes,
the classifier head (the last ``nn.Linear``) is replaced by a fresh one, drawn from the
run's seed.

Before a step is taken the model is checked against the input it meets: torchvision's
classifiers read RGB images, and some need a least size (Inception 75 px, ViT exactly
224): one forward pass of a two-image batch at the data's size says whether it can. The
least size torchvision documents is checked earlier, with every model's, where the data's
image size is first known (``svp.models.specs.input_problem``: config validation, or the
train and score stages); the names and weights are ``svp.models.torchvision_names``'.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from svp.errors import StageInputError
from svp.models.torchvision_names import architecture, smallest_input, weights_enum
from svp.trainers.base import first_sentence

# Builders whose defaults return auxiliary outputs in training mode (a tuple, not logits)
# or warn about their initialisation: svp trains on the main output only.
BUILDER_OPTIONS = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}


def create(name: str, num_classes: int, in_channels: int = 3, weights: str | None = None) -> nn.Module:
    """torchvision's ``name`` with ``num_classes`` outputs: fresh (drawn from torch's seed), or from
    torchvision's ``weights`` (a name; a local checkpoint is loaded by svp.models.pretrained)."""
    arch = architecture(name)
    if in_channels != 3:
        raise StageInputError(
            f"model {name!r} reads colour (RGB, 3-channel) images, but the data has {in_channels} channel(s); "
            "prepare the data in colour (image_folder: dataset.channels: 3) or choose an svp model (`svp models`)"
        )
    from torchvision import models

    options = BUILDER_OPTIONS.get(arch, {})
    if weights is None:
        return models.get_model(arch, weights=None, num_classes=num_classes, **options)
    entry = weights_enum(name, weights)
    try:
        model = models.get_model(arch, weights=entry, **{k: v for k, v in options.items() if k != "init_weights"})
    except (OSError, RuntimeError, ValueError) as error:  # URLError is an OSError; a partial download fails the hash
        cache = f"{torch.hub.get_dir()}/checkpoints/{entry.url.rsplit('/', 1)[-1]}"
        raise StageInputError(
            f"model {name!r}: cannot get the weights {entry} from {entry.url} ({first_sentence(error)}). Without "
            f"a network, download the file elsewhere and put it at {cache} (torch's hub cache, $TORCH_HOME), "
            "or set training.weights to the path of a local checkpoint"
        ) from None
    trained_for = len(entry.meta.get("categories") or ()) or None
    if trained_for != num_classes:
        replace_head(model, num_classes)
        print(f"{name}: weights {entry} were trained for {trained_for} classes; a fresh classifier head "
              f"for {num_classes} classes replaces theirs", flush=True)
    return model


def head_name(model: nn.Module) -> str:
    """The qualified name of the model's classifier head: its last ``nn.Linear``, in registration order."""
    linears = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise StageInputError(f"{type(model).__name__} has no nn.Linear classifier head to replace")
    return linears[-1]


def replace_head(model: nn.Module, num_classes: int) -> None:
    """Swap the classifier head for a fresh ``nn.Linear`` with ``num_classes`` outputs (torch's seed draws it)."""
    name = head_name(model)
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child) if not child.isdigit() else parent[int(child)]
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    if child.isdigit():
        parent[int(child)] = new
    else:
        setattr(parent, child, new)


@torch.no_grad()
def check_input(model: nn.Module, name: str, image_shape) -> None:
    """Run the model once on two blank images of ``image_shape`` (H, W, C): refuse a size it cannot read."""
    height, width, channels = image_shape
    least = smallest_input(name)
    problem = None
    if height < least[0] or width < least[1]:
        problem = f"torchvision documents its smallest input as {least[0]}x{least[1]} pixels"
    else:
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model(torch.zeros(2, channels, height, width))
        except Exception as error:  # noqa: BLE001  whatever the network raises for a size it cannot read
            problem = first_sentence(error)
        finally:
            model.train(was_training)
    if problem:
        raise StageInputError(
            f"model {name!r} cannot read the data's {height}x{width} images ({problem}); set dataset.image_size to "
            f"at least {max(least)} (ViTs read exactly the size they were built for: 224), or choose another model"
        )
