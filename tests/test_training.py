import numpy as np
import pytest
import torch

from svp.models.networks import create_model
from svp.training.loop import ImageData, TrainingSettings, augment_batch, predict_logits, train


def test_lr_schedule_is_piecewise_constant_per_epoch():
    settings = TrainingSettings()
    assert settings.epochs == 181
    assert [settings.lr_at(e) for e in (0, 1, 90, 91, 135, 136, 180)] == [0.01, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    with pytest.raises(IndexError):
        settings.lr_at(181)


def test_unknown_training_setting_is_named():
    with pytest.raises(ValueError, match="epochz"):
        TrainingSettings.from_dict({"epochz": 3})


def test_augmentation_crops_inside_the_padding_and_flips():
    generator = torch.Generator().manual_seed(0)
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    assert torch.equal(augment_batch(images, 0, False, generator), images)
    cropped = augment_batch(images.repeat(64, 1, 1, 1), 1, False, generator)
    assert cropped.shape == (128, 1, 4, 4)
    # Each crop is a 4x4 window of the zero-padded 6x6 image: its non-zero values are a
    # contiguous block of the original.
    originals = images.repeat(64, 1, 1, 1)
    for crop, original in zip(cropped, originals):
        padded = torch.nn.functional.pad(original, (1, 1, 1, 1))
        windows = [padded[:, r : r + 4, c : c + 4] for r in range(3) for c in range(3)]
        assert any(torch.equal(crop, w) for w in windows)
    flipped = augment_batch(images.repeat(64, 1, 1, 1), 0, True, generator)
    is_flipped = [torch.equal(f, o.flip(2)) for f, o in zip(flipped, originals)]
    assert 0 < sum(is_flipped) < 128
    assert all(torch.equal(f, o) or flip for f, o, flip in zip(flipped, originals, is_flipped))


def test_augmented_batch_equals_crop_then_flip_of_each_uint8_image():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 256, (64, 5, 6, 3)).astype(np.uint8)  # no zeros: padding shows
    data = ImageData.from_arrays(x, np.zeros(64, dtype=np.int64), [0.5] * 3, [0.25] * 3, torch.device("cpu"))
    index = torch.arange(63, -1, -1)
    generator = torch.Generator().manual_seed(1)
    images, labels = data.augmented_batch(index, {"crop_padding": 2, "flip": True}, generator)
    originals = torch.from_numpy(x).permute(0, 3, 1, 2)[index]
    windows_seen = set()
    for image, original in zip(images, originals):
        padded = torch.nn.functional.pad(original, (2, 2, 2, 2))
        candidates = {
            (r, c, f): data.normalise((w.flip(2) if f else w).unsqueeze(0))[0]
            for r in range(5) for c in range(5) for f in (False, True)
            for w in [padded[:, r : r + 5, c : c + 6]]
        }
        matches = [key for key, candidate in candidates.items() if torch.equal(candidate, image)]
        assert matches, "not a zero-padded crop, flipped or not, of its own image"
        windows_seen.update(matches)
    assert len({f for _, _, f in windows_seen}) == 2 and len({(r, c) for r, c, _ in windows_seen}) > 5
    assert torch.equal(labels, data.labels[index])


def _toy_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 60, (n, 8, 8, 1)).astype(np.uint8)
    x[np.arange(n), y * 2, :, 0] = 255  # a class-dependent bright row makes it learnable
    return ImageData.from_arrays(x, y, [0.3], [0.3], torch.device("cpu"))


def _train_once(seed, data):
    settings = TrainingSettings(lr_schedule=[{"epochs": 3, "lr": 0.05}], batch_size=32, eval_every=1)
    torch.manual_seed(seed)
    model = create_model("small_cnn", 3, 1)
    history = train(model, data, torch.arange(len(data)), settings, {"crop_padding": 1, "flip": False}, seed, data, log=lambda _: None)
    return model, history


def test_training_learns_and_is_reproducible_on_cpu():
    data = _toy_data()
    model_a, history_a = _train_once(0, data)
    model_b, history_b = _train_once(0, data)
    assert history_a[-1]["train_loss"] < history_a[0]["train_loss"]
    assert [r["train_loss"] for r in history_a] == [r["train_loss"] for r in history_b]
    torch.testing.assert_close(predict_logits(model_a, data, 50), predict_logits(model_b, data, 50), rtol=0, atol=0)
    _, history_c = _train_once(1, data)
    assert history_c[-1]["train_loss"] != history_a[-1]["train_loss"]
    assert {"epoch", "lr", "train_loss", "train_accuracy", "test_error", "test_accuracy"} <= set(history_a[-1])


def test_predict_logits_covers_every_example_in_order():
    data = _toy_data(n=37)
    torch.manual_seed(0)
    model = create_model("small_cnn", 3, 1)
    batched = predict_logits(model, data, batch_size=10)
    whole = predict_logits(model, data, batch_size=1000)
    assert batched.shape == (37, 3)
    torch.testing.assert_close(batched, whole, rtol=1e-5, atol=1e-5)


def test_batches_are_channels_last_and_normalised_channel_by_channel():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 6, 5, 3)).astype(np.uint8)
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.3, 0.4]
    data = ImageData.from_arrays(x, np.arange(20), mean, std, torch.device("cpu"))
    index = torch.tensor([7, 3, 3, 19])
    images, labels = data.batch(index)
    assert images.shape == (4, 3, 6, 5) and images.is_contiguous(memory_format=torch.channels_last)
    expected = (torch.from_numpy(x).permute(0, 3, 1, 2)[index].float() - torch.tensor(mean).view(1, 3, 1, 1) * 255) / (
        torch.tensor(std).view(1, 3, 1, 1) * 255
    )
    assert torch.equal(images, expected) and labels.tolist() == [7, 3, 3, 19]
    # A slice of consecutive examples gives what their indices give.
    sliced, sliced_labels = data.batch(slice(4, 9))
    assert torch.equal(sliced, data.batch(torch.arange(4, 9))[0]) and sliced_labels.tolist() == [4, 5, 6, 7, 8]
    augmented, _ = data.augmented_batch(index, {"crop_padding": 1, "flip": True}, torch.Generator().manual_seed(0))
    assert augmented.is_contiguous(memory_format=torch.channels_last)


def test_predict_logits_equals_the_model_on_each_batch():
    data = _toy_data(n=37)
    torch.manual_seed(0)
    model = create_model("small_cnn", 3, 1).to(memory_format=torch.channels_last).eval()
    with torch.no_grad():
        expected = torch.cat([model(data.batch(torch.arange(s, min(s + 16, 37)))[0]) for s in range(0, 37, 16)])
    assert torch.equal(predict_logits(model, data, batch_size=16), expected)


@pytest.mark.parametrize("nesterov", [False, True])
def test_svp_sgd_steps_equal_torchs_own(nesterov):
    from svp.training.loop import sgd

    data = _toy_data()
    settings = TrainingSettings(lr_schedule=[{"epochs": 1, "lr": 0.05}], nesterov=nesterov)
    weights = []
    for ours in (True, False):
        torch.manual_seed(0)
        model = create_model("small_cnn", 3, 1)
        optimizer, step = sgd(model, settings)
        if not ours:
            step = optimizer.step
        for start in range(0, 96, 32):
            images, labels = data.batch(torch.arange(start, start + 32))
            loss = torch.nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            step()
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_training_and_resuming_never_import_torch_dynamo(tmp_path):
    """torch._dynamo takes as long to import as torch: a training job has no use for it."""
    import subprocess
    import sys

    code = f"""
import sys, numpy as np, torch
from svp.models.networks import create_model
from svp.training.loop import ImageData, TrainingSettings, train
rng = np.random.default_rng(0)
data = ImageData.from_arrays(rng.integers(0, 256, (64, 8, 8, 1)).astype(np.uint8), rng.integers(0, 3, 64), [0.3], [0.3], torch.device("cpu"))
settings = TrainingSettings(lr_schedule=[{{"epochs": 2, "lr": 0.05}}], batch_size=32)
for run in range(2):  # the second resumes from the first's saved state
    train(create_model("small_cnn", 3, 1), data, torch.arange(64), settings, {{"crop_padding": 1, "flip": False}}, 0, data,
          log=lambda _: None, resume_path={str(tmp_path / "resume.pt")!r}, fingerprint={{}})
assert "torch._dynamo" not in sys.modules, "torch._dynamo was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)
