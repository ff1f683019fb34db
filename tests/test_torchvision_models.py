"""Models by name from torchvision.models, started fresh, from a local checkpoint, or from
torchvision weights by name (found in torch's hub cache: nothing is downloaded here)."""

import urllib.error

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from svp.config import ConfigError, validate_config
from svp.data import prepare_dataset
from svp.errors import StageInputError
from svp.models import torchvision_models, torchvision_names
from svp.models.networks import create_model
from svp.stages import score_method_run, score_run, train_run
from svp.training.per_example import penultimate_embeddings

TRAINING = {"batch_size": 16, "lr_schedule": [{"epochs": 1, "lr": 0.01}], "eval_every": 0}


def _save_resnet18(path, num_classes=1000, seed=1, wrap=None):
    torch.manual_seed(seed)
    state = create_model("torchvision/resnet18", num_classes).state_dict()
    torch.save({wrap: state} if wrap else state, path)
    return state


def test_a_torchvision_model_gets_the_datas_classes_and_its_embeddings_are_the_heads_input():
    torch.manual_seed(0)
    model = create_model("torchvision/resnet18", num_classes=7)
    assert model.fc.out_features == 7
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 7)

    class Images:  # the interface penultimate_embeddings reads: the count, and batches of inputs in order
        def __len__(self):
            return 5

        def inference_batches(self, batch_size):
            images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
            return ((images[start : start + batch_size], None) for start in range(0, 5, batch_size))

    assert penultimate_embeddings(model, Images(), batch_size=2).shape == (5, 512)


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_a_local_checkpoint_for_other_classes_loads_all_but_a_fresh_head(tmp_path, capsys, wrap):
    saved = _save_resnet18(tmp_path / "r18.pth", wrap=wrap)
    torch.manual_seed(0)
    fresh_head = create_model("torchvision/resnet18", 10).fc.weight.clone()
    torch.manual_seed(0)
    model = create_model("torchvision/resnet18", 10, weights=str(tmp_path / "r18.pth"))
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved if not k.startswith("fc."))
    assert model.fc.out_features == 10 and torch.equal(model.fc.weight, fresh_head)  # seeded, not the checkpoint's
    assert "trained for 1000 classes; a fresh classifier head (fc)" in capsys.readouterr().out


def test_a_local_checkpoint_for_the_same_classes_loads_its_head_too_ddp_prefixes_and_all(tmp_path):
    torch.manual_seed(3)
    state = create_model("torchvision/resnet18", 4).state_dict()
    torch.save({f"module.{k}": v for k, v in state.items()}, tmp_path / "ddp.pt")
    model = create_model("torchvision/resnet18", 4, weights=str(tmp_path / "ddp.pt"))
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_a_checkpoint_of_another_architecture_is_refused_naming_the_file_and_keys(tmp_path):
    torch.save(create_model("torchvision/resnet34", 10).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(StageInputError, match=r"r34\.pth: its weights are not those of model 'torchvision/resnet18': keys unexpected layer1\.2\."):
        create_model("torchvision/resnet18", 10, weights=str(tmp_path / "r34.pth"))
    torch.save(create_model("torchvision/resnet50", 10).state_dict(), tmp_path / "r50.pth")
    with pytest.raises(StageInputError, match=r"r50\.pth: its weights are not those of model 'torchvision/resnet101': keys missing layer3\.10\."):
        create_model("torchvision/resnet101", 10, weights=str(tmp_path / "r50.pth"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(StageInputError, match=r"junk\.pt: not a readable torch checkpoint"):
        create_model("torchvision/resnet18", 10, weights=str(tmp_path / "junk.pt"))


def test_torchvision_weights_by_name_come_from_the_hub_cache_with_the_head_replaced(tmp_path, monkeypatch):
    """torchvision's own loading path, offline: the file sits in the hub cache where a download would put it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    entry = torchvision_names.weights_enum("torchvision/resnet18", "IMAGENET1K_V1")
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    saved = _save_resnet18(cache / entry.url.rsplit("/", 1)[-1])
    model = create_model("torchvision/resnet18", 3, weights="ResNet18_Weights.IMAGENET1K_V1")
    assert torch.equal(model.conv1.weight, saved["conv1.weight"]) and model.fc.out_features == 3


def test_weights_that_cannot_be_downloaded_say_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    expected = f"put it at {tmp_path}/hub/checkpoints/resnet18-f37072fd.pth"
    with pytest.raises(StageInputError, match=r"cannot get the weights ResNet18_Weights\.IMAGENET1K_V1 .*URLError") as error:
        create_model("torchvision/resnet18", 3, weights="DEFAULT")
    assert expected in str(error.value)


def test_an_input_the_model_cannot_read_is_refused_before_training():
    torchvision_models.check_input(create_model("torchvision/resnet18", 3), "torchvision/resnet18", [16, 16, 3])
    with pytest.raises(StageInputError, match=r"'torchvision/inception_v3' cannot read the data's 32x32 images .*smallest input as 75x75.*at least 75"):
        torchvision_models.check_input(create_model("torchvision/inception_v3", 3), "torchvision/inception_v3", [32, 32, 3])
    with pytest.raises(StageInputError, match=r"'torchvision/vit_b_16' cannot read the data's 240x240 images \(AssertionError"):
        torchvision_models.check_input(create_model("torchvision/vit_b_16", 3), "torchvision/vit_b_16", [240, 240, 3])
    with pytest.raises(StageInputError, match=r"reads colour \(RGB, 3-channel\) images, but the data has 1 channel"):
        create_model("torchvision/resnet18", 3, in_channels=1)


def _config(dataset=None, **run):
    return {
        "experiment": "tv", "dataset": dataset or {"name": "cifar10"}, "proxies": {"p": {"model": "small_cnn"}},
        "targets": {"t": run},
    }


@pytest.mark.parametrize(
    "run, message",
    [
        ({"model": "torchvision/resnet5"}, "'targets.t.model': model 'torchvision/resnet5': torchvision.models has no classifier 'resnet5'; did you mean torchvision/resnet50"),
        ({"model": "torchvision/resnet50", "training": {"weights": "IMAGENET1K_V9"}}, "'targets.t.training.weights': weights 'IMAGENET1K_V9' are not torchvision weights of 'torchvision/resnet50'; its weights: ResNet50_Weights.IMAGENET1K_V1, ResNet50_Weights.IMAGENET1K_V2, ResNet50_Weights.DEFAULT"),
        ({"model": "resnet18", "training": {"weights": "DEFAULT"}}, "only torchvision/<name> models take; for 'resnet18' give the path of a local checkpoint"),
        ({"model": "torchvision/resnet50", "training": {"weights": "missing/r50.pth"}}, "'targets.t.training.weights': checkpoint file not found: "),
        ({"model": "torchvison/resnet50"}, "unknown model 'torchvison/resnet50'"),
    ],
)
def test_check_config_names_a_bad_model_or_weights(run, message):
    with pytest.raises(ConfigError) as error:
        validate_config(_config(**run))
    assert message in str(error.value)


def test_check_config_takes_torchvision_models_and_their_weights(tmp_path):
    (tmp_path / "w.pt").write_bytes(b"")
    config = validate_config(_config(model="torchvision/resnet50", training={"weights": "ResNet50_Weights.IMAGENET1K_V2"}))
    assert config["targets"]["t"]["training"]["weights"] == "ResNet50_Weights.IMAGENET1K_V2"
    validate_config(_config(model="small_cnn", training={"weights": str(tmp_path / "w.pt")}))
    yaml.safe_dump(config)


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    """A small RGB data set (3 classes of 16x16 images), as an npz data set."""
    folder = tmp_path_factory.mktemp("colour")
    rng = np.random.default_rng(0)
    for split, n in (("train", 36), ("test", 9)):
        y = np.arange(n) % 3
        x = (rng.integers(0, 60, (n, 16, 16, 3)) + 90 * y[:, None, None, None]).astype(np.uint8)
        np.savez(folder / f"{split}.npz", x=x, y=y)
    prepare_dataset({"name": "npz", "train": [str(folder / "train.npz")], "test": [str(folder / "test.npz")]}, folder / "prepared")
    return folder


def test_a_torchvision_proxy_from_a_local_checkpoint_trains_scores_and_embeds(colour_data, tmp_path):
    _save_resnet18(tmp_path / "imagenet-like.pth")
    data = colour_data / "prepared"
    training = {**TRAINING, "weights": str(tmp_path / "imagenet-like.pth")}
    metrics = train_run(
        model_name="torchvision/resnet18", training=training, seed=0, data_dir=data, model_out=tmp_path / "model.pt",
        history_out=tmp_path / "history.csv", metrics_out=tmp_path / "metrics.json", threads=1,
    )
    assert metrics["n_train"] == 36 and np.isfinite(metrics["test_error"])
    stored = torch.load(tmp_path / "model.pt", weights_only=True)
    assert stored["model_name"] == "torchvision/resnet18" and stored["state_dict"]["fc.weight"].shape == (3, 512)
    score_run(checkpoint=tmp_path / "model.pt", data_dir=data, scores_out=tmp_path / "scores.parquet", threads=1)
    scores = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(scores) == 36 and scores["entropy"].notna().all()
    kcenter = score_method_run(
        method="kcenter", checkpoint=tmp_path / "model.pt", data_dir=data, scores_out=tmp_path / "kc.parquet", threads=1
    )
    assert sorted(pd.read_parquet(tmp_path / "kc.parquet")["kcenter"].rank(method="first")) == list(range(1, 37))
    assert len(kcenter) == 36


# --------------------------------------------------------------------------- the input a torchvision model meets


@pytest.mark.parametrize(
    "dataset, model, message",
    [
        ({"name": "cifar10"}, "torchvision/inception_v3", "config key 'targets.t.model': model 'torchvision/inception_v3' takes images of at least 75x75 pixels (the smallest input torchvision documents for it), but the data's images are 32x32"),
        ({"name": "imagenet", "path": "/nowhere", "image_size": 64}, "torchvision/inception_v3", "takes images of at least 75x75 pixels (the smallest input torchvision documents for it), but the data's images are 64x64"),
        ({"name": "image_folder", "path": "FOLDER", "storage": "disk"}, "torchvision/vit_b_16", None),  # 224 by default: fits
        ({"name": "image_folder", "path": "FOLDER", "storage": "disk", "image_size": 128}, "torchvision/vit_b_16", "'torchvision/vit_b_16' takes images of at least 224x224 pixels"),
        ({"name": "digits"}, "torchvision/resnet50", "config key 'targets.t.model': model 'torchvision/resnet50' reads colour (RGB, 3-channel) images, but the data's images have 1 channel(s); prepare the data in colour"),
    ],
)
def test_check_config_tries_a_torchvision_model_against_the_images_it_will_meet(dataset, model, message, tmp_path):
    """specs.input_problem, every model's one check against its input, knows torchvision's least
    sizes and colour: where the images' size is known from the config (the data sets that
    declare it, imagenet's and a disk image_folder's image_size, 224 by default), before any job."""
    if dataset.get("path") == "FOLDER":
        for split in ("train", "test"):
            (tmp_path / split).mkdir()
        dataset = {**dataset, "path": str(tmp_path)}
    if message is None:
        validate_config(_config(dataset, model=model))
        return
    with pytest.raises(ConfigError) as error:
        validate_config(_config(dataset, model=model))
    assert message in str(error.value)


def test_the_train_stage_refuses_images_smaller_than_torchvision_documents_before_reading_them(colour_data, tmp_path, monkeypatch):
    """The same check where the size is known once prepared (an npz data set of 16x16 images):
    a ConfigError naming the data and the size, before the training split is read or a network built."""
    from svp import data

    def unread(*args, **kwargs):
        raise AssertionError("the data was read before the model was checked against it")

    monkeypatch.setattr(data, "load_prepared", unread)
    with pytest.raises(ConfigError, match=r"prepared: model 'torchvision/inception_v3' takes images of at least 75x75 pixels \(the smallest input torchvision documents for it\), but the data's images are 16x16"):
        train_run(
            model_name="torchvision/inception_v3", training=TRAINING, seed=0, data_dir=colour_data / "prepared",
            model_out=tmp_path / "model.pt", history_out=tmp_path / "history.csv", metrics_out=tmp_path / "metrics.json", threads=1,
        )


def test_a_torchvision_model_takes_torchs_seeds_and_refuses_larger_ones(colour_data, tmp_path):
    """Trainer.max_seed holds for torchvision models as for svp's torch models: a seed above
    fastText's 32-bit limit trains (and draws its weights from it), one above 2^64 - 1 is refused."""
    seed = 2**64 - 1
    outputs = {"model_out": tmp_path / "model.pt", "history_out": tmp_path / "history.csv", "metrics_out": tmp_path / "metrics.json"}
    metrics = train_run(
        model_name="torchvision/resnet18", training=TRAINING, seed=seed, data_dir=colour_data / "prepared", threads=1, **outputs
    )
    assert metrics["seed"] == seed and np.isfinite(metrics["test_error"])
    assert torch.load(tmp_path / "model.pt", weights_only=True)["seed"] == seed
    with pytest.raises(ConfigError, match=r"seed 18446744073709551616 is above 18446744073709551615, the largest seed the torch training loop takes \(model 'torchvision/resnet18'\)"):
        train_run(
            model_name="torchvision/resnet18", training=TRAINING, seed=2**64, data_dir=colour_data / "prepared", threads=1, **outputs
        )
