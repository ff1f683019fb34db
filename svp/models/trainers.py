"""What trains a model and scores with it: svp's torch loop, or fastText. No torch here.

Each model's spec (``svp.models.specs``) names its :class:`Trainer`. A trainer says which
config ``training`` settings it takes, and trains and scores through a module of its
own, imported only then: a config check that names fastText never loads fastText, and
one that names a ResNet never loads torch.

The train and score stages (``svp.stages``) do what every trainer shares: read the
data, check the inputs and outputs, write model.pt, history.csv and metrics.json or
the score parquet. A trainer gets a :class:`TrainingJob` and returns a
:class:`FittedModel`, or gets a :class:`ScoringJob` and returns :class:`Predictions`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Trainer:
    """What trains a kind of model and scores with it, and the ``training`` settings it takes.

    ``implementation`` names the module that does the work, imported on first use. It has
    ``settings(training)``: the run's ``training`` mapping checked and completed from the
    config schema's defaults (a ConfigError before any data is read);
    ``fit(job: TrainingJob) -> FittedModel``; and ``predict(job: ScoringJob) -> Predictions``.
    """

    name: str
    title: str  # for messages: "fastText takes only ..."
    implementation: str
    settings: tuple[str, ...]  # the config `training` keys every model it trains takes
    text_settings: tuple[str, ...] = ()  # ... and those only its text models take
    checkpoint_keys: frozenset = frozenset()  # what model.pt holds of a model it trained, besides the common keys
    own_defaults: dict = field(default_factory=dict)  # training defaults of its own, ahead of the schema's
    one_lr_piece: bool = False  # it decays the rate itself, from one {epochs, lr} piece
    options_key: str | None = None  # the `training` key holding its own settings, if any
    # The selection methods beyond uncertainty (svp.selection.methods) its models support.
    methods: tuple[str, ...] = ()

    def accepted_settings(self, modality: str) -> tuple[str, ...]:
        """The ``training`` keys a run of one of its models on ``modality`` data takes."""
        return self.settings + (self.text_settings if modality == "text" else ())

    def checked_settings(self, training: dict):
        """The run's settings object, checked and completed from the schema's defaults."""
        return self._module().settings(training)

    def fit(self, job: TrainingJob) -> FittedModel:
        return self._module().fit(job)

    def predict(self, job: ScoringJob) -> Predictions:
        return self._module().predict(job)

    def gradient_norms(self, job: ScoringJob):
        """(per-example GraNd as a numpy array, seconds): for the ``grand`` method."""
        return self._module().gradient_norms(job)

    def embeddings(self, job: ScoringJob):
        """((examples, features) numpy embeddings, seconds): for the ``kcenter`` method."""
        return self._module().embeddings(job)

    def _module(self):
        return importlib.import_module(self.implementation)


# svp.training's loop: SGD with momentum and a piecewise-constant learning rate.
TORCH = Trainer(
    name="torch",
    title="the torch training loop",
    implementation="svp.training.torch_trainer",
    settings=(
        "lr_schedule", "batch_size", "momentum", "weight_decay", "nesterov", "eval_batch_size", "eval_every",
        "mixed_precision", "weights",
    ),
    text_settings=("text_length",),  # characters a character-level model reads
    checkpoint_keys=frozenset({"state_dict", "in_channels"}),
    methods=("forgetting", "grand", "kcenter"),
)

# fastText decays its rate linearly to 0 from one piece's start. The SVP paper's fastText
# proxy: 5 epochs from rate 0.05 (the schema's 181-epoch schedule is SGD's), dimension 10,
# word bigrams; the rest as in the SVP authors' runs (min count 1, 10M hash buckets). Those
# under `fasttext` are the schema's defaults, which the empty mapping here lets it fill in.
FASTTEXT = Trainer(
    name="fasttext",
    title="fastText",
    implementation="svp.models.fasttext_classifier",
    settings=("lr_schedule", "fasttext"),
    checkpoint_keys=frozenset({"fasttext_model"}),
    own_defaults={"lr_schedule": [{"epochs": 5, "lr": 0.05}], "fasttext": {}},
    one_lr_piece=True,
    options_key="fasttext",
    # Its sentence vectors are what its output layer reads. It trains in one call to the
    # library, so no minibatch outcome can be counted, and it has no autograd for GraNd.
    methods=("kcenter",),
)

TRAINERS = (TORCH, FASTTEXT)


@dataclass
class TrainingJob:
    """One training run, as the train stage hands it to a trainer."""

    model_name: str
    training: dict  # the `training` mapping as given (a torch run's resume state is keyed by it)
    settings: Any  # what the trainer's settings() made of it
    seed: int
    train: tuple  # (x, y) of the prepared training split: images or an svp.data.encoding.TextArray, labels
    test: tuple  # (x, y) of the test split
    manifest: dict
    train_index: Any  # int64 numpy array: the training examples to use, in the subset's order
    workdir: Path  # the folder of model.pt, for scratch files
    resume_path: Path  # where a trainer that can resume keeps its state between epochs


@dataclass
class FittedModel:
    """What a trainer hands back: the model, as model.pt stores it, and how training went."""

    model: dict  # model.pt's keys for this model (the trainer's checkpoint_keys)
    history: list[dict]  # one row per epoch (or one for the run), as history.csv
    test: dict  # test_error, test_accuracy (percent) and test_loss of the final model
    seconds: float  # training wall time, without the learning curve's test evaluations
    device: str


@dataclass
class ScoringJob:
    """Scoring every training example with a trained model, as the score stage hands it over."""

    checkpoint: dict  # model.pt's contents, already checked against the data's modality and classes
    checkpoint_path: Path  # for messages
    train: tuple  # (x, y) of the prepared training split
    manifest: dict
    data_dir: Path  # for messages
    batch_size: int
    workdir: Path  # the folder of the scores, for scratch files


@dataclass
class Predictions:
    labels: Any  # numpy labels, in example order
    outputs: Any  # (N, classes) numpy logits or probabilities
    are_logits: bool
    seconds: float  # the model's time, without reading the data or the model


# For the messages of the stages and trainers alike about a model.pt that cannot be used.
REMAKE_CHECKPOINT = "rerun the stage that made it (`svp train`: the train_proxy or train_target rule)"


def first_sentence(error: Exception) -> str:
    """The gist of a library's error, for a one-line message: its type and first sentence."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text.split('. ')[0][:150]}" if text else type(error).__name__
