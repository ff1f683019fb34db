"""One training run on several GPUs: DistributedDataParallel, one process per GPU, started by torchrun.

``svp train --processes N`` (what a training rule runs for a run with ``gpus: N``) hands
itself to torchrun (``torch.distributed.run``, torch's own launcher, called through its
API so that a failure ends in one line, not its traceback), which starts N copies of the
command on this machine; each copy is one *rank*. ``torchrun --standalone
--nproc-per-node N -m svp train ...`` by hand does the same. Every rank:

- draws each epoch's order of the training examples from the run's seeded generator,
  the order a single process draws, and trains on its share of every global batch of
  ``batch_size`` examples: positions rank, rank + N, ... (:meth:`Ranks.own`), batch_size / N
  examples (a batch_size that does not divide by N is refused, naming the setting). Over
  an epoch that is ``order[rank::N]`` (:meth:`Ranks.shard`), DistributedSampler's split:
  data read from disk by a DataLoader takes those indices in batches of batch_size / N
  (:meth:`Ranks.batches`). The loop asks its data for the rank's batches
  (``training_batches(order, batch_size, augment, generator, ranks)``), so a kind of data
  needs nothing but indices to be shared out;
- draws the random crops and flips of the whole global batch and keeps its share, so
  every example is augmented as in the single-process run and every rank's generator
  stays in step with the others' (the next epoch's order is the same everywhere);
- takes the sum of its examples' losses over (global batch / N): DDP's average of the
  ranks' gradients is then the gradient of the global batch's mean loss, the
  single-process run's, the last, smaller batch included, even where a rank gets none;
- on CUDA, runs its BatchNorm layers as SyncBatchNorm: statistics of the global batch,
  as one process computes them. torch has no SyncBatchNorm on the CPU (gloo), so there
  BatchNorm keeps each rank's statistics (the tests' CPU runs; said in the log).

Only rank 0 logs, evaluates on the test set, saves the resume state (write-then-rename)
and writes the outputs; every rank resumes from that state, which holds what every rank
needs (the generator is the same on all). After each epoch the ranks add up the training
loss and accuracy and each example's outcome (:func:`summed`), so the history and the
forgetting counts mean what a single process's do. A rank whose launcher dies is killed
with it (:func:`die_with_launcher`), so nothing keeps writing after a job is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from svp.errors import ConfigError, SvpError

# Set by `svp train --processes N` for its ranks: the launcher's process id.
LAUNCHER_VARIABLE = "SVP_LAUNCHER_PID"
# What torchrun sets for each process it starts.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among those training one run: its rank of ``world_size``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # among the processes on this machine: which GPU it takes
    local_world_size: int = 1
    launched: bool = False  # started by torchrun (its variables set), even as its only process

    @property
    def writes(self) -> bool:
        """Whether this process logs, evaluates and writes files: rank 0 (or the only process)."""
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world_size > 1

    def local_batch_size(self, batch_size: int) -> int:
        """This rank's share of a global batch of ``batch_size``; refused unless it divides evenly."""
        if batch_size % self.world_size:
            raise ConfigError(
                f"training setting 'batch_size': {batch_size} examples do not split evenly over {self.world_size} "
                f"processes (one per GPU); choose a batch_size that divides by {self.world_size}, or another number "
                "of GPUs (the run's gpus)"
            )
        return batch_size // self.world_size

    def own(self) -> slice:
        """This rank's positions in a global batch (or in an epoch's order): rank, rank + N, ..."""
        return slice(self.rank, None, self.world_size)

    def shard(self, order):
        """This rank's examples of an epoch's ``order`` (a tensor, array or list of indices).

        DistributedSampler's split, without its padding. Batched by
        ``local_batch_size``, it gives exactly the rank's share (:meth:`own`) of each global
        batch of the order, because a batch_size that divides by N starts every global
        batch at a multiple of N (tests/test_distributed.py checks both forms).
        """
        return order[self.own()]

    def batches(self, order, batch_size: int) -> list:
        """This rank's batches of an epoch's ``order``: its share of each global batch of
        ``batch_size``, one per global batch, so that every rank takes as many steps.

        What a DataLoader takes as its ``batch_sampler`` (data read from disk). The last is
        empty where the last global batch holds fewer examples than there are ranks: the
        data then hands over an empty batch, a step on no examples that keeps the ranks in
        step (DistributedSampler would repeat examples instead).
        """
        shard, size = self.shard(order), self.local_batch_size(batch_size)
        return [shard[start : start + size] for start in range(0, -(-len(order) // batch_size) * size, size)]

    def __str__(self) -> str:
        return f"rank {self.rank} of {self.world_size}"


ONE_PROCESS = Ranks()


def from_environment(environment: dict | None = None) -> Ranks:
    """This process's ranks as torchrun set them; :data:`ONE_PROCESS` where it did not start it."""
    environment = os.environ if environment is None else environment
    if not all(name in environment for name in TORCHRUN_VARIABLES):
        return ONE_PROCESS
    rank, world, local, local_world = (int(environment[name]) for name in TORCHRUN_VARIABLES)
    return Ranks(rank, world, local, local_world, launched=True)


def check_world(ranks: Ranks, processes: int | None) -> None:
    """Refuse ``--processes N`` under a torchrun that started another number of processes."""
    if processes is not None and ranks.launched and processes != ranks.world_size:
        raise ConfigError(
            f"--processes {processes}, but torchrun started {ranks.world_size} processes; give the same number to "
            "both, or leave --processes out under torchrun"
        )


def threads_per_rank(threads: int | None, ranks: Ranks) -> int | None:
    """A job's CPU threads shared among its ranks on this machine, at least one each."""
    return None if threads is None else max(1, threads // ranks.local_world_size)


# --------------------------------------------------------------------------- launching


# The exit status of a rank that failed only because another stopped (its collective broke).
LOST_OTHERS = 3


class OthersLost(SvpError):
    """A collective operation failed: another rank stopped, was killed or hangs."""

    exit_status = LOST_OTHERS


class RankFailed(SvpError):
    """A rank of a launched run failed; ``exit_status`` is what the launcher exits with."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


def check_devices(processes: int, environment: dict | None = None, gpus: int | None = None) -> None:
    """Refuse, before any rank starts, more processes than the GPUs this machine shows
    (CUDA_VISIBLE_DEVICES where a scheduler set it, else nvidia-smi's count). Without GPUs
    the ranks train on the CPU (gloo), which the tests do."""
    from svp.training.gpus import count_gpus

    environment = os.environ if environment is None else environment
    chosen = environment.get("CUDA_VISIBLE_DEVICES", "")
    shown = len([d for d in chosen.split(",") if d.strip()]) if chosen else (count_gpus() if gpus is None else gpus)
    if 0 < shown < processes:
        where = f"CUDA_VISIBLE_DEVICES={chosen!r}" if chosen else "nvidia-smi"
        raise ConfigError(
            f"{processes} processes, one per GPU, but this machine shows {shown} GPU{'s' if shown != 1 else ''} "
            f"({where}); ask for at most {shown} (the run's gpus, or --processes)"
        )


def launch(argv: list[str], processes: int, threads: int | None) -> None:
    """Run ``svp <argv>`` as ``processes`` ranks on this machine, through torchrun's own entry point.

    The ranks inherit stdout and stderr, so their messages land in the job's log. A rank
    that fails stops the others (torchrun's doing) and raises :class:`RankFailed`, whose
    message names it; Ctrl-C or SIGTERM stops them all and raises KeyboardInterrupt.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # torchrun logs each failure, and a banner about threads, as warnings; svp says it once, below.
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (threads or processes) // processes)))
    os.environ[LAUNCHER_VARIABLE] = str(os.getpid())
    launcher = ["--standalone", f"--nproc-per-node={processes}", "--module", "svp"]
    print(f"svp train: {processes} processes, one per GPU, started as by `torchrun {shlex.join([*launcher, *argv])}`", flush=True)
    arguments = parse_args([*launcher, *argv])
    try:
        run(arguments)
    except ChildFailedError as error:
        rank, exitcode = _root_cause({rank: failure.exitcode for rank, failure in error.failures.items()})
        raise RankFailed(_failure_message(rank, processes, exitcode), _exit_status(exitcode)) from None
    except SignalException as error:
        if error.sigval not in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            raise
        raise KeyboardInterrupt from None


def _root_cause(exitcodes: dict[int, int]) -> tuple[int, int]:
    """The rank (and its exit code) whose failure stopped the others: not one that torchrun
    stopped (SIGTERM) or that only lost the others (:data:`LOST_OTHERS`); the lowest such rank."""
    consequences = (-signal.SIGTERM, LOST_OTHERS)
    causes = sorted(rank for rank, code in exitcodes.items() if code not in consequences)
    rank = causes[0] if causes else min(exitcodes)
    return rank, exitcodes[rank]


def _failure_message(rank: int, processes: int, exitcode: int) -> str:
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        how = f"was killed by {name}" + (" (often the out-of-memory killer)" if name == "SIGKILL" else "")
    else:
        how = f"stopped with exit status {exitcode} (its message is above)"
    return f"rank {rank} of {processes} {how}; the other ranks were stopped"


def _exit_status(exitcode: int) -> int:
    """A rank's exit status, or 128 + the signal that killed it, as a shell reports it."""
    return exitcode if exitcode > 0 else 128 - exitcode


def die_with_launcher() -> None:
    """Have the kernel kill this rank when its launcher dies (Linux; elsewhere nothing).

    torchrun starts each rank in a session of its own, so a SIGKILL of the launcher's
    process group (a killed job) would leave the ranks training and writing. A rank whose
    launcher is already gone stops here.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    launcher = os.environ.get(LAUNCHER_VARIABLE)
    if launcher and os.getppid() != int(launcher):
        raise SystemExit(1)


# --------------------------------------------------------------------------- in each rank


def rank_device(
    ranks: Ranks, cuda_available: bool | None = None, visible: int | None = None, claimed: bool | None = None
) -> "torch.device":
    """The device this process trains on.

    One process: the GPU when there is one (``svp.training.loop.pick_device``). A rank: its
    own GPU, ``cuda:0`` where it claimed one (``svp.training.gpus``: CUDA_VISIBLE_DEVICES
    then shows that one alone), else ``cuda:<local rank>`` of those the machine shows; the
    CPU without GPUs. Fewer GPUs than ranks are refused: two ranks on one GPU fail in NCCL.
    """
    import torch

    from svp.training.gpus import holds_device

    cuda_available = torch.cuda.is_available() if cuda_available is None else cuda_available
    if not cuda_available:
        return torch.device("cpu")
    if not ranks.launched:
        return torch.device("cuda")
    claimed = holds_device() if claimed is None else claimed
    if claimed:
        return torch.device("cuda", 0)
    visible = torch.cuda.device_count() if visible is None else visible
    if visible < ranks.local_world_size:
        raise ConfigError(
            f"{ranks.local_world_size} processes on this machine, one per GPU, but it shows {visible} "
            f"GPU{'s' if visible != 1 else ''} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}); "
            f"ask for at most {visible} (the run's gpus, or --processes)"
        )
    return torch.device("cuda", ranks.local_rank)


@contextlib.contextmanager
def process_group(ranks: Ranks) -> Iterator["torch.device"]:
    """Join the ranks' process group (NCCL on CUDA, gloo on the CPU) for the duration; yield the device.

    Nothing to join for one process. torchrun's variables say where the others are.
    """
    device = rank_device(ranks)
    if not ranks.several:
        yield device
        return
    import torch
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    try:
        yield device
    except Exception as error:  # noqa: BLE001  only a broken collective is translated
        if not _is_lost_others(error):
            raise
        raise OthersLost(
            f"lost the other ranks ({type(error).__name__}: {str(error).strip().splitlines()[0][:200]}): another rank "
            "stopped, was killed or stopped answering; the launcher's message names it"
        ) from None
    finally:
        dist.destroy_process_group()


def _is_lost_others(error: BaseException) -> bool:
    """Whether ``error`` is a collective operation that broke (NCCL, gloo), not a problem of this rank's."""
    import torch.distributed as dist

    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(word in text for word in ("gloo", "NCCL", "ProcessGroup"))


def synchronised_batch_norm(model: "torch.nn.Module", ranks: Ranks, device: "torch.device") -> "torch.nn.Module":
    """``model`` with its BatchNorm layers as SyncBatchNorm, for several ranks on CUDA; else as it is.

    Same parameters, buffers and state-dict keys: model.pt loads into the plain model.
    """
    import torch

    if not ranks.several or device.type != "cuda":
        return model
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def has_batch_norm(model: "torch.nn.Module") -> bool:
    import torch

    return any(isinstance(module, torch.nn.modules.batchnorm._BatchNorm) for module in model.modules())


def parallel(model: "torch.nn.Module", ranks: Ranks) -> "torch.nn.Module":
    """What the ranks train: ``model`` in DistributedDataParallel (gradients averaged over the
    ranks in each backward pass); ``model`` itself for one process."""
    if not ranks.several:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def summed(tensor: "torch.Tensor", ranks: Ranks) -> "torch.Tensor":
    """``tensor`` added up over the ranks, in place (every rank gets the sum); as it is for one process."""
    if ranks.several:
        import torch.distributed as dist

        dist.all_reduce(tensor)
    return tensor
