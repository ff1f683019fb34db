"""The torch trainer (``svp.trainers.TORCH``): build a registered network, train
it with ``svp.training.loop``, and score with it.

The train and score stages call ``settings``, ``fit`` and ``predict``; the data comes
to them prepared and read, and they write the files. Here the data goes on the device
(the GPU when there is one) as the model reads it, and a killed training resumes from
its last finished epoch (``svp.training.checkpoint``).
"""

from __future__ import annotations

import ctypes
import hashlib
import time
from collections.abc import Iterator

import torch

from svp.schema import DEFAULT_LENGTH, VOCAB_SIZE
from svp.errors import StageInputError
from svp.models import networks, torchvision_models
from svp.models.specs import is_torchvision_model
from svp.trainers.base import REMAKE_CHECKPOINT, FittedModel, Predictions, ScoringJob, TrainingJob, first_sentence
from svp.training import distributed
from svp.training.forgetting import MODEL_KEY as FORGETTING_KEY, ForgettingTracker
from svp.training.loop import (
    EPOCHS, ImageData, StepPlan, TextData, TrainingSettings, evaluate, logit_chunks, pick_device, train,
)


def settings(training: dict) -> TrainingSettings:
    return TrainingSettings.from_dict(training)


def fit(job: TrainingJob) -> FittedModel | None:
    """Train the job's model from fresh weights (drawn from its seed), or resume a killed run of it.

    On several GPUs (``job.ranks``, svp.training.distributed) every rank runs this; rank 0
    hands back the model, the others None.
    """
    settings, ranks = job.settings, job.ranks
    keep_freed_memory()
    device = distributed.rank_device(ranks)  # pick_device's choice for one process
    train_data = model_inputs(*job.train, job.manifest, device, settings.text_length)
    test_data = model_inputs(*job.test, job.manifest, device, settings.text_length)
    train_index = torch.from_numpy(job.train_index).to(device)
    torch.manual_seed(job.seed)  # the model's initial weights, the same on every rank
    model = networks.create_model(job.model_name, job.manifest["num_classes"], train_data.in_channels, settings.weights)
    if is_torchvision_model(job.model_name):  # before any epoch: a size it cannot read would fail in the first step
        torchvision_models.check_input(model, job.model_name, job.manifest["image_shape"])
    model = _in_layout(model, train_data)
    model = distributed.synchronised_batch_norm(model, ranks, device)
    plan = StepPlan.of(settings, len(train_data), len(train_index))
    length = f"{settings.epochs} epochs" if settings.length == EPOCHS else (
        f"{plan.total_steps:,} steps (the full data's {settings.epochs} epochs; {plan.passes} passes over the subset)"
    )
    where = str(device)
    if ranks.several:
        where = (
            f"{ranks.world_size} processes ({device.type}; global batch {settings.batch_size}, "
            f"{ranks.local_batch_size(settings.batch_size)} per process"
        )
        if device.type == "cpu" and distributed.has_batch_norm(model):
            where += "; BatchNorm statistics per process: torch has no SyncBatchNorm on the CPU"
        where += ")"
    if ranks.writes:
        print(
            f"training {job.model_name} ({networks.count_parameters(model):,} parameters) on {len(train_index):,} "
            f"of {len(train_data):,} examples for {length} on {where}, seed {job.seed}",
            flush=True,
        )
    # A state saved by a killed run resumes only if it was saved for this very run.
    fingerprint = {
        "model": job.model_name,
        "training": job.training,
        "seed": job.seed,
        "data": job.manifest["checksums"],
        "subset": hashlib.sha256(train_index.cpu().numpy().tobytes()).hexdigest(),
    }
    # Forgetting events of every example, counted as it trains (a few vectorised operations a batch).
    forgetting = ForgettingTracker(len(train_data), device)
    history = train(
        model, train_data, train_index, settings, job.manifest.get("augment", {}), job.seed, test_data,
        resume_path=job.resume_path, fingerprint=fingerprint, forgetting=forgetting, ranks=ranks,
    )
    if not ranks.writes:
        return None
    final = history[-1] if "test_error" in history[-1] else evaluate(model, test_data, settings)
    weights = {
        "in_channels": train_data.in_channels,
        "state_dict": {k: v.cpu().contiguous() for k, v in model.state_dict().items()},
        # Passes over the training index: each example's presentations (the epochs, unless steps stretched them).
        FORGETTING_KEY: {**forgetting.state_dict(), "epochs": len(history)},
    }
    # Wall time of the run without the optional per-epoch test evaluations, which only
    # draw the learning curve and would blur the comparison between subset sizes.
    seconds = sum(row["epoch_seconds"] for row in history)
    test = {key: final[key] for key in ("test_error", "test_accuracy", "test_loss")}
    return FittedModel(weights, history, test, seconds, str(device))


def predict_chunks(job: ScoringJob) -> Iterator[Predictions]:
    """Logits of every training example, on un-augmented inputs, a chunk of consecutive
    examples at a time (``svp.training.loop.logit_chunks``): memory that does not grow with
    the data set. Each chunk's seconds are the model's time on it."""
    model, train_data = _scoring_model(job)
    labels = train_data.labels.cpu().numpy()
    first = 0
    started = time.perf_counter()
    # Scores come from float32 logits whatever the model trained with: under bfloat16
    # autocast the top 10 % by least confidence or margin kept only 78-80 % of its examples.
    for logits in logit_chunks(model, train_data, job.batch_size, mixed_precision=False):
        seconds = time.perf_counter() - started
        yield Predictions(labels[first : first + len(logits)], logits.numpy(), True, seconds)
        first += len(logits)
        started = time.perf_counter()


def predict(job: ScoringJob) -> Predictions:
    """Logits of every training example, on un-augmented inputs, at once."""
    return Predictions.joined(predict_chunks(job))


# Per-example gradients held at once by GraNd: chunk x parameters float32 values, about 512 MiB.
GRADIENT_VALUES = 1 << 27


def gradient_norms(job: ScoringJob):
    """GraNd of every training example (svp.training.per_example.gradient_norms), and the seconds it took."""
    from svp.training.per_example import gradient_norms as norms

    model, train_data = _scoring_model(job)
    chunk = max(1, min(job.batch_size, GRADIENT_VALUES // max(1, networks.count_parameters(model))))
    started = time.perf_counter()
    return norms(model, train_data, chunk), time.perf_counter() - started


def embeddings(job: ScoringJob):
    """The penultimate-layer embedding of every training example, and the seconds it took."""
    from svp.training.per_example import penultimate_embeddings

    model, train_data = _scoring_model(job)
    started = time.perf_counter()
    # Beyond memory's share (a million images), a memory-mapped file in the scores' folder.
    return penultimate_embeddings(model, train_data, job.batch_size, scratch=job.workdir), time.perf_counter() - started


def _scoring_model(job: ScoringJob) -> tuple[torch.nn.Module, ImageData | TextData]:
    """The checkpoint's model and the training split, on the device, the model in eval mode."""
    x_train, y_train = job.train
    in_channels = VOCAB_SIZE if job.manifest.get("modality", "image") == "text" else int(x_train.shape[-1])
    if job.checkpoint["in_channels"] != in_channels:
        raise StageInputError(
            f"{job.checkpoint_path}: the model reads inputs with {job.checkpoint['in_channels']} channels, but the data "
            f"in {job.data_dir} has {in_channels}; score with the data it was trained on, or retrain it on this data"
        )
    keep_freed_memory()
    device = pick_device()
    text_length = TrainingSettings.from_dict(job.checkpoint.get("training", {})).text_length
    train_data = model_inputs(x_train, y_train, job.manifest, device, text_length)
    model = _in_layout(torch_model(job.checkpoint, job.checkpoint_path), train_data)
    return model.eval(), train_data


def model_inputs(x, y, manifest: dict, device: torch.device, text_length: int = DEFAULT_LENGTH) -> ImageData | TextData:
    """One prepared split as a torch model reads it, on ``device``."""
    if manifest.get("modality", "image") == "text":
        return TextData.from_texts(x, y, text_length, device)
    if manifest.get("storage") == "disk":  # files read as the model goes (svp.data.disk)
        from svp.training.disk_data import DiskImageData

        return DiskImageData.from_split(x, y, manifest, device)
    return ImageData.from_arrays(x, y, manifest["mean"], manifest["std"], device)


def torch_model(checkpoint: dict, path) -> torch.nn.Module:
    """The network a model.pt holds, on the CPU; ``path`` names the file in a message."""
    model = networks.create_model(checkpoint["model_name"], checkpoint["num_classes"], checkpoint["in_channels"])
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, TypeError, AttributeError, KeyError) as error:  # keys or shapes that are not this model's
        raise StageInputError(
            f"{path}: its weights do not fit model {checkpoint['model_name']!r} ({first_sentence(error)}); {REMAKE_CHECKPOINT}"
        ) from None
    return model


def _in_layout(model: torch.nn.Module, inputs: ImageData | TextData) -> torch.nn.Module:
    """``model`` on the inputs' device; image models channels-last, the layout of their batches."""
    model = model.to(inputs.device)
    return model if isinstance(inputs, TextData) else model.to(memory_format=torch.channels_last)


# glibc's mallopt parameters, and the size under which freed memory stays in the process.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
KEEP_FREED_BYTES = 1 << 30


def keep_freed_memory() -> None:
    """Let the C library keep the memory torch frees for the next batch (glibc; else nothing).

    By default glibc hands every freed block over 32 MiB, and the top of its heap, back to
    the system, so each batch's tensors fault their pages in again, zero-filled by the
    kernel: on a CPU that took about 40% of a ResNet20 scoring pass at batch 1024
    (bench/scoring.py). A job's process runs one stage, so keeping its peak memory costs
    nothing later; the results do not change.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, ctypes.c_int(KEEP_FREED_BYTES))
    mallopt(M_TRIM_THRESHOLD, ctypes.c_int(KEEP_FREED_BYTES))
