"""The validation split (dataset.validation): held out when the data is prepared, seeded,
stratified, disjoint from training, part of the prepared data's identity, and every
run's error on it."""

import json

import numpy as np
import pandas as pd
import pytest

from svp import data
from svp.config import validate_config
from svp.data import validation
from svp.errors import ConfigError, DataError
from svp.report.summary import summarize
from svp.stages import train_run


def test_split_is_disjoint_stratified_and_stable():
    labels = np.repeat([0, 1, 2], [50, 21, 3])
    train, held = validation.split(labels, 0.2)
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == len(labels)
    # round(0.2 x n_c), halves up, at least one: 10, 4 (4.2) and 1 (0.6).
    assert np.bincount(labels[held]).tolist() == [10, 4, 1]
    again_train, again_held = validation.split(labels, 0.2)
    np.testing.assert_array_equal(held, again_held)
    np.testing.assert_array_equal(train, again_train)
    # A class of one example cannot give one to validation and keep one to train on.
    with pytest.raises(DataError, match=r"config key dataset.validation: 0.2 leaves class 'rare' \(1 training example\) with none to train on"):
        validation.split(np.array([0, 0, 0, 0, 1]), 0.2, ["common", "rare"])


def _rows(x):
    return sorted(row.tobytes() for row in x)


def test_prepared_digits_hold_the_split_apart_and_it_is_part_of_the_data(tmp_path):
    plain = data.prepare_dataset({"name": "digits"}, tmp_path / "plain")
    split = data.prepare_dataset({"name": "digits", "validation": 0.1}, tmp_path / "split")
    (x_all, y_all), test_all, _ = data.load_prepared(tmp_path / "plain")
    (x_train, y_train), test, _ = data.load_prepared(tmp_path / "split")
    x_held, y_held = data.load_validation(tmp_path / "split")
    assert data.load_validation(tmp_path / "plain") is None
    assert split["n_train"] + split["n_validation"] == plain["n_train"] == 1347
    # The same examples, split in two; the test split untouched.
    assert _rows(np.concatenate([x_train, x_held])) == _rows(x_all)
    np.testing.assert_array_equal(test[1], test_all[1])
    assert np.bincount(y_held).tolist() == [round(0.1 * n + 1e-9) for n in np.bincount(y_all)]
    assert split["validation"]["share"] == 0.1 and split["validation"]["n"] == len(y_held)
    # Another share, another training set (its checksum); the same share, the same files.
    assert split["checksums"]["train.npz"] != plain["checksums"]["train.npz"]
    again = data.prepare_dataset({"name": "digits", "validation": 0.1}, tmp_path / "again")
    assert again["checksums"] == split["checksums"]
    # Preparing the folder again without a split leaves no stale validation file.
    data.prepare_dataset({"name": "digits"}, tmp_path / "split")
    assert not (tmp_path / "split" / "validation.npz").exists()


def _config(**dataset):
    return validate_config(
        {
            "experiment": "v",
            "dataset": {"name": "digits", **dataset},
            "proxies": {"cnn": {"model": "small_cnn"}},
            "targets": {"t": {"model": "small_cnn"}},
        }
    )


@pytest.mark.parametrize(
    "share, message",
    [
        (float("nan"), r"'dataset.validation': nan is not a finite number"),
        (1.0, r"'dataset.validation': 1.0 is greater than or equal to the maximum of 1"),
        (0, r"'dataset.validation': 0 is less than or equal to the minimum of 0"),
        # 1,347 digits, about 135 a class: 0.997 holds out 134 or 135 and leaves a class empty.
        (0.997, r"config key 'dataset.validation': 0.997 leaves class '0' \(135 training examples\) with none to train on"),
    ],
)
def test_bad_validation_shares_are_refused_naming_the_key(share, message):
    with pytest.raises(ConfigError, match=message):
        _config(validation=share)


def test_every_data_set_takes_a_validation_share_and_fractions_count_what_it_leaves():
    assert _config(validation=0.2)["dataset"]["validation"] == 0.2
    # 1,347 - 270 held out = 1,077 to select from: 0.005 keeps 5 of them, below one per class.
    with pytest.raises(ConfigError, match=r"keeps 5 of the 1,077 training examples"):
        validate_config({
            "experiment": "v", "dataset": {"name": "digits", "validation": 0.2},
            "proxies": {"cnn": {"model": "small_cnn"}}, "targets": {"t": {"model": "small_cnn"}},
            "selection": {"fractions": [0.005]},
        })


def test_every_run_reports_its_validation_error(tmp_path):
    data.prepare_dataset({"name": "digits", "validation": 0.1}, tmp_path / "data")
    training = {"lr_schedule": [{"epochs": 1, "lr": 0.05}], "batch_size": 64}
    metrics = train_run(
        model_name="small_cnn", training=training, seed=0, data_dir=tmp_path / "data",
        model_out=tmp_path / "run/model.pt", history_out=tmp_path / "run/history.csv", metrics_out=tmp_path / "run/metrics.json",
    )
    assert 0.0 <= metrics["validation_error"] <= 100.0
    assert json.loads((tmp_path / "run/metrics.json").read_text())["validation_error"] == metrics["validation_error"]
    # Recomputed from the saved model on the held-out split.
    from svp.trainers.base import ScoringJob
    from svp.trainers import torch_trainer
    from svp.stages import read_model_checkpoint

    x, y = data.load_validation(tmp_path / "data")
    _, _, manifest = data.load_prepared(tmp_path / "data")
    job = ScoringJob(checkpoint=read_model_checkpoint(tmp_path / "run/model.pt"), checkpoint_path=tmp_path / "run/model.pt",
                     train=(x, y), manifest=manifest, data_dir=tmp_path / "data", batch_size=100, workdir=tmp_path)
    predictions = torch_trainer.predict(job)
    assert metrics["validation_error"] == pytest.approx(100.0 * np.mean(predictions.outputs.argmax(1) != y))


def test_the_results_table_gives_validation_error_beside_test_error():
    targets = pd.DataFrame([
        {"target": "t", "selection": "full", "fraction": 1.0, "seed": s, "test_error": 5.0, "validation_error": v, "seconds": 10.0}
        for s, v in ((0, 4.0), (1, 6.0))
    ])
    summary = summarize(targets, pd.DataFrame(columns=["proxy", "seed", "seconds"]), pd.DataFrame(columns=["proxy", "seed", "scoring_seconds"]))
    assert summary.loc[0, "validation_error_mean"] == 5.0
    assert summary.loc[0, "validation_error_std"] == pytest.approx(np.std([4.0, 6.0], ddof=1))


def test_text_data_sets_hold_out_their_split_too(tmp_path):
    import csv

    rows = [["pos" if i % 3 else "neg", f"review number {i} " + "good " * (i % 5)] for i in range(30)]
    for name in ("train", "test"):
        with open(tmp_path / f"{name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["label", "text"])
            writer.writerows(rows)
    options = {"name": "text_csv", "train": [str(tmp_path / "train.csv")], "test": [str(tmp_path / "test.csv")], "validation": 0.2}
    manifest = data.prepare_dataset(options, tmp_path / "out")
    (texts, y), _, _ = data.load_prepared(tmp_path / "out")
    held_texts, held_y = data.load_validation(tmp_path / "out")
    assert manifest["n_train"] == 24 and manifest["n_validation"] == 6 and np.bincount(held_y).tolist() == [2, 4]
    assert sorted(texts.strings() + held_texts.strings()) == sorted(text for _, text in rows)


def test_the_report_tables_give_a_validation_table_only_with_a_split():
    from svp.report.tables import format_markdown, paper_table

    def table(validation):
        targets = pd.DataFrame([
            {"target": "t", "selection": selection, "fraction": fraction, "seed": seed, "test_error": 5.0 + seed,
             "seconds": 10.0, **({"validation_error": 4.0 + seed} if validation else {})}
            for selection, fraction in (("full", 1.0), ("random", 0.5)) for seed in (0, 1)
        ])
        summary = summarize(targets, pd.DataFrame(columns=["proxy", "seed", "seconds"]), pd.DataFrame(columns=["proxy", "seed", "scoring_seconds"]))
        return format_markdown(paper_table(summary, {"proxies": {}}), summary)

    with_split = table(True)
    assert "Validation error (%) of target t" in with_split and "| random | 4.50 +- 0.71 |" in with_split
    assert "Validation error" not in table(False)
