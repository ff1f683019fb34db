"""The verdict's arithmetic on hand-made runs: the choice by validation error alone, "beats"
beyond both spreads, the advice, the time saved, the reasons, and the agreement with the
test set's best."""

import math

import pandas as pd
import pytest

from svp.report.verdict import agreement_with_test, beats, verdict


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
    assert row["advice"].startswith("use random, or keep more")
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


def test_reasons_name_class_skew_proxy_error_and_underfitting():
    runs = runs_table([
        ("p-entropy", 0.3, 0, 20.0, 20.0, 6.0, 30.0), ("p-entropy", 0.3, 1, 20.4, 20.0, 6.0, 28.0),
        ("random", 0.3, 0, 15.0, 15.0, 4.0, 70.0), ("random", 0.3, 1, 15.2, 15.0, 4.0, 72.0),
        ("full", 1.0, 0, 9.0, 9.0, 10.0, 90.0),
    ])
    subsets = pd.DataFrame([
        {"selection": "p-entropy", "fraction": 0.3, "min_ratio": 0.34, "min_ratio_class": "automobile", "proxy_error": 24.0},
        {"selection": "random", "fraction": 0.3, "min_ratio": 0.96, "min_ratio_class": "ship", "proxy_error": math.nan},
    ])
    row = verdict(runs, subsets).iloc[0]
    assert row["choice"] == "random"
    assert "p-entropy skews the classes (keeps automobile at 0.34" in row["why"]
    assert "proxy's test error is 24.0 %" in row["why"]
    assert "29 % training accuracy against 90 %" in row["why"]


def test_missing_validation_is_refused():
    with pytest.raises(ValueError, match="dataset.validation"):
        verdict(pd.DataFrame({"target": ["t"], "selection": ["random"], "fraction": [0.5], "total_seconds": [1.0]}))
