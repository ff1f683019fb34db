"""Subset diagnostics: class composition against the full data, the proxy runs' overlap,
the proxy's error and disagreement with the labels, and the warning for a skewed subset.

Constructed cases with known answers: a skewed selection (hard classes crowd out easy
ones: the warning must fire), a balanced one (it must not), hand-counted Jaccard indices,
and hostile inputs (empty subset, missing class, one proxy run, NaN proxy errors).
"""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from svp.selection import diagnostics
from svp.report import figures
from svp.selection.diagnostics import (
    class_composition,
    composition_warning,
    diagnose_subsets,
    jaccard,
    mean_pairwise_jaccard,
    single_run_subsets,
)
from svp.io import write_json
from svp.parquet import read_parquet_metadata, write_parquet
from svp.report import subset_tables
from svp.report.subset_tables import write_subset_tables
from svp.report.tables import write_results_tables
from svp.selection.orders import selection_order
from svp.selection.subsets import rank_runs, select_subset

N_CLASSES = 4
PER_CLASS = 50


def _labels() -> np.ndarray:
    return np.repeat(np.arange(N_CLASSES), PER_CLASS)  # 200 examples, 50 per class


def test_composition_of_a_subset_missing_a_class_has_ratio_zero():
    labels = _labels()
    subset = labels[labels != 3]  # classes 0-2 kept whole, class 3 dropped
    composition = class_composition(subset, labels)
    np.testing.assert_allclose(composition["shares"], [1 / 3, 1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(composition["full_shares"], [0.25] * 4)
    np.testing.assert_allclose(composition["ratios"], [4 / 3, 4 / 3, 4 / 3, 0])
    assert composition["min_ratio"] == 0 and composition["min_ratio_class"] == 3
    assert composition["tv_distance"] == pytest.approx(0.25)  # half of 3 x 1/12 + 1/4
    assert composition["classes_below_half"] == 1 and composition["n_examples"] == 150


def test_composition_of_an_empty_subset_is_undefined_not_an_error():
    composition = class_composition(np.array([], dtype=np.int64), _labels())
    assert composition["n_examples"] == 0 and composition["min_ratio_class"] is None
    assert math.isnan(composition["min_ratio"]) and math.isnan(composition["tv_distance"])
    warning = composition_warning("cnn-entropy", 0.5, composition, class_balanced=False)
    assert warning == "subset cnn-entropy at fraction 0.5 is empty: the target trained on no example"


def test_a_class_without_training_examples_is_ignored_not_divided_by():
    labels = np.array([0, 0, 2, 2])  # class 1 (of 3) has no example at all
    composition = class_composition(np.array([0, 2]), labels, num_classes=3)
    assert np.isnan(composition["ratios"][1]) and composition["min_ratio"] == pytest.approx(1.0)
    assert composition["tv_distance"] == pytest.approx(0.0)


def test_jaccard_on_hand_counted_sets():
    assert jaccard(np.array([0, 1, 2, 3]), np.array([2, 3, 4, 5])) == pytest.approx(2 / 6)
    assert jaccard(np.array([1, 2]), np.array([2, 1])) == 1.0
    assert math.isnan(jaccard(np.array([], dtype=int), np.array([], dtype=int)))
    sets = [np.array([0, 1]), np.array([1, 2]), np.array([0, 1, 2])]
    # pairs: {0,1}&{1,2} = 1/3, {0,1}&{0,1,2} = 2/3, {1,2}&{0,1,2} = 2/3
    assert mean_pairwise_jaccard(sets) == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)
    assert math.isnan(mean_pairwise_jaccard(sets[:1]))  # one run: undefined
    assert math.isnan(mean_pairwise_jaccard([]))


def test_single_run_subsets_follow_each_runs_own_order_and_class_balance():
    labels = np.array([0, 0, 0, 1, 1, 1])
    runs = {"seed0": np.array([0, 1, 2, 3, 4, 5]), "seed1": np.array([5, 4, 3, 2, 1, 0])}
    plain = single_run_subsets(runs, labels, 0.5, class_balanced=False)
    assert set(plain["seed0"]) == {0, 1, 2} and set(plain["seed1"]) == {3, 4, 5}  # disjoint: Jaccard 0
    assert mean_pairwise_jaccard(plain.values()) == 0.0
    balanced = single_run_subsets(runs, labels, 0.5, class_balanced=True)
    for run, ranks in runs.items():
        np.testing.assert_array_equal(balanced[run], selection_order(ranks, labels, True)[:3])
        assert set(labels[balanced[run]]) == {0, 1}  # both classes in each run's half
    assert set(balanced["seed0"]) == {0, 1, 3} and set(balanced["seed1"]) == {2, 4, 5}
    assert mean_pairwise_jaccard(balanced.values()) == 0.0


def _proxy_experiment(root, *, seeds=(0, 1, 2), errors=(4.0, 5.0, 6.0)):
    """Score files, ranks and proxy metrics in the stages' own formats.

    Classes 2 and 3 are hard (high entropy, often mispredicted), so the most uncertain
    half of plain top-k holds almost only them: the skewed case.
    """
    labels = _labels()
    rng = np.random.default_rng(0)
    score_files, metrics = [], []
    for seed, error in zip(seeds, errors):
        hard = labels >= 2
        correct = ~(hard & (np.arange(len(labels)) % 5 == seed % 5))  # each run misses a different fifth of the hard ones
        frame = pd.DataFrame({
            "index": np.arange(len(labels)), "label": labels, "prediction": np.where(correct, labels, (labels + 1) % N_CLASSES),
            "correct": correct, "entropy": rng.random(len(labels)) + 2.0 * hard,
        })
        score_files.append(root / f"scores/cnn/seed{seed}.parquet")
        write_parquet(frame, score_files[-1], {"proxy": "cnn", "seed": seed, "scoring_seconds": 0.1})
        metrics.append(root / f"proxies/cnn/seed{seed}/metrics.json")
        write_json(metrics[-1], {"role": "proxy", "proxy": "cnn", "seed": seed, "test_error": error, "seconds": 1.0})
    ranks = root / "ranks/cnn-entropy.parquet"
    rank_runs(score_files=score_files, metric="entropy", ranks_out=ranks)
    data = root / "data"
    data.mkdir()
    np.savez(data / "train.npz", x=np.zeros((len(labels), 2, 2, 1), dtype=np.uint8), y=labels)
    manifest = {"classes": ["ant", "bee", "cat", "dog"], "num_classes": N_CLASSES, "checksums": {}, "image_shape": [2, 2, 1],
                "augment": {}, "mean": [0.0], "std": [1.0]}
    (data / "manifest.json").write_text(json.dumps(manifest))
    return {"labels": labels, "scores": score_files, "metrics": metrics, "ranks": ranks, "data": data}


def _select(root, experiment, *, class_balanced, fraction=0.5, name="cnn-entropy", random_seed=None):
    out = root / f"subsets/{name}/{fraction}.parquet"
    source = {"ranks_file": experiment["ranks"]} if random_seed is None else {"random_seed": random_seed, "data_dir": experiment["data"]}
    select_subset(fraction=fraction, subset_out=out, class_balanced=class_balanced, **source)
    return out


def test_skewed_selection_warns_and_records_why_in_its_metadata(tmp_path, capsys):
    experiment = _proxy_experiment(tmp_path)
    subset = _select(tmp_path, experiment, class_balanced=False)
    assert "warning: subset cnn-entropy at fraction 0.5 keeps class '0' at 0.00" in capsys.readouterr().out
    facts = read_parquet_metadata(subset)["diagnostics"]
    assert facts["class_counts"] == [0, 0, 50, 50] and facts["full_class_counts"] == [50] * 4
    assert facts["class_shares"] == [0.0, 0.0, 0.5, 0.5] and facts["full_class_shares"] == [0.25] * 4
    assert facts["min_ratio"] == 0.0 and facts["min_ratio_class"] == 0 and facts["classes_below_half"] == 2
    assert facts["tv_distance"] == pytest.approx(0.5)
    assert facts["proxy_runs"] == 3 and facts["jaccard"] == pytest.approx(1.0)  # every run picks the two hard classes
    # Each run misses every fifth hard example: 20% of the subset (all hard), 10% of all examples.
    assert facts["disagreement"] == pytest.approx(20.0) and facts["disagreement_all"] == pytest.approx(10.0)
    assert "class '0' at 0.00" in facts["warning"] and "also below half: '1' at 0.00" in facts["warning"]
    assert "selection.class_balanced: true" in facts["warning"]


def test_balanced_selection_does_not_warn(tmp_path, capsys):
    experiment = _proxy_experiment(tmp_path)
    subset = _select(tmp_path, experiment, class_balanced=True)
    assert "warning" not in capsys.readouterr().out
    facts = read_parquet_metadata(subset)["diagnostics"]
    assert facts["class_counts"] == [25] * 4 and facts["min_ratio"] == pytest.approx(1.0)
    assert facts["tv_distance"] == pytest.approx(0.0) and facts["warning"] == ""
    # Within each class the runs' orders are independent draws: far from identical.
    assert 0.0 < facts["jaccard"] < 0.8


def test_report_table_has_every_column_and_warns_only_for_the_skewed_subset(tmp_path):
    experiment = _proxy_experiment(tmp_path)
    skewed = _select(tmp_path, experiment, class_balanced=False, name="cnn-entropy")
    balanced = _select(tmp_path / "b", experiment, class_balanced=True, name="cnn-margin")
    randoms = [_select(tmp_path, experiment, class_balanced=False, name=f"random-{s}", random_seed=s) for s in (1, 0)]
    margin_ranks = tmp_path / "ranks/cnn-margin.parquet"
    margin_ranks.write_bytes(experiment["ranks"].read_bytes())
    out = {name: tmp_path / f"report/subsets.{name}" for name in ("csv", "md", "html")}
    table = write_subset_tables(
        data_dir=experiment["data"], subset_files=[*randoms, skewed, balanced], rank_files=[experiment["ranks"], margin_ranks],
        score_files=experiment["scores"], proxy_metrics=experiment["metrics"],
        csv_out=out["csv"], markdown_out=out["md"], html_out=out["html"],
    )
    written = subset_tables.read_subset_table(out["csv"])
    assert list(written.columns) == diagnostics.COLUMNS + ["share ant", "share bee", "share cat", "share dog"]
    # Proxy selections first, then random subsets by seed, the full data set last.
    assert list(written["subset"]) == ["cnn-entropy", "cnn-margin", "random-0", "random-1", "full"]
    rows = written.set_index("subset")
    assert rows.loc["cnn-entropy", "min_ratio"] == 0 and rows.loc["cnn-entropy", "min_ratio_class"] == "ant"
    assert rows.loc["cnn-entropy", "warning"].startswith("subset cnn-entropy at fraction 0.5 keeps class 'ant' at 0.00")
    assert "a better proxy (cnn: 5.0% test error)" in rows.loc["cnn-entropy", "warning"]
    assert "selection.keep: easiest or {middle: 0.1}" in rows.loc["cnn-entropy", "warning"]
    assert rows.loc["cnn-margin", "warning"] == "" and rows.loc["cnn-margin", "min_ratio"] == pytest.approx(1.0)
    assert rows.loc["cnn-entropy", "proxy_error"] == pytest.approx(5.0) and rows.loc["cnn-entropy", "proxy_runs"] == 3
    assert rows.loc["cnn-entropy", "share cat"] == pytest.approx(50.0) and rows.loc["full", "share cat"] == pytest.approx(25.0)
    assert rows.loc["full", "n_examples"] == 200 and rows.loc["full", "tv_distance"] == 0
    assert rows.loc["random-0", "proxy"] == "" and np.isnan(rows.loc["random-0", "proxy_error"])
    assert rows.loc["random-0", "selection"] == "random" and rows.loc["random-0", "n_examples"] == 100
    # The report recomputes what svp select stored.
    stored = read_parquet_metadata(skewed)["diagnostics"]
    assert rows.loc["cnn-entropy", "jaccard"] == pytest.approx(stored["jaccard"])
    assert rows.loc["cnn-entropy", "disagreement"] == pytest.approx(stored["disagreement"])
    assert diagnostics.warnings_of(table) == [rows.loc["cnn-entropy", "warning"]]
    markdown, page = out["md"].read_text(), out["html"].read_text()
    assert "**Warnings**" in markdown and "| cnn-entropy | 0.5 | 100 | 0.00 (ant) | 0.500 | 5.00 |" in markdown
    assert "| cnn-entropy 0.5 | **0.0** | **0.0** | 50.0 | 50.0 |" in markdown
    assert 'class="warnings"' in page and "keeps class &#x27;ant&#x27; at 0.00" in page and "<td class=low>0.0</td>" in page
    figures.write_class_composition(subsets_file=out["csv"], out=tmp_path / "composition.png")
    assert (tmp_path / "composition.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_proxy_run_leaves_jaccard_undefined_and_says_so(tmp_path, capsys):
    experiment = _proxy_experiment(tmp_path, seeds=(0,), errors=(4.0,))
    subset = _select(tmp_path, experiment, class_balanced=True)
    assert read_parquet_metadata(subset)["diagnostics"]["jaccard"] is None  # NaN is stored as null
    table, notes = diagnose_subsets(data_dir=experiment["data"], subset_files=[subset], rank_files=[experiment["ranks"]],
                                    score_files=experiment["scores"], proxy_metrics=experiment["metrics"])
    assert np.isnan(table.loc[0, "jaccard"]) and table.loc[0, "proxy_runs"] == 1
    assert notes == ["subset cnn-entropy: one proxy run, so the runs' Jaccard overlap is undefined (left empty)"]
    assert "| n/a (1 proxy run) |" in subset_tables.format_markdown(table)


def test_a_nan_proxy_error_shows_as_nan_with_a_note(tmp_path):
    experiment = _proxy_experiment(tmp_path, errors=(4.0, float("nan"), 6.0))
    subset = _select(tmp_path, experiment, class_balanced=False)
    table, notes = diagnose_subsets(data_dir=experiment["data"], subset_files=[subset], rank_files=[experiment["ranks"]],
                                    score_files=experiment["scores"], proxy_metrics=experiment["metrics"])
    assert np.isnan(table.loc[0, "proxy_error"])
    assert len(notes) == 1 and "seed1/metrics.json: test_error is nan" in notes[0]
    assert "a better proxy (cnn: NaN test error)" in table.loc[0, "warning"]
    assert "| NaN |" in subset_tables.format_markdown(table)


def test_an_empty_subset_file_is_reported_not_a_crash(tmp_path):
    experiment = _proxy_experiment(tmp_path)
    empty = tmp_path / "subsets/cnn-entropy/0.5.parquet"
    write_parquet(pd.DataFrame({"index": np.array([], dtype=np.int64), "label": np.array([], dtype=np.int64)}), empty,
                  {"fraction": 0.5, "class_balanced": False, "n_total": 200})
    table, _ = diagnose_subsets(data_dir=experiment["data"], subset_files=[empty], rank_files=[experiment["ranks"]],
                                score_files=experiment["scores"], proxy_metrics=experiment["metrics"])
    assert table.loc[0, "warning"] == "subset cnn-entropy at fraction 0.5 is empty: the target trained on no example"
    assert np.isnan(table.loc[0, "disagreement"]) and "| empty subset |" in subset_tables.format_markdown(table)


def _report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "svp", "report", *args], capture_output=True, text=True)


def test_bad_inputs_get_a_message_not_a_traceback(tmp_path):
    experiment = _proxy_experiment(tmp_path)
    bare = tmp_path / "bare.parquet"
    write_parquet(pd.DataFrame({"index": [0, 1]}), bare)  # no fraction or class_balanced recorded
    foreign = tmp_path / "subsets/cnn-entropy/0.5.parquet"
    write_parquet(pd.DataFrame({"index": [0, 999]}), foreign, {"fraction": 0.5, "class_balanced": False})
    outputs = ["--csv", str(tmp_path / "s.csv"), "--markdown", str(tmp_path / "s.md"), "--html", str(tmp_path / "s.html")]
    for subset, message in [(bare, "no fraction and class_balanced in its metadata"), (foreign, "row 1: index 999 is outside 0..199"),
                            (tmp_path / "nope.parquet", "nope.parquet")]:
        result = _report("subsets", "--data", str(experiment["data"]), "--subsets", str(subset), *outputs)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("svp report subsets: error:") and message in result.stderr, result.stderr
    assert not (tmp_path / "s.csv").exists()


def test_subset_warnings_command_prints_only_when_there_is_one(tmp_path):
    experiment = _proxy_experiment(tmp_path)
    subsets = {cb: _select(tmp_path / str(cb), experiment, class_balanced=cb) for cb in (False, True)}
    for class_balanced, subset in subsets.items():
        csv = tmp_path / f"{class_balanced}/report/subsets.csv"
        write_subset_tables(data_dir=experiment["data"], subset_files=[subset], rank_files=[experiment["ranks"]],
                            score_files=experiment["scores"], proxy_metrics=experiment["metrics"],
                            csv_out=csv, markdown_out=csv.with_suffix(".md"), html_out=csv.with_suffix(".html"))
        result = _report("subset-warnings", str(csv))
        assert result.returncode == 0, result.stderr
        if class_balanced:
            assert result.stdout == ""
        else:
            assert result.stdout.startswith("Warning: 1 subset keep")
            assert "subset cnn-entropy at fraction 0.5 keeps class 'ant' at 0.00" in result.stdout


def test_results_table_shows_the_proxys_own_error(tmp_path):
    experiment = _proxy_experiment(tmp_path)
    summary = pd.DataFrame([
        {"target": "net", "selection": "cnn-entropy", "proxy": "cnn", "metric": "entropy", "fraction": 0.5, "runs": 1,
         "error_mean": 9.0, "error_std": np.nan, "proxy_seconds": 3.0, "scoring_seconds": 0.3, "target_seconds": 1.0,
         "total_seconds": 4.3, "speedup": 0.5},
        {"target": "net", "selection": "full", "proxy": "", "metric": "", "fraction": 1.0, "runs": 1,
         "error_mean": 3.0, "error_std": np.nan, "proxy_seconds": 0.0, "scoring_seconds": 0.0, "target_seconds": 2.0,
         "total_seconds": 2.0, "speedup": 1.0},
    ])
    summary.to_csv(tmp_path / "summary.csv", index=False)
    config = {"proxies": {"cnn": {"model": "small_cnn", "seeds": [0, 1, 2], "training": {"lr_schedule": [{"epochs": 3, "lr": 0.1}]}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    table = write_results_tables(summary_file=tmp_path / "summary.csv", config_file=tmp_path / "config.yaml",
                                 csv_out=tmp_path / "r.csv", markdown_out=tmp_path / "r.md", html_out=tmp_path / "r.html",
                                 proxy_metrics=experiment["metrics"])
    assert table.set_index("selection")["proxy_error"].to_dict() == pytest.approx({"cnn-entropy": 5.0, "full": np.nan}, nan_ok=True)
    written = pd.read_csv(tmp_path / "r.csv")
    assert list(written.columns[:6]) == ["target", "selection", "proxy", "metric", "proxy_epochs", "proxy_error"]
    markdown = (tmp_path / "r.md").read_text()
    assert "| selection | proxy | metric | proxy epochs | proxy error % | 0.5 | 1.0 |" in markdown
    assert "| cnn-entropy | 3 x small_cnn (rank combination) | entropy | 3 | 5.00 | 9.00 |  |" in markdown
    assert "| full | none: full data |  |  |  |  | 3.00 |" in markdown


def test_ranks_record_the_share_of_runs_that_predicted_each_label(tmp_path):
    experiment = _proxy_experiment(tmp_path)
    ranks = pd.read_parquet(experiment["ranks"])
    expected = np.mean([pd.read_parquet(path)["correct"].to_numpy(dtype=float) for path in experiment["scores"]], axis=0)
    np.testing.assert_allclose(ranks["correct_mean"], expected)
