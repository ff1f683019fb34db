"""Keep policies (hardest first, easiest first, a middle band) and scores from other tools.

Real files throughout: score parquets written by plain pandas (no svp metadata), ranks
and subsets written by the stages, and the config and plan that name the selections.
"""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from svp import plan
from svp.config import validate_config
from svp.errors import ConfigError, StageInputError
from svp.parquet import read_parquet_metadata
from svp.selection.orders import keep_name, keep_order, parse_keep, selection_order, subset_size
from svp.selection.ranking import ranks_from_scores
from svp.selection.subsets import rank_runs, select_subset

FRACTIONS = (0.05, 0.1, 0.3, 0.5, 0.7, 0.95, 1.0)


def _ranks_and_labels(n=400, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return ranks_from_scores(rng.random(n)), rng.integers(0, classes, n)


@pytest.mark.parametrize("keep", ["hardest", "easiest", "middle0.1", "middle0.5"])
@pytest.mark.parametrize("class_balanced", [False, True])
def test_every_keep_policy_gives_nested_subsets(keep, class_balanced):
    ranks, labels = _ranks_and_labels()
    order = selection_order(ranks, labels, class_balanced, keep)
    assert sorted(order.tolist()) == list(range(len(ranks)))
    subsets = [set(order[: subset_size(f, len(ranks))].tolist()) for f in FRACTIONS]
    assert all(small <= large for small, large in zip(subsets, subsets[1:]))


def test_hardest_is_svp_easiest_the_reverse_and_middle_skips_the_hardest_share():
    ranks, labels = _ranks_and_labels()
    n = len(ranks)
    np.testing.assert_array_equal(selection_order(ranks, labels, False, "hardest"), np.argsort(ranks))
    np.testing.assert_array_equal(selection_order(ranks, labels, False, "easiest"), np.argsort(ranks)[::-1])
    middle = selection_order(ranks, labels, False, "middle0.1")
    dropped = 40  # round(0.1 x 400)
    np.testing.assert_array_equal(ranks[middle[: n - dropped]], np.arange(dropped, n))  # the band, hardest first
    np.testing.assert_array_equal(ranks[middle[n - dropped:]], np.arange(dropped)[::-1])  # dropped ones last
    subset = middle[: subset_size(0.3, n)]
    assert ranks[subset].min() == dropped and ranks[subset].max() == dropped + 120 - 1


def test_keep_policies_apply_before_class_balance():
    ranks, labels = _ranks_and_labels()
    order = selection_order(ranks, labels, True, "easiest")
    for label in range(4):  # each class contributes its own easiest examples first
        assert np.all(np.diff(ranks[order[labels[order] == label]]) < 0)


def test_keep_names_and_their_refusals():
    assert keep_name("hardest") == "hardest" and keep_name({"middle": 0.1}) == "middle0.1"
    assert parse_keep("middle0.25") == ("middle", 0.25)
    for bad in ("middle", "middle1.5", "middle0", "hardst", "middle-0.1"):
        with pytest.raises(ConfigError, match="keep policy"):
            parse_keep(bad)
    with pytest.raises(ConfigError, match="keep policy"):
        keep_order(np.arange(3), "softest")


def _config(**selection):
    return validate_config(
        {
            "experiment": "k",
            "dataset": {"name": "digits"},
            "proxies": {"cnn": {"model": "small_cnn"}},
            "targets": {"t": {"model": "small_cnn"}},
            "selection": {"metrics": ["entropy"], **selection},
        }
    )


def test_default_keeps_todays_selection_names_and_others_get_their_own():
    default = _config()
    assert "keep" not in default["selection"]  # configs resolve as before
    assert plan.proxy_selections(default) == ["cnn-entropy"]
    assert plan.proxy_selections(_config(keep="hardest")) == ["cnn-entropy"]
    several = _config(keep=["hardest", "easiest", {"middle": 0.1}])
    names = plan.proxy_selections(several)
    assert names == ["cnn-entropy", "cnn-entropy-easiest", "cnn-entropy-middle0.1"]
    assert [plan.parse_selection(name) for name in names] == [("cnn", "entropy")] * 3
    assert [plan.selection_keep(name) for name in names] == ["hardest", "easiest", "middle0.1"]
    import re

    pattern = re.compile(r"[A-Za-z0-9_]+-(entropy)" + plan.KEEP_SUFFIX_PATTERN)
    assert all(pattern.fullmatch(name) for name in names)
    assert not pattern.fullmatch("cnn-entropy-bogus")


@pytest.mark.parametrize("keep", ["hardst", {"middle": 1.0}, {"middle": 0}, {"middle": 0.1, "x": 1}, ["easiest", "easiest"], []])
def test_bad_keep_values_are_refused_naming_the_key(keep):
    # A bad value inside a policy names its own key ('selection.keep.middle'), then the policies.
    with pytest.raises(ConfigError, match=r"config key 'selection.keep[^']*'.*give hardest"):
        _config(keep=keep)


def _pandas_scores(tmp_path, name, scores, labels, **extra):
    """A score file as another tool would write it: plain pandas, no svp metadata."""
    path = tmp_path / f"{name}.parquet"
    pd.DataFrame({"index": np.arange(len(labels)), "label": labels, **scores, **extra}).to_parquet(path)
    return path


def test_rank_reads_scores_written_by_plain_pandas_and_names_runs_by_file(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    files = [_pandas_scores(tmp_path, f"el2n_run{i}", {"entropy": rng.random(60)}, labels) for i in range(2)]
    assert read_parquet_metadata(files[0]) == {}
    out = tmp_path / "ranks.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "svp", "rank", *map(str, files), "--metric", "entropy", "--out", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    ranks = pd.read_parquet(out)
    assert {"rank_el2n_run0", "rank_el2n_run1"} <= set(ranks.columns)
    assert sorted(ranks["rank"]) == list(range(60))
    subset = select_subset(fraction=0.5, subset_out=tmp_path / "s.parquet", class_balanced=True, ranks_file=out)
    assert len(subset) == 30  # the diagnostics found both runs by their file names
    assert read_parquet_metadata(tmp_path / "s.parquet")["diagnostics"]["proxy_runs"] == 2


def test_rank_reads_another_tools_rows_in_any_order(tmp_path):
    rng = np.random.default_rng(1)
    labels, scores = rng.integers(0, 3, 30), rng.random(30)
    shuffled = rng.permutation(30)
    path = tmp_path / "shuffled.parquet"
    pd.DataFrame({"index": shuffled, "label": labels[shuffled], "margin": scores[shuffled]}).to_parquet(path)
    ranked = rank_runs(score_files=[path], metric="margin", ranks_out=tmp_path / "r.parquet")
    np.testing.assert_array_equal(ranked["rank"], ranks_from_scores(scores))
    np.testing.assert_array_equal(ranked["label"], labels)


def test_rank_says_which_columns_another_tools_file_lacks(tmp_path):
    labels = np.zeros(10, dtype=np.int64)
    no_metric = _pandas_scores(tmp_path, "no_metric", {"entropy": np.ones(10)}, labels)
    with pytest.raises(StageInputError, match=r"no_metric.parquet: no column 'margin'.*needs the columns index, label, margin.*has index, label, entropy"):
        rank_runs(score_files=[no_metric], metric="margin", ranks_out=tmp_path / "r.parquet")
    frame = pd.DataFrame({"label": labels, "margin": np.ones(10)}).rename_axis("index")
    frame.to_parquet(tmp_path / "pandas_index.parquet")
    with pytest.raises(StageInputError, match=r"no column 'index' \(a DataFrame's index is not stored as a column"):
        rank_runs(score_files=[tmp_path / "pandas_index.parquet"], metric="margin", ranks_out=tmp_path / "r.parquet")
    text = _pandas_scores(tmp_path, "text", {"margin": ["high"] * 10}, labels)
    with pytest.raises(StageInputError, match="column 'margin' holds (large_)?string values, not numbers"):
        rank_runs(score_files=[text], metric="margin", ranks_out=tmp_path / "r.parquet")


def test_two_files_with_one_name_are_told_apart_by_their_paths(tmp_path):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 20)
    files = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        files.append(_pandas_scores(tmp_path / folder, "scores", {"entropy": rng.random(20)}, labels))
    ranked = rank_runs(score_files=files, metric="entropy", ranks_out=tmp_path / "r.parquet")
    assert {f"rank_{files[0]}", f"rank_{files[1]}"} <= set(ranked.columns)


def test_select_writes_the_keep_policy_and_refuses_it_for_random_subsets(tmp_path):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, 50)
    scores = _pandas_scores(tmp_path, "run", {"entropy": rng.random(50)}, labels)
    ranks = tmp_path / "ranks.parquet"
    rank_runs(score_files=[scores], metric="entropy", ranks_out=ranks)
    easiest = select_subset(fraction=0.2, subset_out=tmp_path / "e.parquet", class_balanced=False, keep="easiest", ranks_file=ranks)
    hardest = select_subset(fraction=0.2, subset_out=tmp_path / "h.parquet", class_balanced=False, ranks_file=ranks)
    assert not set(easiest["index"]) & set(hardest["index"])
    assert read_parquet_metadata(tmp_path / "e.parquet")["keep"] == "easiest"
    assert "keep" not in read_parquet_metadata(tmp_path / "h.parquet")  # SVP's subsets as before
    with pytest.raises(ConfigError, match="needs a proxy's ranks"):
        select_subset(fraction=0.2, subset_out=tmp_path / "r.parquet", class_balanced=False, keep="easiest", random_seed=0)


@pytest.mark.workflow
def test_keep_policies_flow_through_the_workflow_on_digits(tmp_path):
    """One tiny digits run with all four policies: their subsets, targets, summary rows
    and subset diagnostics under their own names, SVP's under today's; with a validation
    split, whose error every row reports."""
    import os
    import yaml
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    training = {"batch_size": 64, "lr_schedule": [{"epochs": 1, "lr": 0.05}]}
    config = {
        "experiment": "keep",
        "dataset": {"name": "digits", "validation": 0.1},
        "proxies": {"cnn": {"model": "small_cnn", "seeds": [0, 1], "training": training}},
        "targets": {"net": {"model": "small_cnn", "seeds": [0], "training": training}},
        "selection": {"metrics": ["entropy"], "fractions": [0.3, 0.6, 1.0], "random": False,
                      "keep": ["hardest", "easiest", {"middle": 0.1}, {"coverage": {"prune_hardest": 0.1, "bins": 5, "seed": 2}}]},
    }
    (tmp_path / "keep.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(tmp_path),
         "--cores", "2", "--resources", "gpu=1", "--configfile", str(tmp_path / "keep.yaml")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    results = tmp_path / "results/keep"
    ranks = pd.read_parquet(results / "ranks/cnn-entropy.parquet").set_index("index")["rank"]
    n = len(ranks)
    names = ["cnn-entropy", "cnn-entropy-easiest", "cnn-entropy-middle0.1", "cnn-entropy-coverage0.1bins5seed2"]
    subsets = {name: [pd.read_parquet(results / f"subsets/{name}/{f}.parquet")["index"] for f in ("0.3", "0.6")] for name in names}
    for small, large in subsets.values():
        assert set(small) <= set(large)
    hardest, easiest, middle, coverage = (ranks[subsets[name][0]] for name in names)
    k = len(hardest)
    assert sorted(hardest) == list(range(k)) and sorted(easiest) == list(range(n - k, n))
    assert middle.min() == round(0.1 * n) and middle.max() == round(0.1 * n) + len(middle) - 1
    # Coverage: never the hardest tenth, and down to the easy end that top-k never reaches.
    assert coverage.min() >= round(0.1 * n) and coverage.max() > n - k
    info = read_parquet_metadata(results / "subsets/cnn-entropy-coverage0.1bins5seed2/0.3.parquet")
    assert info["coverage"]["seed"] == 2 and sum(info["coverage"]["bin_taken"]) == k
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["selection"]) == {*names, "full"}
    assert summary["validation_error_mean"].between(0, 100).all()  # every row, beside the test error
    assert n == 1347 - 136  # the split was held out before the proxies scored
    assert set(summary.loc[summary["selection"] != "full", "metric"]) == {"entropy"}
    table = pd.read_csv(results / "report/subsets.csv")
    assert set(table["selection"]) == {*names, "full"}
    assert table.loc[table["selection"] != "full", "proxy_runs"].eq(2).all()  # each found its ranks
