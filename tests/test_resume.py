"""Training survives being killed: SIGKILL a real training process, rerun, same result."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from svp.data import prepare_dataset
from svp.stages import RESUME_FILE

TRAINING = {"batch_size": 64, "lr_schedule": [{"epochs": 2, "lr": 0.05}, {"epochs": 6, "lr": 0.01}], "eval_every": 0}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    prepare_dataset({"name": "digits"}, folder)
    return folder


def _command(digits: Path, run: Path, training: dict = TRAINING) -> list[str]:
    return [
        sys.executable, "-m", "svp", "train", "--model", "preact_resnet8", "--training", json.dumps(training),
        "--seed", "3", "--data", str(digits), "--model-out", str(run / "model.pt"),
        "--history-out", str(run / "history.csv"), "--metrics-out", str(run / "metrics.json"), "--threads", "1",
    ]


def _train(digits: Path, run: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(_command(digits, run), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result


def _final(run: Path) -> tuple[dict, dict, dict]:
    metrics = json.loads((run / "metrics.json").read_text())
    stored = torch.load(run / "model.pt", weights_only=True)
    return metrics, stored["state_dict"], stored["forgetting"]


def _assert_same_result(run: Path, reference: Path) -> None:
    metrics, weights, forgetting = _final(run)
    expected_metrics, expected_weights, expected_forgetting = _final(reference)
    for key in ("test_error", "test_loss", "n_train", "epochs"):
        assert metrics[key] == expected_metrics[key], key
    for name, tensor in expected_weights.items():
        assert torch.equal(weights[name], tensor), name
    # The forgetting events counted in training survive the interruption too.
    assert forgetting["presentations"].tolist() == [8] * len(forgetting["presentations"])
    for name, value in expected_forgetting.items():
        assert torch.equal(torch.as_tensor(forgetting[name]), torch.as_tensor(value)), name


@pytest.fixture(scope="module")
def uninterrupted(digits, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    _train(digits, run)
    assert not (run / RESUME_FILE).exists()  # removed once the final model is written
    return run


def _kill_after_an_epoch(command: list[str], run: Path) -> int:
    """Start training, SIGKILL it once it has saved a state; return the epochs it saved."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (run / RESUME_FILE).exists():
        assert process.poll() is None, "training finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return torch.load(run / RESUME_FILE, weights_only=True)["epochs_done"]


def test_killed_training_resumes_and_ends_like_an_uninterrupted_run(digits, uninterrupted, tmp_path):
    saved = _kill_after_an_epoch(_command(digits, tmp_path), tmp_path)
    assert 1 <= saved < 8
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "model.pt").exists()

    result = _train(digits, tmp_path)
    assert f"after epoch {saved} of 8" in result.stderr + result.stdout
    _assert_same_result(tmp_path, uninterrupted)
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 1 + 8


def test_corrupt_checkpoint_is_reported_and_training_restarts(digits, uninterrupted, tmp_path):
    (tmp_path / RESUME_FILE).write_bytes(b"not a checkpoint")
    result = _train(digits, tmp_path)
    assert "is corrupt" in result.stderr + result.stdout and "training from scratch" in result.stderr + result.stdout
    _assert_same_result(tmp_path, uninterrupted)


def test_checkpoint_of_other_settings_is_not_resumed(digits, uninterrupted, tmp_path):
    _kill_after_an_epoch(_command(digits, tmp_path, dict(TRAINING, batch_size=32)), tmp_path)
    result = _train(digits, tmp_path)
    assert "saved for other settings" in result.stderr + result.stdout
    _assert_same_result(tmp_path, uninterrupted)
