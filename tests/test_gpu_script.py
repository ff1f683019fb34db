"""bench/gpu.sh in its CPU smoke mode: environment check, throughput, the grid and the ImageNet-shaped step, end to end.

On a GPU the same script measures the figures of BENCHMARKS.md; here it runs on a tiny
synthetic CIFAR-shaped data set, so the test checks the script's plumbing (every part
runs, prints its table and writes its files), never a speed.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu.sh"

pytestmark = pytest.mark.workflow


def fake_cifar(folder: Path, n_train: int = 256, n_test: int = 64) -> Path:
    """The npz layout of ../shared/data/cifar10, with random pixels and balanced labels."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    half = n_train // 2
    for name, count in (("train-0.npz", half), ("train-1.npz", n_train - half), ("test.npz", n_test)):
        x = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
        np.savez(folder / name, x=x, y=np.arange(count, dtype=np.int64) % 10)
    (folder / "classes.txt").write_text("".join(f"class{i}\n" for i in range(10)))
    return folder


def run_script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "SVP_GPU_WORK": str(tmp_path / "work"),
        "SVP_PYTHON": sys.executable,
    }
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)


def test_smoke_mode_runs_every_part_and_writes_its_tables(tmp_path):
    data = fake_cifar(tmp_path / "cifar10")
    result = run_script(tmp_path, "--smoke", "--data", str(data))
    assert result.returncode == 0, result.stdout + result.stderr
    printed = result.stdout
    for part in ("=== environment", "=== throughput", "=== grid", "=== imagenet", "=== time per part"):
        assert part in printed, part
    assert "Training throughput" in printed and "--- results" in printed
    out = tmp_path / "out"
    with open(out / "throughput.csv") as handle:
        variants = {row["variant"] for row in csv.DictReader(handle)}
    assert {"svp", "svp + torch.compile", "DataLoader", "svp scoring"} <= variants
    with open(out / "grid-summary.csv") as handle:
        selections = {row["selection"] for row in csv.DictReader(handle)}
    assert selections == {"full", "cnn-entropy", "random"}
    assert (out / "grid-results.md").is_file() and (out / "snakemake.log").is_file()
    # The ImageNet-shaped step: JPEGs read from disk, svp against the bare loop, one process and DDP (gloo, 2).
    with open(out / "imagenet.csv") as handle:
        parts = {row["part"]: float(row["svp_over_bare"]) for row in csv.DictReader(handle)}
    assert set(parts) == {"resnet18 scoring, 1 cpu", "resnet50 training, 1 cpu", "resnet50 training, DDP on 2 CPU processes"}
    assert all(ratio > 0 for ratio in parts.values())
    assert (out / "gpu.log").read_text().strip().endswith(f"tables and logs: {out}")


def test_missing_data_stops_with_the_folder_named(tmp_path):
    result = run_script(tmp_path, "--smoke", "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert f"CIFAR-10 not found: {tmp_path / 'nowhere'}/train-0.npz is missing" in result.stdout
    assert "--data DIR or SVP_DATA=DIR" in result.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")
def test_without_smoke_a_machine_without_gpu_is_refused(tmp_path):
    result = run_script(tmp_path, "--data", str(fake_cifar(tmp_path / "cifar10", 20, 10)))
    assert result.returncode == 1
    assert "torch sees no GPU" in result.stdout and "bash bench/gpu.sh --smoke" in result.stdout
