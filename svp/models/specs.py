"""The model registry's names and specs, without torch.

Validating a config, planning a workflow and listing models only need to know which
names exist, what data each model reads, which trainer trains it (``svp.trainers``:
the torch loop or fastText, and so which ``training`` settings a run of it takes) and its
authors' training settings. That is this table. ``svp.models.networks`` (which imports
torch) attaches a factory to each torch model's name here with ``@register_model``; a
model registered there at run time without an entry here gets one.

    MODEL_SPECS["preact_resnet20"]  # ModelSpec(modality="image", trainer=TORCH, ...)
    implementation(model_spec("fasttext").trainer).fit(job)  # svp.trainers: imports fastText, trains
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from svp.models.torchvision_names import TORCHVISION_PREFIX, is_torchvision_model
from svp.schema import DEFAULT_LENGTH
from svp.trainers.base import FASTTEXT, TORCH, Trainer


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model reads, what trains it and its authors' training settings."""

    modality: str = "image"  # "image" or "text": the data sets it can be trained on
    trainer: Trainer = TORCH
    training_defaults: dict = field(default_factory=dict)  # config `training` keys it defaults
    # The smallest image side it takes: its strides and pools shrink a smaller image to
    # nothing ("Output size is too small"). Measured for each model: IMAGE_MODEL_SIDES.
    min_image_side: int = 1

    @property
    def settings(self) -> tuple[str, ...]:
        """The config ``training`` keys a run of this model takes."""
        return self.trainer.accepted_settings(self.modality)


MODEL_SPECS: dict[str, ModelSpec] = {}


def declare_model(name: str, spec: ModelSpec | None = None) -> ModelSpec:
    """Add ``name`` to the table (a torch model needs a factory in ``svp.models.networks`` too)."""
    # Silently replacing an entry would make a config name mean two things.
    if name in MODEL_SPECS:
        raise ValueError(f"model {name!r} is already registered")
    spec = spec or ModelSpec()
    untaken = sorted(set(spec.training_defaults) - set(spec.settings))
    if untaken:
        raise ValueError(f"model {name!r}: {spec.trainer.title} does not take its default training setting(s) {untaken}")
    MODEL_SPECS[name] = spec
    return spec


def list_models() -> list[str]:
    """Registered model names, sorted (``torchvision/<name>`` models come on top of these)."""
    return sorted(MODEL_SPECS)


# Any classifier of torchvision.models, by name: `torchvision/resnet50`. They are image
# models trained by the torch loop with the schema's defaults; whether torchvision has the
# name, and the smallest image it takes, are asked of torchvision (svp.models.torchvision_names)
# when a config or a job names one, not here.
TORCHVISION_SPEC = ModelSpec()


def is_model(name) -> bool:
    """``name`` is a registered model or a ``torchvision/<name>`` model."""
    return name in MODEL_SPECS or is_torchvision_model(name)


def model_spec(name: str) -> ModelSpec:
    """The spec of the registered model ``name``, or of a ``torchvision/<name>`` model."""
    if is_torchvision_model(name) and name not in MODEL_SPECS:
        return TORCHVISION_SPEC
    if name not in MODEL_SPECS:
        raise ValueError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())}, or {TORCHVISION_PREFIX}<name> "
            "for a torchvision.models classifier"
        )
    return MODEL_SPECS[name]


def input_problem(name: str, image_shape) -> str | None:
    """Why the model ``name`` cannot take images of ``image_shape`` (height, width, ...), or
    None: the one check of a model against its input, asked by config validation where the
    data's shape is known and by the train and score stages from the prepared data. A
    ``torchvision/<name>`` model takes colour images of the least size torchvision documents
    (asking loads torchvision); whether it reads that exact size is tried before training
    (``svp.models.torchvision_models.check_input``)."""
    spec = model_spec(name)
    if spec.modality != "image" or image_shape is None:
        return None
    height, width = int(image_shape[0]), int(image_shape[1])
    torchvision = is_torchvision_model(name) and name not in MODEL_SPECS
    if torchvision and len(image_shape) > 2 and int(image_shape[2]) != 3:
        return (
            f"model {name!r} reads colour (RGB, 3-channel) images, but the data's images have {int(image_shape[2])} "
            "channel(s); prepare the data in colour (image_folder: dataset.channels: 3) or choose an svp model (`svp models`)"
        )
    side = min(height, width)
    least = min_image_side(name)
    if side >= least:
        return None
    fitting = [m for m in list_models() if model_spec(m).modality == "image" and model_spec(m).min_image_side <= side]
    why = "the smallest input torchvision documents for it" if torchvision else "its strides and pools shrink smaller ones to nothing"
    return (
        f"model {name!r} takes images of at least {least}x{least} pixels ({why}), but the data's images are "
        f"{height}x{width}; choose a model that takes them ({', '.join(fitting) or 'none'}), or larger images "
        "(dataset.image_size for image_folder and imagenet)"
    )


def min_image_side(name: str) -> int:
    """The smallest image side model ``name`` takes: its spec's, or, for a ``torchvision/<name>``
    model, the least size torchvision documents (which loads torchvision: only such names do)."""
    if is_torchvision_model(name) and name not in MODEL_SPECS:
        from svp.models.torchvision_names import smallest_input

        return max(smallest_input(name))
    return model_spec(name).min_image_side


def training_defaults(name: str) -> dict:
    """A copy of the training settings the model's authors used (config ``training`` keys),
    its trainer's own defaults included; the config schema's defaults fill in the rest."""
    spec = model_spec(name)
    return copy.deepcopy({**spec.trainer.own_defaults, **spec.training_defaults})


# Images (svp.models): pre-activation ResNets for CIFAR, ResNets with a CIFAR stem (and
# ResNet-9, svp.models.resnet9), and plain CNNs for tiny inputs and for CIFAR on a CPU. All use
# the config schema's defaults.
IMAGE_MODELS = (
    *(f"preact_resnet{depth}" for depth in (8, 20, 56, 110, 164)),
    *(f"resnet{depth}" for depth in (9, 18, 34, 50, 101, 152)),
    "small_cnn",
    "tiny_cnn",
    *(f"fast_cnn{width}" for width in (16, 20, 24, 32)),
)

# The SVP authors' Amazon schedule for VDCNN: batch 128, weight decay 1e-4, and 5
# stages of 3 epochs with the learning rate halving from 0.01 (SGD, momentum 0.9).
VDCNN_TRAINING = {
    "lr_schedule": [{"epochs": 3, "lr": 0.01 / 2**stage} for stage in range(5)],
    "batch_size": 128,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "text_length": DEFAULT_LENGTH,
}
VDCNN_DEPTHS = (9, 17, 29, 49)

# The smallest image side each image model takes, measured with svp's networks (a training
# and an inference pass on sides 1 to 12, 16, 24 and 32, one and three channels): resnet9's
# three max pools and fast_cnn's stride-2 stem and max pools need 8 and 7 pixels; the
# ResNets (adaptive average pooling) and the small CNNs take any size.
IMAGE_MODEL_SIDES = {"resnet9": 8, **{f"fast_cnn{width}": 7 for width in (16, 20, 24, 32)}}

for _name in IMAGE_MODELS:
    declare_model(_name, ModelSpec(min_image_side=IMAGE_MODEL_SIDES.get(_name, 1)))
for _depth in VDCNN_DEPTHS:
    declare_model(f"vdcnn{_depth}", ModelSpec("text", TORCH, VDCNN_TRAINING))
# The paper's Amazon proxy (Joulin et al. 2017): fastText's own defaults are the paper's.
declare_model("fasttext", ModelSpec("text", FASTTEXT))
