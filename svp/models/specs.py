"""The model registry's names and specs, without torch.

Validating a config, planning a workflow and listing models only need to know which
names exist, what data each model reads, what trains it and its authors' training
settings. That is this table. ``svp.models.networks`` (which imports torch) attaches a factory to
each name here with ``@register_model``; a model registered there at run time without
an entry here gets one.

    MODEL_SPECS["preact_resnet20"]  # ModelSpec(modality="image", trainer="torch", ...)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from svp.data.encoding import DEFAULT_LENGTH


@dataclass(frozen=True)
class ModelSpec:
    """What a registered model reads, what trains it and its authors' training settings."""

    modality: str = "image"  # "image" or "text": the data sets it can be trained on
    trainer: str = "torch"  # "torch": svp.training's loop; "fasttext": svp.models.fasttext_classifier
    training_defaults: dict = field(default_factory=dict)  # config `training` keys it defaults


MODEL_SPECS: dict[str, ModelSpec] = {}


def declare_model(name: str, spec: ModelSpec | None = None) -> ModelSpec:
    """Add ``name`` to the table (every name needs a factory in ``svp.models`` too)."""
    # Silently replacing an entry would make a config name mean two things.
    if name in MODEL_SPECS:
        raise ValueError(f"model {name!r} is already registered")
    MODEL_SPECS[name] = spec or ModelSpec()
    return MODEL_SPECS[name]


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODEL_SPECS)


def model_spec(name: str) -> ModelSpec:
    """The spec of the registered model ``name``."""
    if name not in MODEL_SPECS:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(list_models())}")
    return MODEL_SPECS[name]


def training_defaults(name: str) -> dict:
    """A copy of the training settings the model's authors used (config ``training`` keys)."""
    return copy.deepcopy(model_spec(name).training_defaults)


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

# The paper's fastText proxy: dimension 10, word bigrams, rate 0.05, 5 epochs; the
# rest as in the SVP authors' fastText runs (min count 1, 10M hash buckets).
FASTTEXT_TRAINING = {
    "lr_schedule": [{"epochs": 5, "lr": 0.05}],
    "fasttext": {},  # its keys (dim, word_ngrams, ...) take the schema's defaults
}

for _name in IMAGE_MODELS:
    declare_model(_name)
for _depth in VDCNN_DEPTHS:
    declare_model(f"vdcnn{_depth}", ModelSpec("text", "torch", VDCNN_TRAINING))
declare_model("fasttext", ModelSpec("text", "fasttext", FASTTEXT_TRAINING))
