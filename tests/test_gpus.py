"""Device assignment for several GPU jobs at once, tested without a GPU."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from svp.training.gpus import assign_gpu, claim_device, release_devices


@pytest.fixture(autouse=True)
def _release():
    yield
    release_devices()


def test_each_claim_gets_its_own_device_and_a_released_one_is_reused(tmp_path):
    claims = [claim_device(4, tmp_path) for _ in range(4)]
    assert sorted(claims) == [0, 1, 2, 3]
    with pytest.raises(TimeoutError, match="all 4 GPUs stayed busy"):
        claim_device(4, tmp_path, timeout=0.2, poll=0.05)
    release_devices()
    assert claim_device(4, tmp_path) == 0


def test_concurrent_processes_get_distinct_devices(tmp_path):
    script = (
        "import sys, time; from svp.training.gpus import assign_gpu; env = {}; "
        f"print(assign_gpu(env, n_devices=4, lock_dir={str(tmp_path)!r}), env['CUDA_VISIBLE_DEVICES']); "
        "sys.stdout.flush(); time.sleep(2)"
    )
    processes = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [process.communicate(timeout=60)[0].split() for process in processes]
    assert sorted(int(device) for device, _ in outputs) == [0, 1, 2, 3]
    assert all(device == visible for device, visible in outputs)


def test_a_killed_job_frees_its_device(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from svp.training.gpus import claim_device; claim_device(1, {str(tmp_path)!r}); print('ok', flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout.readline().strip() == "ok"
    with pytest.raises(TimeoutError):
        claim_device(1, tmp_path, timeout=0.2, poll=0.05)
    holder.kill()
    holder.wait()
    assert claim_device(1, tmp_path, timeout=5) == 0


def test_devices_chosen_by_the_scheduler_are_kept(tmp_path):
    environment = {"CUDA_VISIBLE_DEVICES": "3"}
    assert assign_gpu(environment, n_devices=4, lock_dir=tmp_path) is None
    assert environment["CUDA_VISIBLE_DEVICES"] == "3"


def test_one_gpu_or_none_needs_no_choice(tmp_path):
    for n_devices in (0, 1):
        environment = {}
        assert assign_gpu(environment, n_devices=n_devices, lock_dir=tmp_path) is None
        assert "CUDA_VISIBLE_DEVICES" not in environment


def _planned_threads(tmp_path, gpu_jobs: int | None) -> set[int]:
    """Threads the dry run gives train_proxy jobs with --cores 8 on a machine showing two GPUs."""
    repo = Path(__file__).resolve().parents[1]
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "nvidia-smi").write_text('#!/bin/sh\necho "GPU 0: test"\necho "GPU 1: test"\n')
    (fake / "nvidia-smi").chmod(0o755)
    resources = ["--resources", f"gpu={gpu_jobs}"] if gpu_jobs else []
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    dry = subprocess.run(
        [sys.executable, "-m", "snakemake", "--dry-run", "--snakefile", str(repo / "Snakefile"), "--directory",
         str(tmp_path / "work"), "--cores", "8", *resources, "--configfile", str(repo / "config/config.yaml")],
        capture_output=True, text=True, env=env, check=True,
    )
    threads = set()
    for block in dry.stdout.split("\nrule ")[1:]:
        if block.startswith("train_proxy:"):
            threads |= {int(line.split(":")[1]) for line in block.splitlines() if line.strip().startswith("threads:")}
    return threads


def test_gpu_jobs_share_the_cores_so_several_run_at_once(tmp_path):
    # A GPU job holding all 8 cores would let Snakemake start no other, whatever gpu=N says.
    assert _planned_threads(tmp_path, 4) == {2}
    assert _planned_threads(tmp_path, 1) == {8}
    assert _planned_threads(tmp_path, None) == {8}
