"""Coverage-centric sampling (CCS, Zheng et al. 2023): the allocation, the order, the
subsets, their metadata and the refusals, on hand-computed cases."""

import re

import numpy as np
import pandas as pd
import pytest

from svp import plan
from svp.config import validate_config
from svp.errors import ConfigError, StageInputError
from svp.parquet import read_parquet_metadata
from svp.selection.coverage import Coverage, allocate, coverage_order, equal_width_bins, parse_coverage
from svp.selection.orders import keep_name, parse_keep, selection_order, subset_size
from svp.selection.ranking import ranks_from_scores
from svp.selection.subsets import rank_runs, select_subset

# Twelve examples: the two hardest (5.0, 4.0) are dropped by prune_hardest 1/6; the other
# ten span 0 to 3, so three bins of width 1 hold 1, 3 and 6 of them.
SCORES = np.array([2.1, 5.0, 1.2, 2.2, 0.0, 2.4, 1.5, 4.0, 2.6, 1.8, 2.8, 3.0])
BIN = np.array([2, -1, 1, 2, 0, 2, 1, -1, 2, 1, 2, 2])  # -1: dropped
POLICY = Coverage(prune_hardest=1 / 6, bins=3)


def test_allocation_gives_small_bins_all_they_have_and_spreads_the_rest():
    # Sorted by size: 1, 3, 6. Budget 6: the 1-bin gives min(1, 6 // 3) = 1, the 3-bin
    # min(3, 5 // 2) = 2, the 6-bin the 3 left. Budget 9: 1, min(3, 8 // 2) = 3, 5.
    assert allocate(6, [6, 1, 3]).tolist() == [3, 1, 2]
    assert allocate(9, [6, 1, 3]).tolist() == [5, 1, 3]
    assert allocate(10, [6, 1, 3]).tolist() == [6, 1, 3]
    assert allocate(2, [6, 1, 3]).tolist() == [1, 0, 1]  # 2 // 3 = 0 from the 1-bin; 2 // 2 = 1, 1
    assert allocate(4, [0, 5, 0, 5]).tolist() == [0, 2, 0, 2]  # empty bins take nothing
    with pytest.raises(ValueError):
        allocate(11, [6, 1, 3])


def test_equal_width_bins_over_the_range():
    assert equal_width_bins(np.array([0.0, 0.99, 1.0, 2.5, 3.0]), 3).tolist() == [0, 0, 1, 2, 2]
    assert equal_width_bins(np.ones(4), 5).tolist() == [0, 0, 0, 0]  # no range: one bin


def test_the_order_is_the_hand_computed_ccs_subset_for_every_budget():
    ranks = ranks_from_scores(SCORES)
    order = coverage_order(SCORES, ranks, POLICY)
    assert sorted(order.tolist()) == list(range(12))
    assert order[10:].tolist() == [7, 1]  # the dropped ones last, least hard first
    assert np.all(BIN[order[:10]] >= 0)
    hand = {6: [1, 2, 3], 9: [1, 3, 5], 10: [1, 3, 6]}
    for budget in range(1, 11):
        counts = np.bincount(BIN[order[:budget]], minlength=3)
        assert counts.tolist() == allocate(budget, [1, 3, 6]).tolist()
        if budget in hand:
            assert counts.tolist() == hand[budget]


def test_the_draw_is_seeded_and_uniform_within_each_bin():
    ranks = ranks_from_scores(SCORES)
    again = coverage_order(SCORES, ranks, POLICY)
    np.testing.assert_array_equal(coverage_order(SCORES, ranks, POLICY), again)
    # Budget 6 takes 3 of the 6 examples in the top bin: over seeds, each about half the time.
    top = np.flatnonzero(BIN == 2)
    taken = np.zeros(len(SCORES))
    seeds = 400
    for seed in range(seeds):
        subset = coverage_order(SCORES, ranks, Coverage(1 / 6, 3, seed))[:6]
        taken[subset] += 1
    np.testing.assert_allclose(taken[top] / seeds, 0.5, atol=0.1)
    assert taken[4] == seeds  # the only example of its bin, in every subset
    assert taken[[1, 7]].sum() == 0


def test_names_round_trip_and_name_selections():
    assert keep_name({"coverage": {"prune_hardest": 0.1, "bins": 50}}) == "coverage0.1bins50"
    assert keep_name({"coverage": {"prune_hardest": 0.1}}) == "coverage0.1bins50"  # Zheng et al.'s 50 bins
    assert keep_name({"coverage": {"prune_hardest": 0, "bins": 5, "seed": 0}}) == "coverage0.0bins5"
    assert keep_name({"coverage": {"prune_hardest": 0.25, "bins": 5, "seed": 3}}) == "coverage0.25bins5seed3"
    assert parse_coverage("coverage0.25bins5seed3") == Coverage(0.25, 5, 3)
    assert parse_keep("coverage0.1bins50") == ("coverage", 0.1)
    for bad in ("coverage", "coverage1.0bins5", "coverage0.1bins0", "coverage0.1bins5seed0", "coverage0.1"):
        with pytest.raises(ConfigError, match="keep policy"):
            parse_keep(bad)
    pattern = re.compile(r"[A-Za-z0-9_]+-(entropy)" + plan.KEEP_SUFFIX_PATTERN)
    assert pattern.fullmatch("cnn-entropy-coverage0.1bins50") and pattern.fullmatch("cnn-entropy-coverage0.0bins5seed3")
    assert plan.selection_keep("cnn-entropy-coverage0.1bins50") == "coverage0.1bins50"


def _config(keep, fractions=(0.3, 0.5, 1.0), class_balanced=False, name="digits"):
    dataset = {"name": name}
    return validate_config(
        {
            "experiment": "c",
            "dataset": dataset,
            "proxies": {"cnn": {"model": "small_cnn"}},
            "targets": {"t": {"model": "small_cnn"}},
            "selection": {"metrics": ["entropy", "el2n", "kcenter"], "fractions": list(fractions), "keep": keep,
                          "class_balanced": class_balanced},
        }
    )


def test_one_policy_written_twice_is_refused():
    with pytest.raises(ConfigError, match=r"'selection.keep\[1\]': the same policy as selection.keep\[0\] \(coverage0.1bins50\)"):
        _config([{"coverage": {"prune_hardest": 0.1}}, {"coverage": {"prune_hardest": 0.1, "bins": 50}}])


def test_config_names_the_selections():
    config = _config(["hardest", {"coverage": {"prune_hardest": 0.2, "bins": 10}}])
    assert "cnn-kcenter-coverage0.2bins10" in plan.proxy_selections(config)
    assert "cnn-el2n-coverage0.2bins10" in plan.proxy_selections(config)


@pytest.mark.parametrize(
    "coverage, message",
    [
        ({"prune_hardest": float("nan"), "bins": 5}, r"'selection.keep.coverage.prune_hardest': nan is not a finite number"),
        ({"prune_hardest": 1.0, "bins": 5}, r"'selection.keep.coverage.prune_hardest': 1.0 is greater than or equal to the maximum of 1"),
        ({"prune_hardest": -0.1, "bins": 5}, r"'selection.keep.coverage.prune_hardest': -0.1 is less than the minimum of 0"),
        ({"prune_hardest": 0.1, "bins": 0}, r"'selection.keep.coverage.bins': 0 is less than the minimum of 1"),
        ({"prune_hardest": 0.1, "bins": 2.5}, r"'selection.keep.coverage.bins': 2.5 is not of type 'integer'"),
        ({"prune_hardest": 0.1, "bins": 1001}, r"'selection.keep.coverage.bins': 1001 is greater than the maximum of 1000"),
        ({"prune_hardest": 0.1, "bins": 50.0}, r"'selection.keep.coverage.bins': 50.0 is not an integer; write 50"),
        ({"bins": 5}, r"'selection.keep.coverage': 'prune_hardest' is a required property"),
        ({"prune_hardest": 0.1, "bin": 5}, r"unknown config key 'selection.keep.coverage.bin'"),
        ({"prune_hardest": 0.6}, r"'selection.keep.coverage.prune_hardest': dropping the hardest 0.6 leaves too few examples for fraction 0.5 \(selection.fractions\[1\]\)"),
        # 1,347 digits: fraction 0.5 takes 674, dropping round(0.5 x 1,347) = 674 leaves 673.
        ({"prune_hardest": 0.5}, r"of the 1,347 training examples it leaves 673, and the subset takes 674"),
    ],
)
def test_bad_coverage_settings_are_refused_naming_the_key(coverage, message):
    with pytest.raises(ConfigError, match=message):
        _config({"coverage": coverage})


def _ranks_file(tmp_path, scores, labels):
    path = tmp_path / "scores.parquet"
    pd.DataFrame({"index": np.arange(len(labels)), "label": labels, "entropy": scores}).to_parquet(path)
    ranks = tmp_path / "ranks.parquet"
    rank_runs(score_files=[path], metric="entropy", ranks_out=ranks)
    return ranks


def test_select_writes_the_coverage_subset_and_its_draw(tmp_path):
    labels = np.array([0, 1] * 6)
    ranks = _ranks_file(tmp_path, SCORES, labels)
    subset = select_subset(fraction=0.5, subset_out=tmp_path / "s.parquet", class_balanced=False,
                           keep="coverage0.17bins3seed4", ranks_file=ranks)
    # round(0.17 x 12) = 2 dropped, as with 1/6; 6 examples: 1, 2 and 3 from the bins.
    assert np.bincount(BIN[subset["index"]], minlength=3).tolist() == [1, 2, 3]
    np.testing.assert_array_equal(subset["index"], coverage_order(SCORES, ranks_from_scores(SCORES), Coverage(0.17, 3, 4))[:6])
    info = read_parquet_metadata(tmp_path / "s.parquet")
    assert info["keep"] == "coverage0.17bins3seed4"
    assert info["coverage"] == {"prune_hardest": 0.17, "bins": 3, "seed": 4, "dropped": 2, "bins_per_class": False,
                                "bin_sizes": [1, 3, 6], "bin_taken": [1, 2, 3]}
    with pytest.raises(StageInputError, match=r"config key selection.keep: coverage0.17bins3 drops the hardest 0.17 and leaves 10 examples, but fraction 0.9 takes 11"):
        select_subset(fraction=0.9, subset_out=tmp_path / "t.parquet", class_balanced=False, keep="coverage0.17bins3", ranks_file=ranks)
    with pytest.raises(ConfigError, match="needs a proxy's ranks"):
        select_subset(fraction=0.5, subset_out=tmp_path / "r.parquet", class_balanced=False, keep="coverage0.1bins3", random_seed=0)


@pytest.mark.parametrize("class_balanced", [False, True])
def test_coverage_subsets_are_nested_and_never_hold_the_dropped(class_balanced):
    rng = np.random.default_rng(0)
    scores, labels = rng.gamma(2.0, size=600), rng.integers(0, 4, 600)
    ranks = ranks_from_scores(scores)
    policy = "coverage0.2bins10"
    order = selection_order(ranks, labels, class_balanced, policy, scores)
    assert sorted(order.tolist()) == list(range(600))
    fractions = (0.05, 0.1, 0.3, 0.5, 0.7)
    subsets = [set(order[: subset_size(f, 600)].tolist()) for f in fractions]
    assert all(small <= large for small, large in zip(subsets, subsets[1:]))
    if class_balanced:  # each class drops its own hardest fifth
        dropped = set()
        for label in range(4):
            members = np.flatnonzero(labels == label)
            dropped |= set(members[np.argsort(ranks[members])[: round(0.2 * len(members))]].tolist())
        for f, subset in zip(fractions, subsets):
            counts = np.bincount(labels[list(subset)], minlength=4)
            share = subset_size(f, 600) * np.bincount(labels) / 600
            assert np.all(np.abs(counts - share) < 1)  # within one example of each class's share
    else:
        dropped = set(np.flatnonzero(ranks < 120).tolist())
    assert not subsets[-1] & dropped
    # Coverage reaches the easy end that top-k by hardness never does.
    hardest = set(np.argsort(ranks)[: subset_size(0.3, 600)].tolist())
    assert scores[list(subsets[2])].min() < np.quantile(scores, 0.05) < scores[list(hardest)].min()


def test_class_balanced_refusal_names_the_class(tmp_path):
    labels = np.array([0] * 8 + [1] * 4)
    scores = np.linspace(0.0, 1.0, 12)
    ranks = _ranks_file(tmp_path, scores, labels)
    # Class 0 (8 examples) drops round(0.4 x 8) = 3 and keeps 5, class 1 (4) drops 2 and
    # keeps 2. Fraction 0.6 takes 7: 5 and 2. Fraction 0.7 takes 8, and class 1's third
    # example is due at (2 + 1/2) / 4 of its class, i.e. as the 8th of 12: a dropped one.
    subset = select_subset(fraction=0.6, subset_out=tmp_path / "s.parquet", class_balanced=True, keep="coverage0.4bins2", ranks_file=ranks)
    assert np.bincount(subset["label"]).tolist() == [5, 2]
    with pytest.raises(StageInputError, match=r"leaves 2 examples of class 1, but fraction 0.7 takes 3"):
        select_subset(fraction=0.7, subset_out=tmp_path / "t.parquet", class_balanced=True, keep="coverage0.4bins2", ranks_file=ranks)
    assert read_parquet_metadata(tmp_path / "s.parquet")["coverage"]["bins_per_class"] is True
