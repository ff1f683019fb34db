"""The table of bad inputs in README.md: each gives the user a message naming the problem.

Each case runs the `svp` command a user (or a rule) would run and checks the message
printed and the exit status; none may leave an output behind.
"""

import json

import pytest
import yaml

from svp.cli import main

GOOD = {
    "experiment": "errors",
    "dataset": {"name": "digits"},
    "proxies": {"cnn": {"model": "small_cnn"}},
    "targets": {"big": {"model": "preact_resnet20"}},
}


def _config(tmp_path, **changes):
    config = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["check-config", str(path)]


def _prepare(tmp_path, dataset):
    return ["prepare", "--dataset", json.dumps(dataset), "--out-dir", str(tmp_path / "prepared")]


def _garbage(tmp_path, name="bad.npz"):
    (tmp_path / name).write_text("not numpy")
    return str(tmp_path / name)


def _corrupted_prepared_data(tmp_path):
    assert main(_prepare(tmp_path, {"name": "digits"})) == 0
    with open(tmp_path / "prepared" / "train.npz", "ab") as handle:
        handle.write(b"tampered")
    return ["score", "--checkpoint", str(tmp_path / "model.pt"), "--data", str(tmp_path / "prepared"), "--out", str(tmp_path / "scores.parquet")]


CASES = {
    "wrong type": (
        lambda t: _config(t, **{"proxies.cnn.seeds": "0"}),
        ["config key 'proxies.cnn.seeds': '0' is not of type 'array'"],
    ),
    "unknown key": (
        lambda t: _config(t, **{"selection.bogus": 1}),
        ["unknown config key 'selection.bogus'; allowed keys here: class_balanced, fractions, keep, metrics, random"],
    ),
    "unknown model": (
        lambda t: _config(t, **{"targets.big.model": "resnet9000"}),
        ["config key 'targets.big.model': unknown model 'resnet9000'; allowed values: [", "'preact_resnet164'"],
    ),
    "unknown data set": (
        lambda t: _config(t, **{"dataset.name": "imagenet42"}),
        ["config key 'dataset.name': unknown data set 'imagenet42'; allowed values: [", "'cifar10'"],
    ),
    "unknown metric": (
        lambda t: _config(t, **{"selection.metrics": ["entropie"]}),
        ["config key 'selection.metrics[0]': 'entropie' is not allowed; allowed values: ['least_confidence', 'margin', 'entropy', 'el2n', 'forgetting', 'grand', 'kcenter']"],
    ),
    "bad coverage setting": (
        lambda t: _config(t, **{"selection.keep": {"coverage": {"prune_hardest": 1.0, "bins": 5}}}),
        ["config key 'selection.keep.coverage.prune_hardest': 1.0 is greater than or equal to the maximum of 1 ('selection.keep': which end"],
    ),
    "validation share leaving a class without a training example": (
        lambda t: _config(t, **{"dataset.validation": 0.997}),
        ["config key 'dataset.validation': 0.997 leaves class '0' (135 training examples) with none to train on once at "
         "least one of each class is held out for validation; choose a smaller share"],
    ),
    "coverage dropping more than a fraction leaves room for": (
        lambda t: _config(t, **{"selection.keep": {"coverage": {"prune_hardest": 0.6}}, "selection.fractions": [0.3, 0.5]}),
        ["config key 'selection.keep.coverage.prune_hardest': dropping the hardest 0.6 leaves too few examples for fraction 0.5 "
         "(selection.fractions[1]); a coverage subset never holds the examples it drops: keep prune_hardest + fraction at most 1 "
         "(here prune_hardest at most 0.5). Lower prune_hardest or the fraction"],
    ),
    "impossible fraction": (
        lambda t: _config(t, **{"selection.fractions": [0.5, 1.5]}),
        ["config key 'selection.fractions[1]': 1.5 is greater than the maximum of 1"],
    ),
    "fractions that print the same": (
        lambda t: _config(t, **{"selection.fractions": [0.30000000000000004, 0.3]}),
        ["config key 'selection.fractions[1]': 0.3 and selection.fractions[0] (0.30000000000000004) both print as "
         "0.3 in tables; give each fraction once, with at most 6 significant digits"],
    ),
    "fractions that keep the same number of examples": (
        lambda t: _config(t, **{"selection.fractions": [0.5001, 0.5]}),
        ["config key 'selection.fractions[0]': 0.5001 keeps 674 of the 1,347 training examples, as "
         "selection.fractions[1] (0.5) does: both would train the same subset; drop one, or make them differ by at "
         "least 1/1,347"],
    ),
    "fraction that keeps every example": (
        lambda t: _config(t, **{"selection.fractions": [0.5, 0.9999]}),
        ["config key 'selection.fractions[1]': 0.9999 keeps all 1,347 training examples, as the full-data baseline "
         "(always trained) does"],
    ),
    "crop_padding larger than the image": (
        lambda t: _config(t, dataset={"name": "digits", "crop_padding": 1000}),
        ["config key 'dataset.crop_padding': 1000 pixels of padding around 8x8 images; a random crop could then show "
         "less than half of the image's height or width (at worst none of it); use at most 4, half the shorter side"],
    ),
    "crop_padding larger than the image, prepare": (
        lambda t: _prepare(t, {"name": "digits", "crop_padding": 5}),
        ["config key 'dataset.crop_padding': 5 pixels of padding around 8x8 images", "use at most 4"],
    ),
    "dataset key the data set does not read, prepare": (
        lambda t: _prepare(t, {"name": "digits", "image_size": 16, "path": "/nonexistent"}),
        ["config key 'dataset.image_size': data set 'digits' does not use it (only image_folder, imagenet do); remove it. "
         "Keys 'digits' reads: test_fraction, crop_padding, flip"],
    ),
    "missing config file": (lambda t: ["check-config", str(t / "nope.yaml")], ["config file not found:", "nope.yaml"]),
    "missing input file": (
        lambda t: _config(t, dataset={"name": "npz", "train": ["data/train.npz"], "test": ["data/test.npz"]}),
        ["config key 'dataset.train[0]': file not found:", "data/train.npz"],
    ),
    "missing data, no download": (
        lambda t: _prepare(t, {"name": "cifar10", "root": str(t / "empty"), "download": False}),
        ["dataset.download is false and these files are missing from the folder", "cifar-10-python.tar.gz",
         "(md5 c58f30108f718f92721af3b95e74349a)", "Copy them into that folder"],
    ),
    "unreadable input file": (
        lambda t: _prepare(t, {"name": "npz", "train": [_garbage(t)], "test": [_garbage(t)]}),
        ["bad.npz (config key dataset.train): not a readable .npz file"],
    ),
    "corrupt prepared data": (
        _corrupted_prepared_data,
        ["train.npz: its sha256 differs from the one in manifest.json (corrupt or replaced); rerun the prepare step"],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_gets_a_message_naming_the_problem(case, tmp_path, capsys):
    make_arguments, expected = CASES[case]
    arguments = make_arguments(tmp_path)
    capsys.readouterr()
    assert main(arguments) == 2
    message = capsys.readouterr().err
    assert message.startswith(f"svp {arguments[0]}: error: ")
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    assert not (tmp_path / "scores.parquet").exists()
    assert not (tmp_path / "prepared" / "manifest.json").exists() or case == "corrupt prepared data"


def test_a_reader_that_stops_reading_is_no_bug():
    """`svp models | head -0`: the pipe closes before svp writes; svp says nothing and exits 141."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    svp = Path(sys.executable).with_name("svp")
    result = subprocess.run(
        ["bash", "-c", f'{svp} models | head -c 0; echo "status ${{PIPESTATUS[0]}}" >&2'],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shutil.which("bash")
    assert result.stderr.strip() == "status 141", result.stderr


def test_a_model_that_cannot_take_the_data_sets_images_is_refused_naming_the_run(tmp_path, capsys, monkeypatch):
    """Where the images' size is known before preparing (digits: 8x8), each run's model is checked
    against it: no shipped model needs more than 8 pixels, so one is declared to need 9."""
    import dataclasses

    from svp.models import specs

    monkeypatch.setitem(specs.MODEL_SPECS, "resnet9", dataclasses.replace(specs.MODEL_SPECS["resnet9"], min_image_side=9))
    arguments = _config(tmp_path, **{"targets.big.model": "resnet9"})
    capsys.readouterr()
    assert main(arguments) == 2
    assert capsys.readouterr().err == (
        "svp check-config: error: config key 'targets.big.model': model 'resnet9' takes images of at least 9x9 pixels "
        "(its strides and pools shrink smaller ones to nothing), but the data's images are 8x8; choose a model that "
        f"takes them ({', '.join(m for m in specs.list_models() if specs.model_spec(m).modality == 'image' and m != 'resnet9')}), "
        "or larger images (dataset.image_size for image_folder and imagenet) (data set 'digits')\n"
    )
