"""The Trainer protocol: what trains a kind of model and scores with it. No torch here.

Each model's spec (``svp.models.specs``) names its :class:`Trainer`. A trainer says which
config ``training`` settings it takes and what its trained models give for selection
(:data:`PROBABILITIES`, :data:`EMBEDDINGS`, ...); the work is done by a module of its own
(``svp.trainers.torch_trainer``, ``svp.trainers.fasttext_trainer``), which
``svp.trainers.implementation`` imports only when a stage runs: a config check that names
fastText never loads fastText, and one that names a ResNet never loads torch.

The train and score stages (``svp.stages``) do what every trainer shares: read the
data, check the inputs and outputs, write model.pt, history.csv and metrics.json or
the score parquet. A trainer's module has ``settings(training)`` (the run's ``training``
mapping checked and completed from the schema's defaults, a ConfigError before any data
is read), ``fit(job: TrainingJob) -> FittedModel`` (None on the ranks of a run on several GPUs
that write nothing, all but rank 0), ``predict_chunks(job: ScoringJob)`` (an iterator of
:class:`Predictions` for consecutive chunks of the examples, which the score stage writes as
they come, so its memory need not grow with the data set) and ``predict(job) -> Predictions``
(all at once), and for what else it provides, ``embeddings(job)`` and
``gradient_norms(job)``: (numpy array, seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from svp.training.distributed import ONE_PROCESS, Ranks

# What a trained model can give a selection method (svp.selection.methods says which
# each method needs): class probabilities, penultimate-layer embeddings, what training
# recorded per example (forgetting counts, kept in model.pt) and per-example loss gradients.
PROBABILITIES = "probabilities"
EMBEDDINGS = "embeddings"
TRAINING_DYNAMICS = "training dynamics"
GRADIENTS = "gradients"


@dataclass(frozen=True)
class Trainer:
    """What trains a kind of model and scores with it, and the ``training`` settings it takes."""

    name: str
    title: str  # for messages: "fastText takes only ..."
    settings: tuple[str, ...]  # the config `training` keys every model it trains takes
    text_settings: tuple[str, ...] = ()  # ... and those only its text models take
    checkpoint_keys: frozenset = frozenset()  # what model.pt holds of a model it trained, besides the common keys
    own_defaults: dict = field(default_factory=dict)  # training defaults of its own, ahead of the schema's
    one_lr_piece: bool = False  # it decays the rate itself, from one {epochs, lr} piece
    options_key: str | None = None  # the `training` key holding its own settings, if any
    # What its trained models give selection (PROBABILITIES, EMBEDDINGS, ...).
    provides: frozenset = frozenset({PROBABILITIES})
    max_seed: int = 2**64 - 1  # the largest seed it takes (torch and NumPy: any 64-bit unsigned)
    # Whether it trains one model on several GPUs (a run's `gpus`; svp.training.distributed).
    several_gpus: bool = False

    def accepted_settings(self, modality: str) -> tuple[str, ...]:
        """The ``training`` keys a run of one of its models on ``modality`` data takes."""
        return self.settings + (self.text_settings if modality == "text" else ())


# svp.training's loop: SGD with momentum and a piecewise-constant learning rate.
TORCH = Trainer(
    name="torch",
    title="the torch training loop",
    settings=(
        "lr_schedule", "batch_size", "momentum", "weight_decay", "nesterov", "eval_batch_size", "eval_every",
        "mixed_precision", "length", "weights",
    ),
    text_settings=("text_length",),  # characters a character-level model reads
    checkpoint_keys=frozenset({"state_dict", "in_channels"}),
    provides=frozenset({PROBABILITIES, EMBEDDINGS, TRAINING_DYNAMICS, GRADIENTS}),
    several_gpus=True,
)

# fastText decays its rate linearly to 0 from one piece's start. The SVP paper's fastText
# proxy: 5 epochs from rate 0.05 (the schema's 181-epoch schedule is SGD's), dimension 10,
# word bigrams; the rest as in the SVP authors' runs (min count 1, 10M hash buckets). Those
# under `fasttext` are the schema's defaults, which the empty mapping here lets it fill in.
FASTTEXT = Trainer(
    name="fasttext",
    title="fastText",
    settings=("lr_schedule", "fasttext", "length"),
    checkpoint_keys=frozenset({"fasttext_model"}),
    own_defaults={"lr_schedule": [{"epochs": 5, "lr": 0.05}], "fasttext": {}},
    one_lr_piece=True,
    options_key="fasttext",
    # Its sentence vectors are what its output layer reads. It trains in one call to the
    # library, so no minibatch outcome can be counted, and it has no autograd for GraNd.
    provides=frozenset({PROBABILITIES, EMBEDDINGS}),
    max_seed=2**31 - 1,  # fastText reads its seed as a 32-bit C int
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
    # This process's place among those training the run (several: one per GPU, torch only).
    ranks: Ranks = ONE_PROCESS


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

    @classmethod
    def joined(cls, chunks: Iterable[Predictions]) -> Predictions:
        """The predictions of consecutive chunks of examples (``predict_chunks``) as one."""
        import numpy as np

        chunks = list(chunks)
        if not chunks:
            raise ValueError("no predictions to join")
        return cls(
            np.concatenate([chunk.labels for chunk in chunks]), np.concatenate([chunk.outputs for chunk in chunks]),
            chunks[0].are_logits, sum(chunk.seconds for chunk in chunks),
        )  # fmt: skip


# For the messages of the stages and trainers alike about a model.pt that cannot be used.
REMAKE_CHECKPOINT = "rerun the stage that made it (`svp train`: the train_proxy or train_target rule)"


def first_sentence(error: Exception) -> str:
    """The gist of a library's error, for a one-line message: its type and first sentence."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text.split('. ')[0][:150]}" if text else type(error).__name__
