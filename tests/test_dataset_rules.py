"""A data set declares its config rules where it registers; config validation needs nothing else."""

import numpy as np
import pytest

from svp import data
from svp.config import ConfigError, known_training_set, validate_config
from svp.data import registry


@pytest.fixture
def toy_dataset(monkeypatch):
    """A data set registered as a user's plug-in would be, removed after the test."""
    for table in ("DATASETS", "MODALITIES", "CONFIG_RULES"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))

    def check(dataset):
        if dataset.get("shade") == "plaid":
            raise ConfigError("config key 'dataset.shade': plaid is not a shade")

    @registry.register_dataset(
        "toy", keys=("size", "shade"), required=("size",), check=check, training_set=lambda d: (d["size"], 3)
    )
    def build_toy(options):
        x = np.zeros((options["size"], 8, 8, 1), np.uint8)
        return data.PreparedData(x, np.arange(len(x)) % 3, x[:3], np.arange(3), ["a", "b", "c"], "toy")

    return "toy"


def _config(**dataset):
    return {
        "experiment": "toy",
        "dataset": {"name": "toy", **dataset},
        "proxies": {"cnn": {"model": "small_cnn"}},
        "targets": {"big": {"model": "preact_resnet20"}},
    }


def test_a_new_data_set_is_checked_by_its_own_rules(toy_dataset):
    assert "toy" in data.list_datasets()
    assert known_training_set({"name": "toy", "size": 30}) == (30, 3)
    validate_config(_config(size=30))
    with pytest.raises(ConfigError, match="'dataset.size' is required for data set 'toy'"):
        validate_config(_config())
    with pytest.raises(ConfigError, match=r"'dataset.colour': data set 'toy' does not use it \(no data set reads it\)"):
        validate_config(_config(size=30, colour="red"))
    with pytest.raises(ConfigError, match="plaid is not a shade"):
        validate_config(_config(size=30, shade="plaid"))
    # Its known size checks fractions before any job runs: 0.05 of 30 keeps 2 examples of 3 classes.
    config = _config(size=30)
    config["selection"] = {"fractions": [0.05], "class_balanced": True}
    with pytest.raises(ConfigError, match="keeps 2 of the 30 training examples"):
        validate_config(config)


def test_every_shipped_data_set_declares_the_keys_it_reads():
    for name in data.list_datasets():
        assert data.config_rules(name).keys is not None, f"{name} declares no dataset keys"
