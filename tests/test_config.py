import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from svp.config import ConfigError, load_config, validate_config
from svp.data.encoding import DEFAULT_LENGTH
from svp.trainers import TRAINERS


def minimal() -> dict:
    return {
        "experiment": "unit",
        "dataset": {"name": "digits"},
        "proxies": {"cnn": {"model": "small_cnn"}},
        "targets": {"big": {"model": "preact_resnet20"}},
    }


def test_shipped_configs_are_valid(shipped_config):  # each config/*.yaml (conftest.py)
    load_config(shipped_config)


def test_defaults_are_filled_in():
    resolved = validate_config(minimal())
    assert resolved["selection"] == {
        "metrics": ["least_confidence", "margin", "entropy"],
        "fractions": [0.4, 0.6, 0.8, 1.0],
        "class_balanced": False,
        "random": True,
    }
    training = resolved["proxies"]["cnn"]["training"]
    assert training["batch_size"] == 128 and training["momentum"] == 0.9 and training["weight_decay"] == 5e-4
    assert sum(piece["epochs"] for piece in training["lr_schedule"]) == 181
    assert resolved["proxies"]["cnn"]["seeds"] == [0]
    assert resolved["dataset"]["root"] == "data"


def test_validation_does_not_change_its_input():
    config = minimal()
    before = copy.deepcopy(config)
    validate_config(config)
    assert config == before


def _with(change) -> dict:
    config = minimal()
    change(config)
    return config


BAD_CONFIGS = {
    "unknown top-level key": (lambda c: c.update(epochs=3), ["'epochs'", "allowed keys"]),
    "unknown nested key": (
        lambda c: c["proxies"]["cnn"].update(training={"lr": 0.1}),
        ["proxies.cnn.training.lr", "lr_schedule"],
    ),
    "wrong type": (lambda c: c["proxies"]["cnn"].update(seeds="0"), ["proxies.cnn.seeds", "not of type 'array'"]),
    "fraction above one": (lambda c: c.update(selection={"fractions": [0.5, 1.5]}), ["selection.fractions[1]", "maximum"]),
    "fraction of zero": (lambda c: c.update(selection={"fractions": [0]}), ["selection.fractions[0]"]),
    "unknown metric": (
        lambda c: c.update(selection={"metrics": ["entropie"]}),
        ["selection.metrics[0]", "'entropie'", "least_confidence", "margin", "entropy"],
    ),
    "unknown data set": (lambda c: c["dataset"].update(name="imagenet42"), ["dataset.name", "'imagenet42'", "cifar10"]),
    "unknown model": (lambda c: c["targets"]["big"].update(model="resnet9000"), ["targets.big.model", "preact_resnet164"]),
    "missing required key": (lambda c: c.pop("targets"), ["'targets' is a required property"]),
    "reserved run name": (lambda c: c["proxies"].update(random={"model": "small_cnn"}), ["proxies", "random"]),
    "negative learning rate": (
        lambda c: c["targets"]["big"].update(training={"lr_schedule": [{"epochs": 1, "lr": -0.1}]}),
        ["targets.big.training.lr_schedule[0].lr"],
    ),
    "text_length on an image model": (
        lambda c: c["proxies"]["cnn"].update(training={"text_length": 100}),
        ["proxies.cnn.training.text_length", "for image models", "'text_length' is for vdcnn", "not 'small_cnn'"],
    ),
    "fastText's settings on a torch model": (
        lambda c: c["targets"]["big"].update(training={"fasttext": {"dim": 5}}),
        ["targets.big.training.fasttext", "'fasttext' is for fasttext, not 'preact_resnet20'"],
    ),
    "gpus that do not share the batch evenly": (
        lambda c: c["targets"]["big"].update(gpus=3, training={"batch_size": 128}),
        ["targets.big.training.batch_size", "128 examples do not split evenly over gpus: 3", "divides by 3"],
    ),
    "no gpus": (lambda c: c["targets"]["big"].update(gpus=0), ["targets.big.gpus", "less than the minimum of 1"]),
    "gpus for fastText": (
        lambda c: c.update(dataset={"name": "imdb"}, proxies={"ft": {"model": "fasttext", "gpus": 2}}, targets={"ft": {"model": "fasttext"}}),
        ["proxies.ft.gpus", "'fasttext' is trained by fastText, in one process; gpus above 1 take a torch model"],
    ),
    "npz without files": (lambda c: c.update(dataset={"name": "npz"}), ["dataset.train", "required"]),
    "npz file missing": (
        lambda c: c.update(dataset={"name": "npz", "train": ["nowhere/train.npz"], "test": ["nowhere/test.npz"]}),
        ["dataset.train[0]", "nowhere/train.npz", "not found"],
    ),
    "image folder missing": (
        lambda c: c.update(dataset={"name": "image_folder", "path": "no/such/folder"}),
        ["dataset.path", "no/such/folder/train"],
    ),
}


@pytest.mark.parametrize("case", BAD_CONFIGS, ids=list(BAD_CONFIGS))
def test_bad_configs_are_rejected_naming_the_key(case):
    change, expected = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as error:
        validate_config(_with(change))
    for text in expected:
        assert text in str(error.value), f"{text!r} not in: {error.value}"


def test_config_file_must_be_a_mapping(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- one source of defaults


def test_the_schema_is_the_one_source_of_training_defaults():
    """What `svp train` fills in for a setting left out is what a config gets from the schema."""
    from svp.trainers.fasttext_trainer import FastTextSettings
    from svp.training.loop import TrainingSettings

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "svp" / "config.schema.yaml").read_text())
    properties = schema["$defs"]["training"]["properties"]
    resolved = validate_config(minimal())["proxies"]["cnn"]["training"]
    settings = dataclasses.asdict(TrainingSettings.from_dict({}))
    for key, value in resolved.items():
        assert properties[key]["default"] == value == settings[key], key
    assert settings["text_length"] == DEFAULT_LENGTH  # no schema default: image runs would carry it
    fasttext = dataclasses.asdict(FastTextSettings.from_training({}))
    for key, option in properties["fasttext"]["properties"].items():
        assert fasttext[key] == option["default"], key
    assert (fasttext["epochs"], fasttext["lr"]) == (5, 0.05)  # the fastText trainer's own schedule


def test_every_training_key_is_taken_by_a_trainer_and_described_by_the_schema():
    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "svp" / "config.schema.yaml").read_text())
    properties = set(schema["$defs"]["training"]["properties"])
    taken = {key for trainer in TRAINERS for key in trainer.accepted_settings("text")}
    assert taken == properties
