"""Selection methods beyond uncertainty: forgetting events, GraNd, k-center greedy."""

import json
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from svp import stages
from svp.config import ConfigError, validate_config
from svp.data import prepare_dataset
from svp.errors import StageInputError
from svp.models import networks
from svp.selection.kcenter import k_center_greedy
from svp.selection.methods import forgetting_scores, order_scores
from svp.selection.ranking import average_ranks
from svp.training import checkpoint as checkpoint_module
from svp.training import loop
from svp.training.forgetting import ForgettingTracker
from svp.training.loop import ImageData, TrainingSettings, train
from svp.training.per_example import gradient_norms, last_linear, penultimate_embeddings

TRAINING = {"batch_size": 64, "lr_schedule": [{"epochs": 3, "lr": 0.05}], "eval_every": 0}


def test_forgetting_counts_transitions_from_right_to_wrong():
    tracker = ForgettingTracker(5, torch.device("cpu"))
    # Outcomes per presentation, example by example (example 4 is never presented):
    # 0: R W R W -> 2 events; 1: W W W W -> never learned; 2: R R R R -> 0; 3: W R W R -> 1.
    outcomes = {0: [1, 0, 1, 0], 1: [0, 0, 0, 0], 2: [1, 1, 1, 1], 3: [0, 1, 0, 1]}
    for step in range(4):
        index = torch.tensor([3, 0, 2, 1] if step % 2 else [1, 2, 0, 3])  # any batch order
        correct = torch.tensor([bool(outcomes[int(i)][step]) for i in index])
        tracker.update(index[:2], correct[:2])  # two minibatches per pass
        tracker.update(index[2:], correct[2:])
    state = tracker.state_dict()
    assert state["events"].tolist() == [2, 0, 0, 1, 0]
    assert state["ever_correct"].tolist() == [True, False, True, True, False]
    assert state["presentations"].tolist() == [4, 4, 4, 4, 0]


def test_never_learned_examples_rank_first_and_unpresented_ones_are_refused():
    events = np.array([2, 0, 0, 1])
    scores = forgetting_scores(events, np.array([True, False, True, True]), np.array([4, 4, 4, 4]), epochs=4)
    assert scores.tolist() == [2, 4, 0, 1]
    assert average_ranks(scores).tolist() == [1, 0, 3, 2]  # never learned first, then most forgotten
    with pytest.raises(StageInputError, match="never presented"):
        forgetting_scores(events, np.ones(4, bool), np.array([4, 0, 4, 4]), epochs=4)


def _images(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    y = rng.integers(0, 4, size=n)
    return ImageData.from_arrays(x, y, [0.5] * 3, [0.25] * 3, torch.device("cpu"))


def _train_tracked(data, resume_path=None):
    torch.manual_seed(0)
    model = networks.create_model("tiny_cnn", 4, 3)
    tracker = ForgettingTracker(len(data), torch.device("cpu"))
    settings = TrainingSettings.from_dict({**TRAINING, "batch_size": 16})
    augment = {"crop_padding": 1, "flip": True}
    train(model, data, torch.arange(len(data)), settings, augment, 5, resume_path=resume_path, fingerprint={"run": 1}, forgetting=tracker, log=lambda _: None)
    return model, tracker.state_dict()


def test_resumed_training_counts_the_same_forgetting_events(tmp_path, monkeypatch):
    data = _images()
    _, uninterrupted = _train_tracked(data)
    assert uninterrupted["presentations"].tolist() == [3] * len(data)

    saved = []
    real_save = checkpoint_module.save_training_state

    def save_then_die(*args, **kwargs):  # killed right after the first epoch's state is saved
        real_save(*args, **kwargs)
        saved.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_training_state", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _train_tracked(data, tmp_path / "resume.pt")
    monkeypatch.setattr(loop, "save_training_state", real_save)
    assert saved == [1]
    _, resumed = _train_tracked(data, tmp_path / "resume.pt")
    for name, values in uninterrupted.items():
        assert torch.equal(resumed[name], values), name


def test_a_resume_state_without_forgetting_counts_trains_from_scratch(tmp_path):
    data = _images()
    torch.manual_seed(0)
    model = networks.create_model("tiny_cnn", 4, 3)
    settings = TrainingSettings.from_dict({**TRAINING, "batch_size": 16})
    train(model, data, torch.arange(len(data)), settings, {}, 5, resume_path=tmp_path / "resume.pt", fingerprint={"run": 1}, log=lambda _: None)
    messages = []
    tracker = ForgettingTracker(len(data), torch.device("cpu"))
    train(model, data, torch.arange(len(data)), settings, {}, 5, resume_path=tmp_path / "resume.pt", fingerprint={"run": 1}, forgetting=tracker, log=messages.append)
    assert any("no forgetting counts" in m for m in messages)
    assert tracker.presentations.tolist() == [3] * len(data)


@pytest.mark.parametrize("name", ["tiny_cnn", "preact_resnet8"])
def test_grand_equals_each_examples_own_backward_pass(name):
    data = _images(n=12)
    torch.manual_seed(1)
    model = networks.create_model(name, 4, 3)
    with torch.no_grad():  # batch norm with statistics of its own, not the identity
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    norms = gradient_norms(model, data, batch_size=5)  # chunks of 5, 5 and 2
    model.eval()
    expected = []
    for i in range(len(data)):
        inputs, labels = data.batch(slice(i, i + 1))
        model.zero_grad()
        F.cross_entropy(model(inputs), labels).backward()
        expected.append(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters())).item())
    np.testing.assert_allclose(norms, expected, rtol=1e-4)


def test_embeddings_are_the_last_linear_layers_input():
    data = _images(n=10)
    torch.manual_seed(2)
    model = networks.create_model("tiny_cnn", 4, 3).eval()
    assert last_linear(model) is model.fc
    embedded = penultimate_embeddings(model, data, batch_size=4)
    inputs, _ = data.batch(slice(0, 10))
    with torch.no_grad():
        expected = torch.flatten(model.pool(model.features(inputs)), 1)
        np.testing.assert_allclose(model.fc(torch.from_numpy(embedded)).numpy(), model(inputs).numpy(), rtol=1e-5, atol=1e-6)
    assert embedded.shape == (10, 64) and embedded.dtype == np.float32
    np.testing.assert_allclose(embedded, expected.numpy(), rtol=1e-6)


def test_order_scores_rank_earlier_picks_higher():
    scores = order_scores(np.array([3, 0, 4]), 6)
    assert scores.tolist() == [2, 0, 0, 3, 1, 0]


@pytest.fixture(scope="module")
def digits_proxy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("methods")
    prepare_dataset({"name": "digits"}, folder / "data")
    stages.train_run(
        model_name="tiny_cnn", training=TRAINING, seed=4, data_dir=folder / "data", model_out=folder / "model.pt",
        history_out=folder / "history.csv", metrics_out=folder / "metrics.json", threads=1,
    )
    return folder


def test_kcenter_scores_follow_k_center_greedy_on_the_embeddings(digits_proxy):
    folder = digits_proxy
    scores = stages.score_method_run(method="kcenter", checkpoint=folder / "model.pt", data_dir=folder / "data", scores_out=folder / "kcenter.parquet", threads=1)
    checkpoint = stages.read_model_checkpoint(folder / "model.pt")
    from svp.data import load_prepared
    from svp.trainers.torch_trainer import model_inputs, torch_model

    (x, y), _, manifest = load_prepared(folder / "data")
    embedded = penultimate_embeddings(torch_model(checkpoint, "model.pt"), model_inputs(x, y, manifest, torch.device("cpu")), 256)
    order = k_center_greedy(embedded, len(y), seed=4)
    assert np.array_equal(np.argsort(-scores["kcenter"].to_numpy(), kind="stable"), order)
    assert list(pd.read_parquet(folder / "kcenter.parquet").columns) == ["index", "label", "kcenter"]


def test_embeddings_and_kcenter_beyond_memory_go_to_scratch_files_and_pick_the_same(digits_proxy, tmp_path, monkeypatch):
    """With svp.scratch's in-memory limit at 0, the embeddings are written a 10-row chunk at a
    time into a memory-mapped file and k-center centres them into another: the same
    embeddings, the same order, and no file left behind."""
    from svp import scratch
    from svp.data import load_prepared
    from svp.trainers.torch_trainer import model_inputs, torch_model
    from svp.training import per_example

    folder = digits_proxy
    (x, y), _, manifest = load_prepared(folder / "data")
    model = torch_model(stages.read_model_checkpoint(folder / "model.pt"), "model.pt")
    data = model_inputs(x, y, manifest, torch.device("cpu"))
    in_memory = penultimate_embeddings(model, data, 256)
    in_memory_scores = stages.score_method_run(
        method="kcenter", checkpoint=folder / "model.pt", data_dir=folder / "data", scores_out=tmp_path / "memory.parquet", threads=1
    )
    monkeypatch.setattr(scratch, "IN_MEMORY_BYTES", 0)
    monkeypatch.setattr(per_example, "CHUNK_VALUES", 10 * in_memory.shape[1])
    mapped = penultimate_embeddings(model, data, 4, scratch=tmp_path)
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, in_memory)
    out = tmp_path / "out"
    scores = stages.score_method_run(method="kcenter", checkpoint=folder / "model.pt", data_dir=folder / "data", scores_out=out / "kcenter.parquet", threads=1)
    assert scores["kcenter"].equals(in_memory_scores["kcenter"])
    assert np.array_equal(k_center_greedy(mapped, 50, seed=4, scratch=tmp_path), k_center_greedy(in_memory, 50, seed=4))
    del mapped
    assert sorted(path.name for path in out.iterdir()) == ["kcenter.parquet"]  # the scratch files were never named


def test_a_scratch_file_the_disk_cannot_hold_is_refused_naming_the_folder(tmp_path, monkeypatch):
    from svp import scratch
    from svp.errors import OutputError

    monkeypatch.setattr(scratch, "IN_MEMORY_BYTES", 0)
    with pytest.raises(OutputError, match=rf"cannot make a 1024.0 GiB scratch file in {tmp_path}.*free space there"):
        scratch.scratch_array((1 << 28, 1024), np.float32, tmp_path)


def test_forgetting_and_grand_score_files(digits_proxy):
    folder = digits_proxy
    forgetting = stages.score_method_run(method="forgetting", checkpoint=folder / "model.pt", data_dir=folder / "data", scores_out=folder / "f.parquet")
    counts = torch.load(folder / "model.pt", weights_only=True)["forgetting"]
    assert counts["presentations"].tolist() == [3] * len(forgetting)
    assert np.array_equal(forgetting["forgetting_events"], counts["events"].numpy())
    assert (forgetting["forgetting"][forgetting["never_learned"]] == 3).all()
    grand = stages.score_method_run(method="grand", checkpoint=folder / "model.pt", data_dir=folder / "data", scores_out=folder / "g.parquet", batch_size=300)
    assert np.isfinite(grand["grand"]).all() and (grand["grand"] > 0).all()


def test_a_model_without_forgetting_counts_is_refused_naming_the_file(digits_proxy, tmp_path):
    stored = torch.load(digits_proxy / "model.pt", weights_only=True)
    del stored["forgetting"]
    torch.save(stored, tmp_path / "old.pt")
    with pytest.raises(StageInputError, match=r"old\.pt: holds no forgetting counts.*train_proxy"):
        stages.score_method_run(method="forgetting", checkpoint=tmp_path / "old.pt", data_dir=digits_proxy / "data", scores_out=tmp_path / "f.parquet")


def test_a_diverged_model_gives_no_forgetting_scores(digits_proxy, tmp_path):
    # NaN logits predict class 0 (argmax of NaN), which would count every class-0 example as learned.
    stored = torch.load(digits_proxy / "model.pt", weights_only=True)
    first = next(name for name, tensor in stored["state_dict"].items() if tensor.is_floating_point())
    stored["state_dict"][first] = torch.full_like(stored["state_dict"][first], float("nan"))
    torch.save(stored, tmp_path / "diverged.pt")
    with pytest.raises(StageInputError, match=rf"diverged\.pt: the model's weights \({first}\) are not finite"):
        stages.score_method_run(method="forgetting", checkpoint=tmp_path / "diverged.pt", data_dir=digits_proxy / "data", scores_out=tmp_path / "f.parquet")
    assert not (tmp_path / "f.parquet").exists()


def _text_config(metrics):
    return {
        "experiment": "t",
        "dataset": {"name": "imdb"},
        "proxies": {"ft": {"model": "fasttext", "seeds": [0]}},
        "targets": {"ft": {"model": "fasttext", "seeds": [0]}},
        "selection": {"metrics": metrics},
    }


@pytest.mark.parametrize("metric", ["forgetting", "grand"])
def test_fasttext_proxies_refuse_forgetting_and_grand(metric):
    with pytest.raises(ConfigError, match=rf"selection\.metrics.*{metric}.*proxy 'ft'.*fastText"):
        validate_config(_text_config(["entropy", metric]))


def test_fasttext_proxies_take_kcenter():
    assert validate_config(_text_config(["kcenter"]))["selection"]["metrics"] == ["kcenter"]


def test_unknown_method_is_refused_by_the_stage(tmp_path):
    with pytest.raises(ConfigError, match="unknown selection method"):
        stages.score_method_run(method="herding", checkpoint=tmp_path / "m.pt", data_dir=tmp_path, scores_out=tmp_path / "s.parquet")


class _SwallowingModel(torch.nn.Module):
    """Delivers a Ctrl-C during its first forward pass and swallows it, as a finaliser does
    (Python prints "Exception ignored" for an exception raised in a __del__); counts its
    forward passes."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.forwards = 0

    def forward(self, inputs):
        self.forwards += 1
        if self.forwards == 1:
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass
        return self.model(inputs)


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler, reason="a test runner handles SIGINT here")
def test_a_ctrl_c_swallowed_by_a_finaliser_still_stops_training():
    data = _images()
    model = _SwallowingModel(networks.create_model("tiny_cnn", 4, 3))
    settings = TrainingSettings.from_dict({**TRAINING, "batch_size": 16})
    tracker = ForgettingTracker(len(data), torch.device("cpu"))
    try:
        with pytest.raises(KeyboardInterrupt):
            train(model, data, torch.arange(len(data)), settings, {}, 5, forgetting=tracker, log=lambda _: None)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert model.forwards == 1  # stopped after the batch it came in, not at the epoch's end (6 batches)
    assert int(tracker.presentations.sum()) == 0  # the unfinished epoch counts no presentation
