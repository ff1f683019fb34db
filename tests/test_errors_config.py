"""Bad configs, as README.md's bad-input table lists them: each is refused before any job
runs, by `svp check-config` and by the Snakefile, with a message naming the file and line
or the config key, and its fix.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from svp.cli import main
from svp.selection.orders import selection_order, smallest_subset

REPO = Path(__file__).resolve().parents[1]

GOOD = {
    "experiment": "errors",
    "dataset": {"name": "digits"},
    "proxies": {"cnn": {"model": "small_cnn"}},
    "targets": {"big": {"model": "preact_resnet20"}},
}


def _changed(**changes) -> dict:
    """GOOD with dotted keys set, e.g. ``**{"selection.fractions": [0.5]}``."""
    config = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[key] = value
    return config


def _written(tmp_path, **changes) -> Path:
    path = tmp_path / "config.yaml"
    # Python's YAML writer spells NaN and infinity .nan and .inf, as a user would.
    path.write_text(yaml.safe_dump(_changed(**changes)))
    return path


def _text(tmp_path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


GOOD_YAML = yaml.safe_dump(GOOD, sort_keys=False)  # experiment on line 1; 9 lines
TRAINING = "proxies.cnn.training"

# case -> (make the config file from tmp_path, texts the message must hold)
CASES = {
    # Experiment names become the folder results/<experiment>/.
    "experiment '..'": (lambda t: _written(t, experiment=".."), ["config key 'experiment': '..' is not allowed", "never '.', '..'"]),
    "experiment '.'": (lambda t: _written(t, experiment="."), ["config key 'experiment': '.' is not allowed"]),
    "experiment with a path": (lambda t: _written(t, experiment="a/../../b"), ["config key 'experiment': 'a/../../b' is not allowed"]),
    "experiment too long": (
        lambda t: _written(t, experiment="a" * 300),
        ["config key 'experiment': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' (300 characters) is not allowed", "1 to 100"],
    ),
    "run name too long": (
        lambda t: _written(t, proxies={"p" * 65: {"model": "small_cnn"}}),
        ["config key 'proxies.pppppppppppppppppppppppppppppppppppppppp...': the name", "1 to 64 letters"],
    ),
    "run name that is a number": (
        lambda t: _text(t, GOOD_YAML.replace("  cnn:", "  1:")),
        ["config key 'proxies.1': the name 1 is not allowed; run names become file names"],
    ),
    "unknown keys of mixed types": (
        lambda t: _text(t, GOOD_YAML + "1: one\nzzz: 2\n"),
        ["unknown config key '[1]', 'zzz'; allowed keys here: active_learning, dataset, experiment"],
    ),
    # NaN passes every bound; a NaN or infinite rate trained to chance and exited 0.
    "NaN learning rate": (
        lambda t: _written(t, **{f"{TRAINING}.lr_schedule": [{"epochs": 1, "lr": float("nan")}]}),
        [f"config key '{TRAINING}.lr_schedule[0].lr': nan is not a finite number"],
    ),
    "infinite momentum": (
        lambda t: _written(t, **{f"{TRAINING}.momentum": float("inf")}),
        [f"config key '{TRAINING}.momentum': inf is not a finite number"],
    ),
    "NaN weight decay": (
        lambda t: _written(t, **{f"{TRAINING}.weight_decay": float("nan")}),
        [f"config key '{TRAINING}.weight_decay': nan is not a finite number"],
    ),
    "NaN fraction": (
        lambda t: _written(t, **{"selection.fractions": [float("nan"), 1.0]}),
        ["config key 'selection.fractions[0]': nan is not a finite number"],
    ),
    "NaN in a JSON config": (
        lambda t: _text(t, json.dumps(_changed(**{"selection.fractions": [float("nan")]})), "config.json"),
        ["config key 'selection.fractions[0]': 'NaN' is not a finite number"],
    ),
    # An integral float passed JSON Schema's integer and failed in the job.
    "float batch size": (
        lambda t: _written(t, **{f"{TRAINING}.batch_size": 128.0}),
        [f"config key '{TRAINING}.batch_size': 128.0 is not an integer; write 128, without a decimal point"],
    ),
    "float eval batch size": (
        lambda t: _written(t, **{f"{TRAINING}.eval_batch_size": 512.0}),
        [f"config key '{TRAINING}.eval_batch_size': 512.0 is not an integer"],
    ),
    "float epochs": (
        lambda t: _written(t, **{f"{TRAINING}.lr_schedule": [{"epochs": 3.0, "lr": 0.1}]}),
        [f"config key '{TRAINING}.lr_schedule[0].epochs': 3.0 is not an integer"],
    ),
    "float seed": (lambda t: _written(t, **{"proxies.cnn.seeds": [0.0]}), ["config key 'proxies.cnn.seeds[0]': 0.0 is not an integer"]),
    "seed too large": (
        lambda t: _written(t, **{"targets.big.seeds": [2**70]}),
        ["config key 'targets.big.seeds[0]': 1180591620717411303424 is greater than the maximum of 2147483647"],
    ),
    "negative seed": (lambda t: _written(t, **{"targets.big.seeds": [-1]}), ["config key 'targets.big.seeds[0]': -1 is less than the minimum of 0"]),
    "number written as text": (
        lambda t: _text(t, GOOD_YAML + "scoring: {batch_size: 64}\nselection: {fractions: [5e-1]}\n"),
        ["config key 'selection.fractions[0]': '5e-1' is text, not a number", "write 1.0e-3 or 0.001"],
    ),
    # digits' size is known: 1,347 training examples in 10 classes.
    "empty subset": (
        lambda t: _written(t, **{"selection.fractions": [0.000001, 1.0]}),
        ["config key 'selection.fractions[0]': fraction 1e-06 keeps 0 of the 1,347 training examples, but a subset "
         "needs at least 10 (one per class); use a fraction of at least 0.0071"],
    ),
    "fraction below one example per class": (
        lambda t: _written(t, selection={"fractions": [0.005], "class_balanced": True}),
        ["config key 'selection.fractions[0]': fraction 0.005 keeps 7 of the 1,347", "class-balanced selection"],
    ),
    "no metric": (lambda t: _written(t, **{"selection.metrics": []}), ["config key 'selection.metrics': [] should be non-empty"]),
    "key for another data set": (
        lambda t: _written(t, **{"dataset.image_size": 32}),
        ["config key 'dataset.image_size': data set 'digits' does not use it (only image_folder, imagenet do); remove it",
         "Keys 'digits' reads: test_fraction, crop_padding, flip"],
    ),
    "duplicate key": (
        lambda t: _text(t, GOOD_YAML + "selection:\n  random: false\n  fractions: [0.5]\n  random: true\n"),
        ["config.yaml, line 13, column 3: duplicate key 'random' (first given on line 11); give each key once"],
    ),
    "duplicate key in JSON": (
        lambda t: _text(t, '{"experiment": "a",\n "dataset": {"name": "digits"},\n "experiment": "b"}', "config.json"),
        ["config.json, line 3, column 2: duplicate key 'experiment' (first given on line 1)"],
    ),
    "YAML 1.1 boolean": (
        lambda t: _text(t, GOOD_YAML + "selection:\n  random: off\n"),
        ["config.yaml, line 11, column 11: 'off' is a boolean only in old YAML (1.1); write true or false"],
    ),
    "YAML syntax error": (
        lambda t: _text(t, "experiment: x\nselection: {fractions: [0.5}\n"),
        ["config.yaml, line 2, column 28: not valid YAML:", "(while parsing a flow sequence started on line 2)"],
    ),
    "tab-indented file": (
        lambda t: _text(t, "experiment: x\ndataset:\n\tname: digits\n"),
        ["config.yaml, line 3, column 1: a tab in the indentation; YAML indents with spaces only"],
    ),
    "not UTF-8": (
        lambda t: _text(t, "experiment: x\ndataset: {name: caf\xe9}\n".encode("latin-1")),
        ["config.yaml, line 2: not valid UTF-8 (byte 0xe9); save the file as UTF-8"],
    ),
    "a folder": (lambda t: t, [" is a folder, not a config file"]),
    "a device": (lambda t: Path(os.devnull), [f"{os.devnull} is not a regular file (a device, pipe or socket)"]),
    "empty file": (lambda t: _text(t, ""), ["config.yaml: the file is empty"]),
    "huge file": (lambda t: _text(t, GOOD_YAML + "# padding\n" * 120_000), ["config.yaml: over 1 MiB, too big for a config file"]),
    "YTE template": (
        lambda t: _text(t, "__use_yte__: true\n" + GOOD_YAML),
        ["config.yaml: config key '__use_yte__': svp configs are plain YAML, not YTE templates"],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_config_is_refused_naming_the_problem(case, tmp_path, capsys):
    make_config, expected = CASES[case]
    path = make_config(tmp_path)
    capsys.readouterr()
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("svp check-config: error: ") and captured.out == ""
    for text in expected:
        assert text in captured.err, f"{text!r} not in {captured.err!r}"


def test_the_good_config_passes(tmp_path, capsys):
    """The cases above differ from this config by one change each; it must pass, and quoted
    words and exponents with a dot are read as meant."""
    assert main(["check-config", str(_written(tmp_path))]) == 0
    quoted = GOOD_YAML.replace("experiment: errors", "experiment: 'no'") + "selection: {fractions: [5.0e-1]}\n"
    capsys.readouterr()
    assert main(["check-config", str(_text(tmp_path, quoted))]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["experiment"] == "no" and printed["selection"]["fractions"] == [0.5]


# --------------------------------------------------------------------------- Snakemake


def _snakemake(workdir: Path, *args: str) -> tuple[int, str]:
    """A dry run's exit status and output (Snakemake prints its errors on stdout or stderr)."""
    command = [sys.executable, "-m", "snakemake", "--dry-run", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return result.returncode, result.stdout + result.stderr


def test_snakefile_refuses_a_bad_config_before_any_job(tmp_path):
    """`..` once wrote config.yaml, logs/ and data/ beside results/; now nothing is planned."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    path = _written(tmp_path, experiment="..", **{f"{TRAINING}.momentum": float("nan")})
    status, output = _snakemake(workdir, "--configfile", str(path))
    assert status != 0
    assert "config key 'experiment': '..' is not allowed" in output
    assert f"config key '{TRAINING}.momentum': nan is not a finite number" in output
    assert "Traceback" not in output and "rule " not in output
    assert [p.name for p in tmp_path.iterdir() if p.name not in ("work", "config.yaml")] == []
    assert [p.name for p in workdir.iterdir() if p.name != ".snakemake"] == []


def test_snakefile_reads_config_files_strictly(tmp_path):
    """Snakemake's own reading takes the last of duplicate keys; the Snakefile refuses them with the line."""
    path = _text(tmp_path, GOOD_YAML + "experiment: again\n")
    status, output = _snakemake(tmp_path, "--configfile", str(path))
    assert status != 0
    assert f"{path}, line 10, column 1: duplicate key 'experiment' (first given on line 1)" in output
    assert "Traceback" not in output


def test_snakefile_refuses_yte_in_the_default_config_before_snakemake_runs_it(tmp_path):
    """config/config.yaml is read by the Snakefile: svp looks first, so the template never runs.
    (A --configfile is read, and its template run, by Snakemake before the Snakefile.)"""
    (tmp_path / "config").mkdir()
    ran = tmp_path / "yte_ran"
    template = f"__use_yte__: true\nexperiment: ?__import__('pathlib').Path({str(ran)!r}).touch() or 'x'\n"
    _text(tmp_path / "config", template + GOOD_YAML.replace("experiment: errors\n", ""))
    status, output = _snakemake(tmp_path)
    assert status != 0
    assert "config key '__use_yte__': svp configs are plain YAML, not YTE templates" in output
    assert not ran.exists()


@pytest.mark.parametrize("bad", ["not UTF-8", "a folder"])
def test_make_run_reads_the_config_before_snakemake_does(tmp_path, bad):
    """Snakemake parses a --configfile before the Snakefile runs, and answers these with a Python
    traceback: `make run` has svp read the config first, and stops there."""
    path = _text(tmp_path, b"experiment: caf\xe9\n") if bad == "not UTF-8" else tmp_path
    venv = Path(sys.executable).parent.parent  # the environment running the tests, not a new one
    result = subprocess.run(
        ["make", "-C", str(REPO), "run", f"CONFIG={path}", f"VENV={venv}", "-o", str(venv / ".installed")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    expected = f"{path}, line 1: not valid UTF-8 (byte 0xe9)" if bad == "not UTF-8" else f"{path} is a folder"
    assert f"svp check-config: error: {expected}" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr and "snakemake" not in result.stdout


def test_small_fraction_file_names_match_the_workflow(tmp_path):
    """1e-05 once became the file name '1e-05', which no rule could make (MissingInputException)."""
    images = np.zeros((4, 8, 8, 1), dtype=np.uint8)
    for split in ("train", "test"):
        np.savez(tmp_path / f"{split}.npz", x=images, y=np.array([0, 1, 0, 1]))
    dataset = {"name": "npz", "train": [str(tmp_path / "train.npz")], "test": [str(tmp_path / "test.npz")]}
    config = _changed(dataset=dataset, selection={"fractions": [0.00001, 1.0], "metrics": ["entropy"], "random": False})
    path = _text(tmp_path, yaml.safe_dump(config))
    status, output = _snakemake(tmp_path, "--configfile", str(path))
    assert status == 0, output
    assert "results/errors/subsets/cnn-entropy/0.00001.parquet" in output


def test_select_refuses_a_fraction_too_small_for_a_data_set_of_unknown_size(tmp_path, capsys):
    """For npz, image folders and CSVs the training set's size is known once prepared."""
    images = np.zeros((40, 8, 8, 1), dtype=np.uint8)
    for split in ("train", "test"):
        np.savez(tmp_path / f"{split}.npz", x=images, y=np.arange(40) % 4)
    dataset = {"name": "npz", "train": [str(tmp_path / "train.npz")], "test": [str(tmp_path / "test.npz")]}
    assert main(["prepare", "--dataset", json.dumps(dataset), "--out-dir", str(tmp_path / "data")]) == 0
    out = tmp_path / "subset.parquet"
    capsys.readouterr()
    arguments = ["select", "--random-seed", "0", "--data", str(tmp_path / "data"), "--fraction", "0.05", "--out", str(out)]
    assert main(arguments) == 2
    assert capsys.readouterr().err == (
        "svp select: error: config key selection.fractions: fraction 0.05 keeps 2 of the 40 training examples, "
        "but a subset needs at least 4 (one per class); use a fraction of at least 0.088\n"
    )
    assert not out.exists()
    assert main([*arguments[:-3], "0.1", "--out", str(out)]) == 0 and out.exists()


@pytest.mark.parametrize("class_sizes", [[5, 5, 5], [3, 10], [1, 2, 9], [4, 12, 13, 40]])
def test_smallest_subset_is_the_fewest_examples_that_always_reach_every_class(class_sizes):
    """What the fraction checks rely on: a class-balanced prefix of smallest_subset
    examples holds every class whatever the ranks, and one fewer misses one for some ranks."""
    labels = np.repeat(np.arange(len(class_sizes)), class_sizes)
    rng = np.random.default_rng(0)
    needed = smallest_subset(class_sizes, class_balanced=True)
    assert smallest_subset(class_sizes, class_balanced=False) == len(class_sizes) <= needed
    shortest_full_prefix = []
    for _ in range(200):
        order = selection_order(rng.permutation(len(labels)), labels, class_balanced=True)
        first_seen = [np.flatnonzero(labels[order] == c)[0] for c in range(len(class_sizes))]
        shortest_full_prefix.append(max(first_seen) + 1)
    assert max(shortest_full_prefix) == needed
