"""Give each GPU job its own device on a machine with several GPUs.

Snakemake counts GPUs (``--resources gpu=4`` runs at most four GPU jobs at once) but
does not say which device a job should use, so without help every job would start on
device 0. Each job therefore claims a free device by taking an exclusive lock on one
lock file per device and keeps it until the process exits (the operating system drops
the lock even when the process is killed), then exposes only that device through
``CUDA_VISIBLE_DEVICES`` before CUDA starts. A scheduler that already chose the
devices (SLURM sets ``CUDA_VISIBLE_DEVICES``) is left alone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

LOCK_DIR_VARIABLE = "SVP_GPU_LOCK_DIR"
_held_locks: list = []  # open lock files of this process: closing one frees its device


def default_lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_VARIABLE, Path(tempfile.gettempdir()) / "svp-gpu-locks"))


def count_gpus() -> int:
    """GPUs on this machine, asked of nvidia-smi so that CUDA is not started in this process."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU "))


def claim_device(n_devices: int, lock_dir: str | Path, timeout: float = 600.0, poll: float = 0.5) -> int:
    """Lock the first free device of ``n_devices`` and return its index; wait while all are busy."""
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for device in range(n_devices):
            handle = open(lock_dir / f"gpu{device}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            _held_locks.append(handle)
            return device
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"all {n_devices} GPUs stayed busy for {timeout:.0f} s (locks in {lock_dir}); "
                "run with --resources gpu=N for at most N GPUs"
            )
        time.sleep(poll)


def holds_device() -> bool:
    """Whether this process claimed a GPU of its own (then CUDA_VISIBLE_DEVICES shows it alone)."""
    return bool(_held_locks)


def release_devices() -> None:
    while _held_locks:
        _held_locks.pop().close()


def assign_gpu(environment: dict | None = None, n_devices: int | None = None, lock_dir: str | Path | None = None) -> int | None:
    """Claim a device for this job and set ``CUDA_VISIBLE_DEVICES``; None when there is nothing to choose."""
    environment = os.environ if environment is None else environment
    if environment.get("CUDA_VISIBLE_DEVICES", "") != "":
        return None  # already chosen by the scheduler or the user
    n_devices = count_gpus() if n_devices is None else n_devices
    if n_devices <= 1:
        return None
    device = claim_device(n_devices, lock_dir or default_lock_dir())
    environment["CUDA_VISIBLE_DEVICES"] = str(device)
    return device
