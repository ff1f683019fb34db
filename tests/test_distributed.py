"""One run on several processes (DistributedDataParallel started by torchrun), on the CPU with gloo.

Two processes against one: the same global batches in the same order, the same final
loss, and a run killed with SIGKILL that resumes to the uninterrupted run's result. Every
run here is started by torchrun (torch.distributed.run) in a subprocess, as the workflow
starts one; on 2 cores most of each test's time is the processes importing torch.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from svp.cli import main
from svp.data import prepare_dataset
from svp.errors import ConfigError
from svp.stages import RESUME_FILE
from svp.training import distributed
from svp.training.distributed import Ranks

REPO = Path(__file__).resolve().parents[1]
WORKER = REPO / "tests" / "distributed_worker.py"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]

pytestmark = pytest.mark.distributed


# --------------------------------------------------------------------------- the split, without processes


@pytest.mark.parametrize("n, batch_size, world_size", [(161, 32, 2), (100, 12, 4), (7, 4, 4), (64, 64, 2), (1, 2, 2)])
def test_a_ranks_shard_batched_is_its_share_of_every_global_batch(n, batch_size, world_size):
    """The form a DataLoader takes (order[rank::N] in batches of batch_size / N, the disk
    path's) and the loop's (each global batch's positions rank, rank + N, ...) are the same
    batches; together the ranks' k-th batches are the k-th global batch."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    global_batches = list(order.split(batch_size))
    shares = []
    for rank in range(world_size):
        ranks = Ranks(rank, world_size)
        batched = ranks.batches(order, batch_size)  # order[rank::N] in batches of batch_size / N
        assert torch.equal(torch.cat(batched), ranks.shard(order))
        assert all(torch.equal(b, g[ranks.own()]) for b, g in zip(batched, global_batches, strict=True))
        assert ranks.batches(order.tolist(), batch_size) == [b.tolist() for b in batched]  # a DataLoader's lists
        shares.append(batched)
    for k, global_batch in enumerate(global_batches):
        assert sorted(torch.cat([share[k] for share in shares]).tolist()) == sorted(global_batch.tolist())


def test_a_batch_that_does_not_split_evenly_is_refused_naming_the_setting():
    with pytest.raises(ConfigError, match=r"training setting 'batch_size': 100 examples do not split evenly over 3 processes"):
        Ranks(0, 3).local_batch_size(100)


def test_torchruns_variables_make_the_ranks():
    assert distributed.from_environment({}) == distributed.ONE_PROCESS
    ranks = distributed.from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (ranks.rank, ranks.world_size, ranks.local_rank, ranks.local_world_size, ranks.launched) == (3, 4, 1, 2, True)
    assert not ranks.writes and Ranks(0, 4).writes
    with pytest.raises(ConfigError, match="--processes 2, but torchrun started 4 processes"):
        distributed.check_world(ranks, 2)


def test_each_rank_takes_a_gpu_of_its_own_and_two_never_share_one():
    two = Ranks(1, 2, 1, 2, launched=True)
    assert str(distributed.rank_device(two, cuda_available=False)) == "cpu"
    assert str(distributed.rank_device(two, cuda_available=True, visible=2, claimed=False)) == "cuda:1"
    assert str(distributed.rank_device(two, cuda_available=True, visible=1, claimed=True)) == "cuda:0"  # its lock
    with pytest.raises(ConfigError, match="2 processes on this machine, one per GPU, but it shows 1 GPU"):
        distributed.rank_device(two, cuda_available=True, visible=1, claimed=False)
    with pytest.raises(ConfigError, match=r"4 processes, one per GPU, but this machine shows 2 GPUs \(CUDA_VISIBLE_DEVICES='0,1'\)"):
        distributed.check_devices(4, {"CUDA_VISIBLE_DEVICES": "0,1"})
    distributed.check_devices(2, {}, gpus=0)  # no GPU: CPU processes


def test_the_launcher_names_the_rank_that_failed_first_not_those_it_stopped():
    killed, stopped, lost = -signal.SIGKILL, -signal.SIGTERM, distributed.LOST_OTHERS
    assert distributed._root_cause({0: lost, 1: killed, 2: stopped}) == (1, killed)
    assert distributed._root_cause({0: stopped, 1: 2}) == (1, 2)
    assert distributed._exit_status(killed) == 137


# --------------------------------------------------------------------------- svp's loop, 1 and 2 processes


@pytest.fixture(scope="module")
def loop_runs(tmp_path_factory):
    """tests/distributed_worker.py in one process (no torchrun) and as 2 ranks under torchrun."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    for command in ([sys.executable, str(WORKER), str(one)], [*TORCHRUN, "--nproc-per-node", "2", str(WORKER), str(two)]):
        result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
    load = lambda path: torch.load(path, weights_only=False)  # noqa: E731  the worker's own files
    return load(one / "rank0.pt"), [load(two / f"rank{rank}.pt") for rank in range(2)]


def test_the_same_global_batch_gives_the_same_data_order(loop_runs):
    """Rank r trains on positions r, r + 2, ... of each batch the single process trains on,
    cropped and flipped exactly as it was there; the last global batch (1 example) leaves rank 1 none."""
    one, ranks = loop_runs
    assert len(one["batches"]) == len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 3 * 6
    for k, (index, inputs) in enumerate(one["batches"]):
        for rank, run in enumerate(ranks):
            own_index, own_inputs = run["batches"][k]
            assert torch.equal(own_index, index[rank::2]), (k, rank)
            assert torch.equal(own_inputs, inputs[rank::2]), (k, rank)
    assert [len(index) for index, _ in ranks[1]["batches"][:6]] == [16, 16, 16, 16, 16, 0]


def test_the_final_loss_equals_the_single_process_runs(loop_runs):
    """Tolerance: float32 rounding only. Both runs see the same examples, augmented alike,
    and take the same steps; they differ in the order of each step's gradient sum (one
    sum over 32 examples, against two sums over 16 added by the all-reduce, then halved),
    about one float32 rounding (6e-8 relative) per parameter per step. Over these 18
    steps of SGD with momentum that left the weights within 2.4e-7 (4e-7 relative) and the
    epoch losses within 5e-8 when measured. 1e-5 leaves a margin of 25 on the weights,
    while a real error moves them by 1e-3 and more: a rank training on other examples, a
    gradient summed instead of averaged (twice the step), the last, 1-example batch
    weighted by the ranks' shares instead of the global batch (half its step)."""
    one, ranks = loop_runs
    for row, rank_row in zip(one["history"], ranks[0]["history"], strict=True):
        assert rank_row["train_loss"] == pytest.approx(row["train_loss"], rel=1e-5, abs=0)
        assert rank_row["train_accuracy"] == row["train_accuracy"]  # the same predictions, counted over both ranks
    assert one["history"][-1]["train_loss"] < 0.75 * one["history"][0]["train_loss"]  # it learns something
    for name, weights in one["weights"].items():
        torch.testing.assert_close(ranks[0]["weights"][name], weights, rtol=0, atol=1e-5)
        assert torch.equal(ranks[1]["weights"][name], ranks[0]["weights"][name])  # DDP keeps the ranks identical
    # Every presentation's outcome gathered from the rank that made it: the single process's counts, on both ranks.
    for field, counts in one["forgetting"].items():
        assert torch.equal(ranks[0]["forgetting"][field], counts) and torch.equal(ranks[1]["forgetting"][field], counts), field
    assert one["forgetting"]["presentations"].tolist() == [3] * 161


# --------------------------------------------------------------------------- `svp train --processes 2`

TRAINING = {"batch_size": 64, "lr_schedule": [{"epochs": 1, "lr": 0.05}, {"epochs": 3, "lr": 0.01}], "eval_every": 0}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    prepare_dataset({"name": "digits"}, folder)
    return folder


def _command(digits: Path, run: Path, *options: str, training: dict = TRAINING) -> list[str]:
    return [
        sys.executable, "-m", "svp", "train", "--model", "small_cnn", "--training", json.dumps(training), "--seed", "1",
        "--data", str(digits), "--model-out", str(run / "model.pt"), "--history-out", str(run / "history.csv"),
        "--metrics-out", str(run / "metrics.json"), "--threads", "2", "--processes", "2", *options,
    ]  # fmt: skip


def _train(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def uninterrupted(digits, tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted")
    result = _train(_command(digits, run))
    assert "on 2 processes (cpu; global batch 64, 32 per process" in result.stdout
    assert result.stdout.count("epoch 4/4 ") == 1  # rank 0 alone logs
    assert json.loads((run / "metrics.json").read_text())["processes"] == 2
    return run


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (torchrun's ranks, in sessions of their own)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return sorted(children)


def _running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_and_wait_for_an_epoch(command: list[str], run: Path) -> tuple[subprocess.Popen, list[int]]:
    """Start a run in a process group of its own; return it and its ranks once rank 0 saved an epoch."""
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not (run / RESUME_FILE).exists():
        assert process.poll() is None, f"training ended before it could be killed:\n{process.communicate()[0][-3000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return process, _children(process.pid)


def test_a_sigkill_of_the_whole_run_resumes_to_the_uninterrupted_result(digits, uninterrupted, tmp_path):
    process, ranks = _start_and_wait_for_an_epoch(_command(digits, tmp_path), tmp_path)
    assert len(ranks) == 2
    os.killpg(process.pid, signal.SIGKILL)  # the launcher's group: torchrun started the ranks in sessions of their own
    process.communicate()
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in ranks):  # killed with their launcher (svp.training.distributed.die_with_launcher)
        assert time.monotonic() < deadline, "a rank outlived its launcher"
        time.sleep(0.05)
    saved = torch.load(tmp_path / RESUME_FILE, weights_only=True)["epochs_done"]
    assert 1 <= saved < 4 and not (tmp_path / "model.pt").exists()

    result = _train(_command(digits, tmp_path))
    assert f"resuming from {tmp_path / RESUME_FILE} after epoch {saved} of 4" in result.stdout
    metrics, expected = (json.loads((run / "metrics.json").read_text()) for run in (tmp_path, uninterrupted))
    for key in ("test_error", "test_loss", "n_train", "epochs", "steps", "processes"):
        assert metrics[key] == expected[key], key
    stored, reference = (torch.load(run / "model.pt", weights_only=True) for run in (tmp_path, uninterrupted))
    for name, tensor in reference["state_dict"].items():
        assert torch.equal(stored["state_dict"][name], tensor), name
    for name, counts in reference["forgetting"].items():
        assert torch.equal(torch.as_tensor(stored["forgetting"][name]), torch.as_tensor(counts)), name
    assert stored["forgetting"]["presentations"].tolist() == [4] * 1347
    assert len((tmp_path / "history.csv").read_text().splitlines()) == 1 + 4
    assert not (tmp_path / RESUME_FILE).exists()


def test_a_rank_killed_mid_training_ends_the_run_in_one_line_naming_it(digits, tmp_path):
    process, ranks = _start_and_wait_for_an_epoch(_command(digits, tmp_path), tmp_path)
    os.kill(ranks[1], signal.SIGKILL)  # as the out-of-memory killer would
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGKILL, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert output.rstrip().splitlines()[-1] == (
        "svp train: error: rank 1 of 2 was killed by SIGKILL (often the out-of-memory killer); the other ranks were "
        f"stopped; rerun the same command to resume after the last finished epoch, saved in {tmp_path / RESUME_FILE}"
    )
    # Rank 0 lost its peer in an all-reduce: said in one line, not as a bug.
    assert "svp train [rank 0 of 2]: error: lost the other ranks" in output


def test_a_rank_that_fails_ends_in_its_message_and_the_launchers(digits, tmp_path):
    missing = tmp_path / "no-data"
    result = subprocess.run(_command(missing, tmp_path), env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    # Both ranks fail alike; the one torchrun saw fail first is named, and its message is above.
    failed = re.search(r"^svp train: error: rank ([01]) of 2 stopped with exit status 2 \(its message is above\); the other "
                       r"ranks were stopped; no epoch had finished", result.stderr.rstrip().splitlines()[-1])
    assert failed, result.stderr[-2000:]
    assert f"svp train [rank {failed[1]} of 2]: error: {missing / 'manifest.json'}: missing, so the data was never" in result.stderr


def test_what_two_processes_cannot_train_is_refused_before_any_starts(digits, tmp_path, capsys):
    for options, message in [
        ({"training": {**TRAINING, "batch_size": 63}}, "training setting 'batch_size': 63 examples do not split evenly over 2"),
        ({"model": "fasttext"}, "model 'fasttext' is trained by fastText, in one process"),
    ]:
        command = _command(digits, tmp_path, training=options.get("training", TRAINING))[3:]  # after `python -m svp`
        command[command.index("small_cnn")] = options.get("model", "small_cnn")
        assert main(command) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"svp train: error: {message}") and "rank" not in error, error
