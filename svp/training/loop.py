"""Train a torch classifier (images or texts) on (a subset of) a prepared data set, fast.

The whole data set is held as one uint8 tensor on the training device (the GPU when
there is one): images as (N, C, H, W) pixels stored channels-last (:class:`ImageData`),
texts as (N, length) character codes (:class:`TextData`). Images too large for that are
read from disk by DataLoader workers instead (``svp.training.disk_data``); the loop asks
either for its batches (``training_batches``, ``inference_batches``) and is the same.
In memory a subset is an index tensor, batches are gathered by index, and image augmentation (random crop with zero padding, horizontal flip) is
applied to the whole batch at once; texts are not augmented. Optimisation follows the
SVP authors' CIFAR code: SGD with momentum and weight decay and a piecewise-constant
learning rate, one value per epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from svp.training.checkpoint import load_training_state, restore_training_state, save_training_state
from svp.training.distributed import ONE_PROCESS, Ranks, parallel, summed
from svp.training.forgetting import MODEL_KEY as FORGETTING_KEY, ForgettingTracker
from svp.schema import training_schema_defaults
from svp.data.encoding import encode_characters
from svp.schema import DEFAULT_LENGTH, VOCAB_SIZE
from svp.errors import ConfigError


# Training lengths (the `length` setting): on a subset, each lr_schedule epoch is one pass
# over the subset, or as many optimizer steps as one pass over the whole training set.
EPOCHS = "epochs"
STEPS = "steps"
LENGTHS = (EPOCHS, STEPS)

# The config schema's defaults (svp/config.schema.yaml): `svp train` given only some
# settings trains as the workflow would with a config giving the same ones.
SCHEMA_DEFAULTS = training_schema_defaults()


@dataclass
class TrainingSettings:
    """Hyper-parameters of one training run (the config's ``training`` mapping)."""

    # (epochs, learning rate) pieces, run in order; the schema's: the authors' 181-epoch CIFAR schedule.
    lr_schedule: list[dict] = field(default_factory=lambda: copy.deepcopy(SCHEMA_DEFAULTS["lr_schedule"]))
    batch_size: int = SCHEMA_DEFAULTS["batch_size"]
    momentum: float = SCHEMA_DEFAULTS["momentum"]
    weight_decay: float = SCHEMA_DEFAULTS["weight_decay"]
    nesterov: bool = SCHEMA_DEFAULTS["nesterov"]
    eval_batch_size: int = SCHEMA_DEFAULTS["eval_batch_size"]
    eval_every: int = SCHEMA_DEFAULTS["eval_every"]  # epochs between test-set evaluations for the learning curve; 0: final only
    mixed_precision: bool = SCHEMA_DEFAULTS["mixed_precision"]  # bfloat16 autocast, on CUDA only
    text_length: int = DEFAULT_LENGTH  # characters per text, for character-level text models
    # What an epoch of lr_schedule counts on a subset: a pass over it (epochs, SVP's protocol),
    # or as many steps as a pass over the whole training set (steps: the full-data run's steps).
    length: str = EPOCHS
    weights: str | None = None  # start from these weights: torchvision's by name, or a local checkpoint's path

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingSettings":
        """The settings of ``values`` (the config's ``training`` mapping), each checked: a
        run that cannot go on is refused here, before any data is read or epoch run."""
        if not isinstance(values, dict):
            raise ConfigError(f"training settings must be a mapping of setting to value, got {values!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
        checked = {name: _checked_setting(name, value) for name, value in values.items()}
        return cls(**checked)

    @property
    def epochs(self) -> int:
        return sum(int(piece["epochs"]) for piece in self.lr_schedule)

    def lr_at(self, epoch: int) -> float:
        """Learning rate of the 0-based ``epoch``."""
        end = 0
        for piece in self.lr_schedule:
            end += int(piece["epochs"])
            if epoch < end:
                return float(piece["lr"])
        raise IndexError(f"epoch {epoch} is past the schedule's {self.epochs} epochs")


# Whole numbers and their least values; other numbers finite, >= 0 and below a bound (momentum 1
# would never forget a gradient); flags true or false. As the config schema has them.
WHOLE_SETTINGS = {"batch_size": 1, "eval_batch_size": 1, "eval_every": 0, "text_length": 1}
NUMBER_SETTINGS = {"momentum": 1.0, "weight_decay": math.inf}
FLAG_SETTINGS = ("nesterov", "mixed_precision")


def _whole_number(key: str, value, least: int) -> int:
    """``value`` as an int >= ``least``; a float with a whole value (128.0) is taken as that int."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"training setting {key!r}: {value!r} is not a whole number >= {least}")
    return value


def _number(key: str, value, positive: bool = False, below: float = math.inf) -> float:
    """``value`` as a finite float >= 0 (> 0 if ``positive``) and below ``below``."""
    number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not number or value < 0 or (positive and value == 0) or value >= below:
        wanted = f"{'> 0' if positive else '>= 0'}" + ("" if below == math.inf else f" and < {below:g}")
        raise ConfigError(f"training setting {key!r}: {value!r} is not a finite number {wanted}")
    return float(value)


def _checked_setting(name: str, value):
    if name in WHOLE_SETTINGS:
        return _whole_number(name, value, WHOLE_SETTINGS[name])
    if name in NUMBER_SETTINGS:
        return _number(name, value, below=NUMBER_SETTINGS[name])
    if name == "weights":
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"training setting 'weights': {value!r} is not torchvision weights' name or a checkpoint's path")
        return value
    if name in FLAG_SETTINGS:
        if not isinstance(value, bool):
            raise ConfigError(f"training setting {name!r}: {value!r} is not true or false")
        return value
    if name == "length":
        if value not in LENGTHS:
            raise ConfigError(f"training setting 'length': {value!r} is not one of {', '.join(LENGTHS)}")
        return value
    return _checked_schedule(value)


@dataclass(frozen=True)
class StepPlan:
    """How many optimizer steps a run takes, and the learning rate of each.

    ``steps_per_epoch`` is what one lr_schedule epoch counts: a pass over the training
    index (``length: epochs``), or a pass over the whole training set (``length:
    steps``), which makes a subset run take the full-data run's steps with the schedule
    stretched to match: each piece ends at the step where the full-data run's ends.
    Training passes over the subset, reshuffled each time, until ``total_steps``; the last
    pass may stop part way.
    """

    total_steps: int
    batches_per_pass: int
    boundaries: tuple[int, ...]  # the step at which each lr_schedule piece ends
    rates: tuple[float, ...]

    @classmethod
    def of(cls, settings: "TrainingSettings", n_full: int, n_train: int) -> "StepPlan":
        if n_train < 1:
            raise ValueError("training needs at least one example")
        batches_per_pass = math.ceil(n_train / settings.batch_size)
        steps_per_epoch = math.ceil(n_full / settings.batch_size) if settings.length == STEPS else batches_per_pass
        ends = np.cumsum([int(piece["epochs"]) for piece in settings.lr_schedule]) * steps_per_epoch
        rates = tuple(float(piece["lr"]) for piece in settings.lr_schedule)
        return cls(int(ends[-1]), batches_per_pass, tuple(int(end) for end in ends), rates)

    @property
    def passes(self) -> int:
        return math.ceil(self.total_steps / self.batches_per_pass)

    def lr_at_step(self, step: int) -> float:
        """The learning rate of the 0-based ``step``."""
        for end, rate in zip(self.boundaries, self.rates):
            if step < end:
                return rate
        raise IndexError(f"step {step} is past the run's {self.total_steps} steps")

    def batches_in_pass(self, done: int) -> int:
        """Batches of the 0-based pass ``done``: all of the subset's, or the steps left."""
        return min(self.batches_per_pass, self.total_steps - done * self.batches_per_pass)


def _checked_schedule(schedule) -> list[dict]:
    """The lr_schedule: at least one piece, each {epochs: whole number >= 1, lr: finite number > 0}."""
    if not isinstance(schedule, list) or not schedule:
        raise ConfigError(
            f"training setting 'lr_schedule': {schedule!r} is not a list of at least one piece; "
            'give e.g. [{"epochs": 10, "lr": 0.1}]'
        )
    checked = []
    for position, piece in enumerate(schedule):
        key = f"lr_schedule[{position}]"
        if not isinstance(piece, dict) or set(piece) != {"epochs", "lr"}:
            raise ConfigError(f"training setting {key!r}: {piece!r} is not a piece {{epochs: ..., lr: ...}}")
        epochs = _whole_number(f"{key}.epochs", piece["epochs"], 1)
        checked.append({"epochs": epochs, "lr": _number(f"{key}.lr", piece["lr"], positive=True)})
    return checked


@dataclass
class ImageData:
    """Images as uint8 (N, C, H, W) plus labels, with what is needed to feed a model.

    The pixels are stored channels-last (each pixel's channels side by side, as in the
    prepared arrays): ``images`` is an (N, C, H, W) view with channels-last strides, and
    every batch comes out in that layout too, which convolutions read fastest (oneDNN on
    CPUs, tensor cores on GPUs; svp.stages puts image models in the same layout).
    """

    images: torch.Tensor
    labels: torch.Tensor
    mean: torch.Tensor  # per channel, in [0, 1] units, shape (1, C, 1, 1)
    std: torch.Tensor

    @classmethod
    def from_arrays(cls, x, y, mean, std, device: torch.device) -> "ImageData":
        """From uint8 (N, H, W, C) pixels ``x`` and labels ``y``."""
        pixels = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        labels = torch.from_numpy(y).long().to(device)
        as_channels = lambda v: torch.tensor(v, dtype=torch.float32, device=device).view(1, -1, 1, 1)  # noqa: E731
        return cls(pixels.permute(0, 3, 1, 2), labels, as_channels(mean), as_channels(std))

    def __post_init__(self) -> None:
        # uint8 pixels p become (p - 255 mean) / (255 std), channel by channel. Spelt out for
        # every value of an image in channels-last order, so that normalising a batch is a
        # plain vector operation per image (a (1, C, 1, 1) broadcast is 4x slower on CPUs).
        pixels_per_image = self.images.shape[2] * self.images.shape[3]
        self._shift = (self.mean * 255.0).flatten().repeat(pixels_per_image)
        self._scale = (self.std * 255.0).flatten().repeat(pixels_per_image)

    def __len__(self) -> int:
        return len(self.labels)

    def pixels(self, index: torch.Tensor | slice) -> torch.Tensor:
        """uint8 (B, C, H, W) images of the examples in ``index``, channels-last.

        One copy for an index tensor; a slice (consecutive examples) is a view.
        """
        if isinstance(index, slice):
            return self.images[index]
        return self.images.permute(0, 2, 3, 1).index_select(0, index).permute(0, 3, 1, 2)

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised float images and labels of the examples in ``index`` (a tensor or a slice)."""
        return self.normalise(self.pixels(index)), _rows(self.labels, index)

    def augmented_batch(
        self, index: torch.Tensor, augment: dict, generator: torch.Generator, drawn: int | None = None,
        positions: slice = slice(None),
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``batch``, randomly cropped and flipped (``augment``: the manifest's) before normalising.

        Augmenting the uint8 pixels pads with black, as torchvision's RandomCrop does, and
        moves a quarter of the bytes that float images would. ``drawn`` and ``positions``:
        a rank's share of a global batch (``augment_batch``).
        """
        images = augment_batch(self.pixels(index), augment["crop_padding"], augment["flip"], generator, drawn, positions)
        return self.normalise(images), self.labels.index_select(0, index)

    def training_batches(
        self, order: torch.Tensor, batch_size: int, augment: dict | None, generator: torch.Generator,
        ranks: Ranks = ONE_PROCESS,
    ):
        """(index, inputs, labels) of this rank's share of each batch of ``order``, augmented
        unless ``augment`` is None. The crops and flips are drawn for each whole (global)
        batch, so every rank draws what one process would and their generators stay in step."""
        mine = ranks.own()
        for start in range(0, len(order), batch_size):
            global_batch = order[start : start + batch_size]
            index = global_batch[mine]  # all of it for one process
            if augment is None:
                yield (index, *self.batch(index))
            else:
                yield (index, *self.augmented_batch(index, augment, generator, len(global_batch), mine))

    def inference_batches(self, batch_size: int):
        return _inference_batches(self, batch_size)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) pixels to float, less the channel mean, over the channel std.

        The result is channels-last. The subtraction converts the pixels as it reads them
        (exactly: float32 holds every uint8), so the batch is written twice, not three times.
        """
        batch, channels, height, width = images.shape
        values = images.permute(0, 2, 3, 1).reshape(batch, height * width * channels)  # a view of a channels-last batch
        normalised = torch.sub(values, self._shift).div_(self._scale)
        return normalised.view(batch, height, width, channels).permute(0, 3, 1, 2)

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]

    @property
    def device(self) -> torch.device:
        return self.images.device


@dataclass
class TextData:
    """Texts as uint8 character codes (N, length), padded with 0, plus labels.

    The codes index ``svp.data.encoding.ALPHABET`` (see ``svp.data.encoding.encode_characters``); a model
    reads them as ``in_channels`` symbols, the size of the alphabet with padding and
    unknown. Nothing is normalised or augmented.
    """

    characters: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_texts(cls, texts, y, length: int, device: torch.device) -> "TextData":
        """From an ``svp.data.encoding.TextArray`` and its labels: each text's first ``length`` characters."""
        characters = torch.from_numpy(encode_characters(texts, length)).to(device)
        return cls(characters, torch.from_numpy(y).long().to(device))

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Character codes (int64, for an embedding) and labels of the examples in ``index``."""
        return _rows(self.characters, index).long(), _rows(self.labels, index)

    def training_batches(
        self, order: torch.Tensor, batch_size: int, augment: dict | None, generator: torch.Generator,
        ranks: Ranks = ONE_PROCESS,
    ):
        """(index, inputs, labels) of this rank's share of each batch of ``order``; texts are not augmented."""
        for index in ranks.batches(order, batch_size):
            yield (index, *self.batch(index))

    def inference_batches(self, batch_size: int):
        return _inference_batches(self, batch_size)

    @property
    def in_channels(self) -> int:
        return VOCAB_SIZE

    @property
    def device(self) -> torch.device:
        return self.characters.device


def _inference_batches(data, batch_size: int):
    """(inputs, labels) of every example, in order, un-augmented: views of the data, not copies."""
    for start in range(0, len(data), batch_size):
        yield data.batch(slice(start, start + batch_size))


def _rows(tensor: torch.Tensor, index: torch.Tensor | slice) -> torch.Tensor:
    """The rows ``index`` of ``tensor``: a view for a slice, a copy for an index tensor."""
    return tensor[index] if isinstance(index, slice) else tensor.index_select(0, index)


def augment_batch(
    images: torch.Tensor, crop_padding: int, flip: bool, generator: torch.Generator, drawn: int | None = None,
    positions: slice = slice(None),
) -> torch.Tensor:
    """Random crop after zero padding, and random horizontal flip, for a whole batch.

    Both are one gather: each output pixel's position in the padded image is computed
    from the example's crop offset and flip, so the batch is copied once whatever the
    augmentation (advanced indexing, or a flip after the crop, would copy it several times).
    ``images`` is (B, C, H, W); the result has the same values whatever its memory
    layout, and is channels-last (all of a pixel's channels move together).

    Under DistributedDataParallel ``images`` is a rank's share of a global batch: the
    offsets and flips are drawn for all ``drawn`` examples of the global batch and those at
    ``positions`` (the rank's, ``svp.training.distributed.Ranks.own``) are applied, so each
    example is augmented as in a single process and the generators of all ranks stay in step.
    """
    if not crop_padding and not flip:  # draws no random numbers either
        return images
    batch, channels, height, width = images.shape
    drawn = batch if drawn is None else drawn
    device = images.device
    pixels = images.permute(0, 2, 3, 1)  # (B, H, W, C): a view of a channels-last batch
    padded = F.pad(pixels, (0, 0, crop_padding, crop_padding, crop_padding, crop_padding)) if crop_padding else pixels
    padded_width = width + 2 * crop_padding
    if crop_padding:
        top = torch.randint(0, 2 * crop_padding + 1, (drawn, 1, 1), generator=generator, device=device)[positions]
        left = torch.randint(0, 2 * crop_padding + 1, (drawn, 1, 1), generator=generator, device=device)[positions]
    else:
        top = left = torch.zeros((batch, 1, 1), dtype=torch.long, device=device)
    columns = torch.arange(width, device=device).view(1, 1, width)
    if flip:
        flipped = (torch.rand(drawn, generator=generator, device=device) < 0.5)[positions]
        columns = torch.where(flipped.view(batch, 1, 1), width - 1 - columns, columns)
    rows = torch.arange(height, device=device).view(1, height, 1)
    positions = (top + rows) * padded_width + left + columns  # (batch, height, width) in the padded image
    positions = positions.view(batch, height * width, 1).expand(batch, height * width, channels)
    # Sizes spelt out: a rank's share of a global batch may be empty (the last, smallest one).
    cropped = padded.reshape(batch, (height + 2 * crop_padding) * padded_width, channels).gather(1, positions)
    return cropped.view(batch, height, width, channels).permute(0, 3, 1, 2)


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, enabled: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled and device.type == "cuda")


# Logits held at once by a chunk of scoring: about 8 MiB of float32 values, whatever the
# data set's size (2,097 examples of 1,000 classes, 209,715 of 10). The score stage's
# float64 work on a chunk takes several times that: at 2^23 values, scoring 98,000
# images of 100 classes peaked 570 MiB above 24,500 (BENCHMARKS.md).
CHUNK_VALUES = 1 << 21


def on_cpu_in_chunks(tensors: Iterable[torch.Tensor], values: int = CHUNK_VALUES) -> Iterator[torch.Tensor]:
    """``tensors`` (rows of consecutive examples, on any device) joined into chunks of about
    ``values`` values (whole tensors), each copied to the CPU once: a copy per batch would
    stall a GPU at every batch."""
    pending, held = [], 0
    for tensor in tensors:
        pending.append(tensor)
        held += tensor.numel()
        if held >= values:
            yield torch.cat(pending).cpu()
            pending, held = [], 0
    if pending:
        yield torch.cat(pending).cpu()


def logit_chunks(
    model: torch.nn.Module, data: ImageData | TextData, batch_size: int, mixed_precision: bool = False,
    values: int = CHUNK_VALUES,
) -> Iterator[torch.Tensor]:
    """Logits for every example of ``data``, in order, on un-augmented inputs: on the CPU,
    a chunk of consecutive examples at a time, each of about ``values`` logits (whole batches).

    With ``mixed_precision`` (on CUDA) the model runs under bfloat16 autocast, as the test
    evaluation of a run trained that way does; otherwise in float32, as scoring always does.
    """
    model.eval()

    def logits():
        for inputs, _ in data.inference_batches(batch_size):
            with torch.no_grad(), autocast(data.device, mixed_precision):
                yield model(inputs).float()

    return on_cpu_in_chunks(logits(), values)


def predict_logits(
    model: torch.nn.Module, data: ImageData | TextData, batch_size: int, mixed_precision: bool = False
) -> torch.Tensor:
    """Logits for every example of ``data`` at once (``logit_chunks`` joined), on the CPU."""
    chunks = list(logit_chunks(model, data, batch_size, mixed_precision))
    return torch.cat(chunks) if chunks else torch.empty(0)


def evaluate(model: torch.nn.Module, data: ImageData | TextData, settings: TrainingSettings) -> dict:
    """Test loss, accuracy and error (percent) of ``model`` as it is now."""
    logits = predict_logits(model, data, settings.eval_batch_size, settings.mixed_precision)
    labels = data.labels.cpu()
    accuracy = 100.0 * (logits.argmax(1) == labels).double().mean().item()
    return {
        "test_loss": F.cross_entropy(logits, labels).item(),
        "test_accuracy": accuracy,
        "test_error": 100.0 - accuracy,
    }


# Ctrl-C raises KeyboardInterrupt wherever Python happens to be. When that is a finaliser
# (tqdm's __del__ runs as each epoch's progress bar is collected), Python prints
# "Exception ignored" and carries on, and the training would finish as if never
# interrupted. So while training, Ctrl-C is also remembered, and raised again after the batch.
_interrupt_requests: list[int] = []


def _interrupt(signum, frame) -> None:
    _interrupt_requests.append(signum)
    raise KeyboardInterrupt


def _remember_interrupts() -> None:
    _interrupt_requests.clear()
    # Only where Python's own handler is in place (the main thread; not under a caller's handler).
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)


def train(
    model: torch.nn.Module,
    train_data: ImageData | TextData,
    train_index: torch.Tensor,
    settings: TrainingSettings,
    augment: dict,
    seed: int,
    test_data: ImageData | TextData | None = None,
    log: Callable[[str], None] = tqdm.write,
    resume_path: str | Path | None = None,
    fingerprint: dict | None = None,
    forgetting: ForgettingTracker | None = None,
    ranks: Ranks = ONE_PROCESS,
) -> list[dict]:
    """Train ``model`` in place on ``train_data[train_index]``; return one history row per epoch.

    An epoch is a pass over ``train_index``; with ``settings.length`` steps a subset run
    takes as many passes as the full-data run's steps need (``StepPlan``), the last maybe
    partial. Each row has the pass's learning rate (at its start), the optimizer steps
    taken so far, training loss and accuracy (on the augmented batches of the pass) and,
    every ``eval_every`` epochs and after the last (only then for 0), the test metrics
    for the learning curve.
    The test set never influences training. With ``resume_path`` the training state is
    saved there after every epoch, and a state saved by an earlier, killed run with the
    same ``fingerprint`` (settings) is resumed. ``augment`` is the manifest's (empty for
    texts: nothing to augment). ``forgetting``, if given, records every example's
    outcome at each presentation (``svp.training.forgetting``); its state is saved and
    resumed with the rest.

    With several ``ranks`` (DistributedDataParallel, ``svp.training.distributed``) each
    process trains on its share of every global batch of ``settings.batch_size``; the
    history, the forgetting counts and the weights are those of one process training on
    the global batches (up to float rounding), and only rank 0 logs, evaluates and saves.
    """
    device = train_data.device
    augmenting = bool(augment.get("crop_padding") or augment.get("flip"))
    ranks.local_batch_size(settings.batch_size)  # refuses a global batch the ranks cannot share evenly
    if not ranks.writes:
        log = _quiet
    generator = torch.Generator(device=device).manual_seed(seed)
    optimizer, step = sgd(model, settings)
    plan = StepPlan.of(settings, len(train_data), len(train_index))
    history = []
    # Every rank reads the state rank 0 saved, so all resume from the same epoch.
    state = load_training_state(resume_path, fingerprint or {}, log) if resume_path else None
    if state is not None and forgetting is not None and FORGETTING_KEY not in state:
        log(f"checkpoint {resume_path} holds no forgetting counts; training from scratch")
        state = None
    if state is not None:
        history = restore_training_state(state, model, optimizer, generator)
        if forgetting is not None:
            forgetting.load_state_dict(state[FORGETTING_KEY])
        log(f"resuming from {resume_path} after epoch {len(history)} of {plan.passes}")
    network = parallel(model, ranks)  # after restoring: every rank starts from the same weights
    mine = ranks.own()
    _remember_interrupts()
    epochs = progress(
        range(len(history), plan.passes), "epochs", total=plan.passes, initial=len(history), disable=not ranks.writes
    )
    for epoch in epochs:
        first_step = epoch * plan.batches_per_pass
        batches = plan.batches_in_pass(epoch)
        lr = start_lr = plan.lr_at_step(first_step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        network.train()
        started = time.perf_counter()
        # The epoch's global order: the same generator state on every rank, so the same order.
        shuffled = train_index[torch.randperm(len(train_index), generator=generator, device=device)]
        presented = min(len(shuffled), batches * settings.batch_size)  # all, or the steps left of a stretched schedule
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        # Each presentation's outcome, by its position in the order; every rank fills in its own.
        outcomes = torch.zeros(presented, device=device, dtype=torch.uint8) if forgetting is not None else None
        # The rank's share of each batch of the examples this pass presents: in memory, gathered
        # from the device's copy; from disk, decoded by DataLoader workers (svp.training.disk_data),
        # and a stretched schedule's partial last pass opens only the files it trains on.
        rank_batches = train_data.training_batches(
            shuffled[:presented], settings.batch_size, augment if augmenting else None, generator, ranks
        )
        for batch, (index, inputs, labels) in enumerate(
            progress(rank_batches, f"epoch {epoch + 1}", total=batches, leave=False, disable=not ranks.writes)
        ):
            rate = plan.lr_at_step(first_step + batch)
            if rate != lr:  # only a stretched schedule changes the rate within a pass
                lr = rate
                for group in optimizer.param_groups:
                    group["lr"] = lr
            first = batch * settings.batch_size
            global_size = min(settings.batch_size, presented - first)
            # The rank's summed loss over its share of the global batch: DDP averages the
            # gradients over the ranks, which makes them the gradient of the global batch's
            # mean loss even where the shares differ (the last batch). For one process, the mean.
            share = global_size / ranks.world_size
            with autocast(device, settings.mixed_precision):
                logits = network(inputs)
                loss = F.cross_entropy(logits.float(), labels, reduction="sum") / share
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            step()
            # Accumulate on the device: a .item() per batch would stall a GPU.
            loss_sum += loss.detach() * share
            hits = logits.argmax(1) == labels
            correct += hits.sum()
            if outcomes is not None:
                outcomes[first : first + global_size][mine] = hits
            if _interrupt_requests:  # a Ctrl-C that a finaliser swallowed
                raise KeyboardInterrupt
        summed(loss_sum, ranks)
        summed(correct, ranks)
        if outcomes is not None:
            # Every rank replays the whole epoch's outcomes batch by batch, as one process records them.
            summed(outcomes, ranks)
            for first in range(0, presented, settings.batch_size):
                forgetting.update(shuffled[first : first + settings.batch_size], outcomes[first : first + settings.batch_size].bool())
        row = {
            "epoch": epoch + 1,
            "lr": start_lr,
            "steps": first_step + batches,
            "train_loss": loss_sum.item() / presented,
            "train_accuracy": 100.0 * correct.item() / presented,
            "epoch_seconds": time.perf_counter() - started,
        }
        last_epoch = epoch + 1 == plan.passes
        periodic = settings.eval_every and (epoch + 1) % settings.eval_every == 0
        # eval_every 0: the final epoch only; rank 0 only, the other ranks go on to the next epoch.
        if test_data is not None and ranks.writes and (periodic or last_epoch):
            row.update(evaluate(model, test_data, settings))
        history.append(row)
        log(_epoch_line(row, plan.passes))
        if resume_path and ranks.writes:
            save_training_state(
                resume_path, model=model, optimizer=optimizer, generator=generator, history=history,
                fingerprint=fingerprint or {},
                extra={} if forgetting is None else {FORGETTING_KEY: forgetting.state_dict()},
            )
    return history


def _quiet(message: str) -> None:
    """The log of the ranks other than 0: rank 0 says it all."""


def sgd(model: torch.nn.Module, settings: TrainingSettings) -> tuple[torch.optim.SGD, Callable[[], None]]:
    """The run's SGD optimizer, and a function that takes one step, without TorchDynamo.

    torch marks the optimizer's methods as not to be traced by TorchDynamo (its compiler)
    and breaks the compiler's graph around each step; both import torch._dynamo the first
    time they run, which takes about 2 s on a CPU, as long as importing torch itself, in
    every training job. svp compiles nothing, so it runs the methods under those marks:
    the same arithmetic (the same weights after every step), autograd off during the step
    as torch has it. Where torch is not laid out as expected, or an optimizer hook is
    registered, the step is torch's own.
    """
    _skip_dynamo_marks()
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=settings.lr_at(0),
        momentum=settings.momentum,
        weight_decay=settings.weight_decay,
        nesterov=settings.nesterov,
    )
    bare_step = inspect.unwrap(type(optimizer).step)
    hooks = [getattr(optimizer, name, None) for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks")]
    optimizer_module = sys.modules.get(torch.optim.Optimizer.__module__)
    hooks += [getattr(optimizer_module, name, None) for name in ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks")]
    if bare_step is type(optimizer).step or optimizer.defaults.get("differentiable") or any(h is None or h for h in hooks):
        return optimizer, optimizer.step

    def step() -> None:
        with torch.no_grad():
            bare_step(optimizer)

    return optimizer, step


def _skip_dynamo_marks() -> None:
    """Let the optimizer methods marked by ``torch._disable_dynamo`` run without importing it.

    The mark calls what it caches in the method's ``__dynamo_disable`` attribute, made
    (by importing torch._dynamo) on first use: caching the method itself skips that.
    """
    mark = getattr(torch, "_disable_dynamo", None)
    if mark is None:
        return
    marked = mark(lambda: None).__code__
    for method in vars(torch.optim.Optimizer).values():
        if getattr(method, "__code__", None) is marked and hasattr(method, "__wrapped__"):
            if not hasattr(method.__wrapped__, "__dynamo_disable"):
                setattr(method.__wrapped__, "__dynamo_disable", method.__wrapped__)


def progress(iterable, description: str, **options) -> tqdm:
    """A progress bar on the terminal; in a log file, a line every half minute at most."""
    interactive = sys.stderr.isatty()
    return tqdm(
        iterable, desc=description, file=sys.stderr, mininterval=0.2 if interactive else 30,
        ascii=not interactive, dynamic_ncols=interactive, **options,
    )


def _epoch_line(row: dict, epochs: int) -> str:
    line = (
        f"epoch {row['epoch']}/{epochs} lr {row['lr']:g} loss {row['train_loss']:.4f} "
        f"train acc {row['train_accuracy']:.2f}% ({row['epoch_seconds']:.1f} s)"
    )
    if "test_error" in row:
        line += f" test error {row['test_error']:.2f}%"
    return line
