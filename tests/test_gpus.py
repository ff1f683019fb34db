"""Device assignment for several GPU jobs at once, tested without a GPU."""

import subprocess
import sys

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
