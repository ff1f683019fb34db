"""The verdict's arithmetic on hand-made runs: the choice by validation error alone, "beats"
beyond both spreads and the split's resolution, the advice, the time saved, the reasons,
and the agreement with the test set's best; then the files and `svp report verdict` on
real prepared data, with and without a validation split."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from svp.cli import main
from svp.report.verdict import agreement_with_test, beats, format_text, resolution, verdict, write_verdict


def runs_table(rows):
    """rows: (selection, fraction, seed, validation_error, test_error, total_seconds[, train_accuracy])."""
    columns = ["selection", "fraction", "seed", "validation_error", "test_error", "total_seconds", "train_accuracy"]
    frame = pd.DataFrame([row + (math.nan,) * (len(columns) - len(row)) for row in rows], columns=columns)
    return frame.assign(target="t")


def test_beats_needs_both_spreads_apart():
    assert beats(10.0, 0.5, 12.0, 0.5) is True  # 2.0 apart > 1.0
    assert beats(10.0, 1.0, 12.0, 1.0) is False  # 2.0 apart, not more than 2.0
    assert beats(12.0, 0.1, 10.0, 0.1) is False  # higher error never beats
    assert beats(10.0, math.nan, 12.0, 0.5) is None  # one run: spread unknown


def test_choice_is_lowest_validation_error_never_test_error():
    runs = runs_table([
        ("p-entropy", 0.5, 0, 10.0, 30.0, 6.0), ("p-entropy", 0.5, 1, 10.2, 30.0, 6.0),
        ("random", 0.5, 0, 12.0, 1.0, 4.0), ("random", 0.5, 1, 12.2, 1.0, 4.0),
        ("full", 1.0, 0, 9.0, 9.0, 10.0), ("full", 1.0, 1, 9.0, 9.0, 10.0),
    ])
    table = verdict(runs)
    assert len(table) == 1
    row = table.iloc[0]
    # Test errors say random (1 %) is far better; the verdict does not read them.
    assert row["choice"] == "p-entropy"
    assert row["validation_error"] == pytest.approx(10.1)
    assert row["validation_std"] == pytest.approx(0.1414, abs=1e-4)
    assert row["beats_random"] is True  # 12.1 - 10.1 = 2.0 > 0.1414 * 2
    assert row["advice"] == "keep 0.5 chosen by p-entropy"
    assert row["seconds_saved"] == pytest.approx(4.0)  # 10 s full against 6 s end to end
    assert row["speedup"] == pytest.approx(10 / 6)
    agreement = agreement_with_test(runs, table)
    assert agreement.iloc[0]["test_best"] == "random" and not agreement.iloc[0]["agrees"]


def test_a_lead_inside_the_spread_is_not_a_win():
    runs = runs_table([
        ("p-entropy", 0.3, 0, 10.0, 10.0, 6.0), ("p-entropy", 0.3, 1, 12.0, 12.0, 6.0),  # 11 +- 1.41
        ("random", 0.3, 0, 11.5, 11.0, 4.0), ("random", 0.3, 1, 12.5, 12.0, 4.0),  # 12 +- 0.71
        ("full", 1.0, 0, 9.0, 9.0, 10.0),
    ])
    row = verdict(runs).iloc[0]
    assert row["choice"] == "p-entropy" and row["beats_random"] is False
    assert row["advice"] == "use random, or keep more: p-entropy leads random by 1.00 points, within the seeds' spread"
    assert agreement_with_test(runs, verdict(runs)).iloc[0]["agrees"]


def test_random_wins_and_ties_go_to_random():
    runs = runs_table([
        ("p-entropy", 0.3, 0, 12.0, 12.0, 6.0), ("random", 0.3, 0, 12.0, 12.0, 4.0),
        ("p-entropy", 0.7, 0, 14.0, 12.0, 6.0), ("random", 0.7, 0, 11.0, 12.0, 4.0),
    ])
    table = verdict(runs)
    assert list(table["choice"]) == ["random", "random"]
    assert all(table["advice"].str.startswith("use random"))
    assert table["beats_random"].isna().all()
    assert table["full_seconds"].isna().all()  # no full-data run: nothing to save against


def test_one_seed_leading_asks_for_more_seeds():
    runs = runs_table([("p-entropy", 0.5, 0, 10.0, 10.0, 6.0), ("random", 0.5, 0, 12.0, 12.0, 4.0)])
    row = verdict(runs).iloc[0]
    assert row["beats_random"] is None and "add target seeds" in row["advice"]


def test_budget_matched_full_data_that_wins_is_the_advice():
    runs = runs_table([
        ("p-entropy", 0.5, 0, 10.0, 10.0, 6.0), ("p-entropy", 0.5, 1, 10.2, 10.0, 6.0),
        ("random", 0.5, 0, 12.0, 12.0, 4.0), ("random", 0.5, 1, 12.2, 12.0, 4.0),
        ("budget", 0.5, 0, 8.0, 8.0, 5.0), ("budget", 0.5, 1, 8.2, 8.0, 5.0),
    ])
    row = verdict(runs).iloc[0]
    assert row["choice"] == "p-entropy"  # the budget run is a baseline, not a selection
    assert row["beats_budget"] is False and row["advice"].startswith("train on all the data")


def test_reasons_name_class_skew_hard_examples_weak_proxy_and_underfitting():
    runs = runs_table([
        ("p-entropy", 0.3, 0, 20.0, 20.0, 6.0, 30.0), ("p-entropy", 0.3, 1, 20.4, 20.0, 6.0, 28.0),
        ("random", 0.3, 0, 15.0, 15.0, 4.0, 70.0), ("random", 0.3, 1, 15.2, 15.0, 4.0, 72.0),
        ("full", 1.0, 0, 9.0, 9.0, 10.0, 90.0),
    ]).assign(proxy=lambda frame: np.where(frame["selection"] == "p-entropy", "p", ""))
    subsets = pd.DataFrame([
        # proxy_error is the proxy's *test* error: the verdict must not read it.
        {"selection": "p-entropy", "fraction": 0.3, "min_ratio": 0.34, "min_ratio_class": "automobile",
         "disagreement": 49.1, "disagreement_all": 21.6, "proxy_error": 99.0},
        {"selection": "random", "fraction": 0.3, "min_ratio": 0.96, "min_ratio_class": "ship",
         "disagreement": math.nan, "disagreement_all": math.nan, "proxy_error": math.nan},
    ])
    row = verdict(runs, subsets, proxy_errors={"p": 31.0}).iloc[0]
    assert row["choice"] == "random"
    assert "p-entropy skews the classes (keeps automobile at 0.34" in row["why"]
    assert "the proxies get 49 % of p-entropy's examples wrong (22 % of all)" in row["why"]
    assert "its proxy p errs on 31.0 % of the validation split against the full-data target's 9.0 %" in row["why"]
    assert "29 % training accuracy against 90 %" in row["why"] and "training.length: steps" in row["why"]
    assert "99" not in row["why"]
    # A proxy close to the target is no reason; neither is a subset as hard as the whole set.
    subsets.loc[0, "disagreement"] = 30.0
    calm = verdict(runs, subsets, proxy_errors={"p": 12.0}).iloc[0]["why"]
    assert "proxy p" not in calm and "examples wrong" not in calm
    # Runs that already trained for the full data's steps are not told to.
    steps = verdict(runs.assign(training_length="steps"), subsets).iloc[0]["why"]
    assert "the target does not fit the subset (keep more)" in steps


def test_a_gap_smaller_than_the_validation_split_resolves_is_no_win():
    """Seeds that agree to the example (std 0) on 136 validation examples: one example apart
    (0.74 points) is below twice the standard error of the difference (about 2.4 points)."""
    rows = [("p-entropy", 0.7, s, 0.74, 1.0, 6.0) for s in (0, 1)] + [("random", 0.7, s, 1.47, 1.0, 4.0) for s in (0, 1)]
    runs = runs_table(rows)
    row = verdict(runs, validation_examples=136).iloc[0]
    assert row["choice"] == "p-entropy" and row["beats_random"] is False
    assert row["advice"].startswith(
        "use random, or keep more: p-entropy leads random by 0.73 points, less than 136 validation examples resolve (2."
    )
    assert resolution(0.74, 1.47, 136) == pytest.approx(200 * math.sqrt(0.0074 * 0.9926 / 136 + 0.0147 * 0.9853 / 136))
    assert resolution(0.74, 1.47, math.nan) == 0.0
    # The same gap measured on 100,000 examples is resolved.
    assert verdict(runs, validation_examples=100_000).iloc[0]["beats_random"] is True


def test_changing_test_errors_never_changes_the_verdict_only_the_check():
    rng = np.random.default_rng(0)
    rows = []
    for fraction in (0.3, 0.5, 0.7):
        for seed in range(3):
            for selection, base in (("p-entropy", 8.0), ("p-margin", 9.0), ("random", 11.0)):
                rows.append((selection, fraction, seed, base + rng.random(), 10.0, 5.0 + seed))
    rows += [("full", 1.0, seed, 7.0 + seed / 10, 7.0, 10.0) for seed in range(3)]
    runs = runs_table(rows)
    table = verdict(runs, validation_examples=1000)
    assert list(table["choice"]) == ["p-entropy"] * 3
    checks = set()
    for trial in range(5):
        shuffled = runs.assign(test_error=rng.permutation(rng.random(len(runs)) * 100))
        pd.testing.assert_frame_equal(verdict(shuffled, validation_examples=1000), table)
        checks.add(tuple(agreement_with_test(shuffled, table)["test_best"]))
    assert len(checks) > 1  # the check does read the test errors
    assert table["advice"].tolist() == [f"keep {f:g} chosen by p-entropy" for f in (0.3, 0.5, 0.7)]


def test_a_tie_on_the_test_set_counts_as_agreement():
    runs = runs_table([
        ("p-entropy", 0.5, 0, 10.0, 5.0, 6.0), ("random", 0.5, 0, 12.0, 5.0, 4.0), ("p-margin", 0.5, 0, 11.0, 6.0, 6.0),
    ])
    check = agreement_with_test(runs, verdict(runs)).iloc[0]
    assert check["test_best"] == "p-entropy" and check["agrees"]


def test_without_random_subsets_nothing_is_claimed():
    runs = runs_table([("p-entropy", 0.5, s, 10.0 + s, 10.0, 6.0) for s in (0, 1)] + [("full", 1.0, 0, 9.0, 9.0, 10.0)])
    row = verdict(runs).iloc[0]
    assert row["beats_random"] is None and "selection.random: true" in row["advice"]
    assert row["advice"].startswith("use random, or keep more")


def test_beating_random_but_not_the_budget_matched_run_says_both():
    runs = runs_table([
        ("p-entropy", 0.5, 0, 10.0, 10.0, 6.0), ("p-entropy", 0.5, 1, 10.2, 10.0, 6.0),
        ("random", 0.5, 0, 12.0, 12.0, 4.0), ("random", 0.5, 1, 12.2, 12.0, 4.0),
        ("budget", 0.5, 0, 10.0, 8.0, 5.0), ("budget", 0.5, 1, 10.4, 8.0, 5.0),
    ])
    row = verdict(runs).iloc[0]
    assert row["beats_random"] is True and row["beats_budget"] is False
    assert row["advice"].startswith("keep 0.5 chosen by p-entropy, or train on all the data for the same budget")


def test_the_printed_verdict_leads_with_the_choice_time_and_advice():
    runs = runs_table([
        ("p-entropy", 0.5, 0, 10.0, 10.0, 6.0), ("p-entropy", 0.5, 1, 10.2, 10.0, 6.0),
        ("random", 0.5, 0, 12.0, 12.0, 4.0), ("random", 0.5, 1, 12.2, 12.0, 4.0),
        ("full", 1.0, 0, 9.0, 9.0, 10.0), ("full", 1.0, 1, 9.2, 9.0, 10.0),
    ])
    table = verdict(runs, validation_examples=5000)
    text = format_text(table, agreement_with_test(runs, table))
    assert text.splitlines() == [
        "Verdict, chosen by validation error (5,000 held-out examples; the test set is not read):",
        "  t at 0.5: p-entropy, 10.10 +- 0.14 % validation error (random 12.10 +- 0.14, full data 9.10 +- 0.14)",
        "    6.0 s end to end against the full data's 10.0 s: speed-up 1.67x, saves 4.0 s",
        "    -> keep 0.5 chosen by p-entropy",
        "Check, the one place the test error is read (after the verdict, not by it): the choice is also the test set's"
        " best at 1 of 1 fraction. Where it rarely is, the validation split is too small to guide the choice: raise"
        " dataset.validation or add target seeds.",
    ]


def test_missing_validation_is_refused():
    with pytest.raises(ValueError, match="dataset.validation"):
        verdict(pd.DataFrame({"target": ["t"], "selection": ["random"], "fraction": [0.5], "total_seconds": [1.0]}))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Digits prepared with and without a validation split (`svp prepare`, the prepare_data rule's command)."""
    root = tmp_path_factory.mktemp("verdict_data")
    for name, dataset in (("held_out", {"name": "digits", "validation": 0.1}), ("none", {"name": "digits"})):
        assert main(["prepare", "--dataset", json.dumps(dataset), "--out-dir", str(root / name)]) == 0
    return root


def _runs_file(path, validation=True):
    """A runs table as `svp report runs` writes it, for two seeds at 0.5 and the full data."""
    rows = [("cnn-entropy", "cnn", 0.5, s, 4.0 + s, 3.0, 6.0) for s in (0, 1)] + [
        ("random", "", 0.5, s, 5.0 + s, 2.0, 3.0) for s in (0, 1)
    ] + [("full", "", 1.0, s, 2.0, 1.0, 5.0) for s in (0, 1)]
    frame = pd.DataFrame(rows, columns=["selection", "proxy", "fraction", "seed", "validation_error", "test_error", "total_seconds"])
    frame = frame.assign(target="resnet20", train_accuracy=99.0)
    if not validation:
        frame["validation_error"] = math.nan
    frame.to_csv(path, index=False)
    return path


def _verdict_arguments(tmp_path, runs, data):
    return ["report", "verdict", "--runs", str(runs), "--data", str(data), "--csv", str(tmp_path / "verdict.csv"),
            "--markdown", str(tmp_path / "verdict.md"), "--html", str(tmp_path / "verdict.html"),
            "--text", str(tmp_path / "verdict.txt")]


def test_svp_report_verdict_writes_the_verdict_and_its_check(prepared, tmp_path, capsys):
    runs = _runs_file(tmp_path / "runs.csv")
    assert main(_verdict_arguments(tmp_path, runs, prepared / "held_out")) == 0
    examples = json.loads((prepared / "held_out/manifest.json").read_text())["n_validation"]
    text = (tmp_path / "verdict.txt").read_text()
    assert text in capsys.readouterr().out + "\n"  # the log holds it too
    assert text.startswith(f"Verdict, chosen by validation error ({examples:,} held-out examples;")
    assert "resnet20 at 0.5: cnn-entropy, 4.50 +- 0.71 % validation error" in text
    assert "use random, or keep more: cnn-entropy leads random by 1.00 points, within the seeds' spread" in text
    # The test set's best (random, 2 % against 3 %) is reported as a check, apart from the verdict.
    assert "the choice is also the test set's best at 0 of 1 fraction" in text
    table = pd.read_csv(tmp_path / "verdict.csv")
    assert table[["choice", "test_best", "agrees", "validation_examples"]].values.tolist() == [["cnn-entropy", "random", False, examples]]
    assert "| resnet20 | 0.5 | cnn-entropy | 4.50 +- 0.71 |" in (tmp_path / "verdict.md").read_text()
    page = (tmp_path / "verdict.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<th>test set&#x27;s best</th>" in page


def test_without_a_validation_split_the_verdict_says_how_to_get_one(prepared, tmp_path, capsys):
    runs = _runs_file(tmp_path / "runs.csv", validation=False)
    assert main(_verdict_arguments(tmp_path, runs, prepared / "none")) == 0
    text = (tmp_path / "verdict.txt").read_text()
    assert text.startswith("No verdict: it chooses by the error on a validation split, and this run has none.")
    assert "    dataset:\n      validation: 0.1\n" in text and "svp does not choose by test error" in text
    assert "Verdict" in (tmp_path / "verdict.md").read_text() and "<pre>dataset:\n  validation: 0.1</pre>" in (tmp_path / "verdict.html").read_text()
    assert pd.read_csv(tmp_path / "verdict.csv").empty
    assert "test_best" not in pd.read_csv(tmp_path / "verdict.csv")  # nothing read from the test set


def test_runs_without_validation_error_on_data_with_a_split_are_one_line(prepared, tmp_path, capsys):
    runs = _runs_file(tmp_path / "runs.csv", validation=False)
    assert main(_verdict_arguments(tmp_path, runs, prepared / "held_out")) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert "6 target run(s) have no validation error (the first: resnet20, cnn-entropy, fraction 0.5, seed 0)" in error
    assert error.endswith("rerun them (the train_target rule)")
    assert not (tmp_path / "verdict.txt").exists()


@pytest.mark.workflow
def test_the_default_run_ends_with_the_verdict_before_the_summary(tmp_path):
    """`make run`'s workflow on config/config.yaml (digits, 10 % held out): the verdict is
    written, leads what the run prints, and says something for every fraction below 1."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(tmp_path),
               "--cores", "2", "--resources", "gpu=1", "--configfile", str(repo / "config/config.yaml")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(repo)})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    report = tmp_path / "results/digits/report"
    text = (report / "verdict.txt").read_text()
    examples = json.loads((tmp_path / "results/digits/data/manifest.json").read_text())["n_validation"]
    assert text.startswith(f"Verdict, chosen by validation error ({examples:,} held-out examples; the test set is not read):")
    # Printed after the jobs, before the summary table.
    assert output.index(text.strip()) < output.index("error % (mean +- std)")
    table = pd.read_csv(report / "verdict.csv")
    assert table["fraction"].tolist() == [0.5, 0.7] and set(table["choice"]) <= {"cnn-entropy", "random"}
    runs = pd.read_csv(report / "runs.csv")
    for row in table.itertuples():
        chosen = runs[(runs["selection"] == row.choice) & (runs["fraction"] == row.fraction)]
        assert row.validation_error == pytest.approx(chosen["validation_error"].mean(), abs=1e-4)
        assert row.advice.startswith(("keep", "use random, or keep more")) and f"at {row.fraction:g}: {row.choice}" in text
    assert runs["train_accuracy"].between(0, 100).all()
    assert "the choice is also the test set's best at" in text
    assert (tmp_path / "results/digits/logs/write_verdict.log").read_text().strip() == text.strip()
