"""The report: tables recomputed from the per-run files, figures written, order correlation.

Run folders are written in the exact formats the stages write (metrics.json,
history.csv, score parquet files with their metadata), with known numbers, so every
table cell can be recomputed by hand; the last test runs the real workflow and
`snakemake --report` on a tiny config.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from svp import plan
from svp.report import figures
from svp.config import validate_config
from svp.report.correlation import correlation_matrices, load_orders, write_correlation
from svp.io import write_json
from svp.parquet import write_parquet
from svp.report.tables import format_error, write_results_tables, write_run_table
from svp.selection.subsets import rank_runs
from svp.report.summary import load_runs, load_scoring, summarize, write_summary

REPO = Path(__file__).resolve().parents[1]
CONFIG = validate_config(
    {
        "experiment": "unit",
        "dataset": {"name": "digits"},
        "proxies": {"cnn": {"model": "small_cnn", "seeds": [0, 1], "training": {"lr_schedule": [{"epochs": 3, "lr": 0.1}]}}},
        "targets": {"net": {"model": "preact_resnet8", "seeds": [0, 1, 2]}},
        "selection": {"metrics": ["entropy"], "fractions": [0.4, 0.8, 1.0]},
    }
)
N_EXAMPLES = 400


def _history(epochs: int, final_error: float) -> pd.DataFrame:
    history = pd.DataFrame(
        {
            "epoch": range(1, epochs + 1),
            "lr": 0.1,
            "train_loss": np.linspace(2.0, 0.1, epochs),
            "train_accuracy": np.linspace(10, 95, epochs),
            "epoch_seconds": 0.5,
        }
    )
    # Evaluated every other epoch and at the end, as with eval_every: 2.
    evaluated = (history["epoch"] % 2 == 0) | (history["epoch"] == epochs)
    history.loc[evaluated, "test_error"] = np.linspace(80, final_error, epochs)[evaluated]
    return history


def _write_run(folder: Path, metrics: dict) -> Path:
    folder.mkdir(parents=True)
    _history(metrics["epochs"], metrics["test_error"]).to_csv(folder / "history.csv", index=False)
    write_json(folder / "metrics.json", metrics)
    return folder / "metrics.json"


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A finished experiment's per-run files, with errors and times drawn at random."""
    root = tmp_path_factory.mktemp("experiment")
    rng = np.random.default_rng(0)
    proxies, scores, targets = [], [], []
    base = rng.random(N_EXAMPLES)
    for seed in (0, 1):
        proxies.append(_write_run(root / f"proxies/cnn/seed{seed}", {
            "role": "proxy", "proxy": "cnn", "seed": seed, "epochs": 3, "test_error": 9.0, "seconds": 2.0 + seed,
        }))
        frame = pd.DataFrame({"index": np.arange(N_EXAMPLES), "label": np.arange(N_EXAMPLES) % 10,
                              "entropy": base + 0.3 * rng.random(N_EXAMPLES)})
        scores.append(root / f"scores/cnn/seed{seed}.parquet")
        write_parquet(frame, scores[-1], {"proxy": "cnn", "seed": seed, "scoring_seconds": 0.25 * (seed + 1)})
    runs = [("full", None, None, 1.0)] + [(s, p, m, f) for s, p, m in [("cnn-entropy", "cnn", "entropy"), ("random", None, None), ("budget", None, None)] for f in (0.4, 0.8)]
    for selection, proxy, metric, fraction in runs:
        for seed in (0, 1, 2):
            targets.append(_write_run(root / f"targets/net/{selection}/{fraction}/seed{seed}", {
                "role": "target", "target": "net", "selection": selection, "proxy": proxy, "metric": metric,
                "fraction": fraction, "seed": seed, "n_train": int(fraction * N_EXAMPLES), "epochs": 4,
                "test_error": float(rng.uniform(1, 20)), "seconds": float(rng.uniform(5, 50) * fraction),
            }))
    summary = summarize(load_runs(targets, "target"), load_runs(proxies, "proxy"), load_scoring(scores))
    write_summary(summary, root / "summary.csv")
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return {"root": root, "proxies": proxies, "scores": scores, "targets": targets}


def _recomputed(experiment) -> pd.DataFrame:
    """Error mean and std and end-to-end time per selection and fraction, straight from the files."""
    targets = pd.DataFrame([json.loads(Path(p).read_text()) for p in experiment["targets"]])
    proxy_seconds = sum(json.loads(Path(p).read_text())["seconds"] for p in experiment["proxies"])
    scoring_seconds = sum(0.25 * (seed + 1) for seed in (0, 1))
    rows = []
    for (selection, fraction), group in targets.groupby(["selection", "fraction"]):
        errors = group["test_error"].to_numpy()
        overhead = proxy_seconds + scoring_seconds if selection == "cnn-entropy" else 0.0
        rows.append({"selection": selection, "fraction": fraction, "mean": errors.mean(), "std": errors.std(ddof=1),
                     "seconds": overhead + group["seconds"].mean()})
    table = pd.DataFrame(rows)
    full_seconds = table.loc[table["selection"] == "full", "seconds"].iloc[0]
    return table.assign(speedup=full_seconds / table["seconds"])


def test_results_table_equals_a_recomputation_from_the_run_files(experiment, tmp_path):
    root = experiment["root"]
    table = write_results_tables(
        summary_file=root / "summary.csv", config_file=root / "config.yaml",
        csv_out=tmp_path / "results.csv", markdown_out=tmp_path / "results.md", html_out=tmp_path / "results.html",
    )
    written = pd.read_csv(tmp_path / "results.csv", keep_default_na=False).set_index("selection")
    markdown, page = (tmp_path / "results.md").read_text(), (tmp_path / "results.html").read_text()
    assert list(written.index) == ["cnn-entropy", "random", "budget", "full"]  # proxies, baselines, full last
    assert written.loc["cnn-entropy", "proxy"] == "2 x small_cnn (rank combination)"
    assert written.loc["cnn-entropy", "proxy_epochs"] == "3"
    for row in _recomputed(experiment).itertuples():
        label = f"{row.fraction:.1f}"
        cell = f"{row.mean:.2f} +- {row.std:.2f}"
        assert written.loc[row.selection, f"error {label}"] == cell
        assert float(written.loc[row.selection, f"seconds {label}"]) == pytest.approx(row.seconds, rel=1e-5)
        assert float(written.loc[row.selection, f"speedup {label}"]) == pytest.approx(row.speedup, rel=1e-5)
        assert cell in markdown and cell in page
        assert f"{row.seconds:.1f} s ({row.speedup:.2f}x)" in markdown
    # A selection has no cell at fractions it was not trained on.
    assert written.loc["full", "error 0.4"] == "" and written.loc["random", "error 1.0"] == ""
    assert len(table) == 4 and markdown.count("## Target net") == 1


def test_run_table_has_each_runs_end_to_end_cost(experiment, tmp_path):
    runs = write_run_table(target_metrics=experiment["targets"], proxy_metrics=experiment["proxies"],
                           score_files=experiment["scores"], out=tmp_path / "runs.csv")
    assert len(runs) == len(experiment["targets"]) and len(pd.read_csv(tmp_path / "runs.csv")) == len(runs)
    for path in experiment["targets"]:
        facts = json.loads(Path(path).read_text())
        row = runs[(runs["selection"] == facts["selection"]) & (runs["fraction"] == facts["fraction"]) & (runs["seed"] == facts["seed"])]
        overhead = (2.0 + 3.0) + (0.25 + 0.5) if facts["selection"] == "cnn-entropy" else 0.0
        assert row["total_seconds"].item() == pytest.approx(overhead + facts["seconds"])
        assert row["test_error"].item() == facts["test_error"]
        # The final epoch's training accuracy, from the history.csv beside metrics.json (the verdict reads it).
        assert row["train_accuracy"].item() == pytest.approx(pd.read_csv(Path(path).with_name("history.csv"))["train_accuracy"].iloc[-1])
    # A run whose history.csv is gone keeps its row; its training accuracy is unknown.
    Path(experiment["targets"][0]).with_name("history.csv").rename(tmp_path / "kept.csv")
    try:
        again = write_run_table(target_metrics=experiment["targets"], proxy_metrics=experiment["proxies"],
                                score_files=experiment["scores"], out=tmp_path / "runs2.csv")
    finally:
        (tmp_path / "kept.csv").rename(Path(experiment["targets"][0]).with_name("history.csv"))
    assert again["train_accuracy"].isna().sum() == 1


def test_error_cells_read_like_the_paper():
    assert format_error(6.5213, 0.2071) == "6.52 +- 0.21"
    assert format_error(4.28, float("nan")) == "4.28"  # one run: no spread to show


def _is_png(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_figure_is_written(experiment, tmp_path):
    root = experiment["root"]
    figures.write_summary_figures(summary_file=root / "summary.csv", error_out=tmp_path / "error.png", time_out=tmp_path / "time.svg")
    figures.write_learning_curves(metrics_files=experiment["proxies"] + experiment["targets"], out=tmp_path / "curves.png")
    write_run_table(target_metrics=experiment["targets"], proxy_metrics=experiment["proxies"],
                    score_files=experiment["scores"], out=tmp_path / "runs.csv")
    figures.write_error_vs_time(runs_file=tmp_path / "runs.csv", out=tmp_path / "error_vs_time.png")
    for name in ("error.png", "curves.png", "error_vs_time.png"):
        assert _is_png(tmp_path / name), name
    assert (tmp_path / "time.svg").read_text().lstrip().startswith("<?xml") and (tmp_path / "time.svg").stat().st_size > 1000


def _score_file(path: Path, values: np.ndarray, **info) -> Path:
    frame = pd.DataFrame({"index": np.arange(len(values)), "label": np.zeros(len(values), dtype=int), "entropy": values})
    write_parquet(frame, path, info)
    return path


def test_identical_orders_correlate_1_and_reversed_orders_minus_1(tmp_path):
    values = np.random.default_rng(1).random(2000)
    proxy_files = [_score_file(tmp_path / f"p{seed}.parquet", values, proxy="cnn", seed=seed) for seed in (0, 1)]
    target_file = _score_file(tmp_path / "t0.parquet", -values, target="net", seed=0)
    matrices = write_correlation(metric="entropy", proxy_score_files=proxy_files, target_score_files=[target_file],
                                 csv_out=tmp_path / "c.csv", figure_out=tmp_path / "c.png")
    for method in ("spearman", "pearson"):
        matrix = matrices[method]
        assert list(matrix.columns) == ["cnn seed0", "cnn seed1", "cnn combined", "net seed0", "random"]
        assert matrix.loc["cnn seed0", "cnn seed1"] == pytest.approx(1.0)
        assert matrix.loc["cnn combined", "cnn seed1"] == pytest.approx(1.0)
        assert matrix.loc["cnn seed0", "net seed0"] == pytest.approx(-1.0)
        assert abs(matrix.loc["cnn seed0", "random"]) < 0.1
        assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T) and np.allclose(np.diag(matrix), 1.0)
    written = pd.read_csv(tmp_path / "c.csv")
    assert set(written["method"]) == {"spearman", "pearson"} and len(written) == 10
    assert _is_png(tmp_path / "c.png")


def test_correlation_uses_the_rank_combination_that_selection_used(tmp_path):
    rng = np.random.default_rng(2)
    files = [_score_file(tmp_path / f"p{seed}.parquet", rng.random(300), proxy="cnn", seed=seed) for seed in (0, 1, 2)]
    ranked = rank_runs(score_files=files, metric="entropy", ranks_out=tmp_path / "ranks.parquet")
    scores, ranks = load_orders("entropy", files, [])
    np.testing.assert_array_equal(ranks["cnn combined"], ranked["rank"])
    np.testing.assert_allclose(scores["cnn combined"], ranked["score_mean"])
    for seed in (0, 1, 2):
        np.testing.assert_array_equal(ranks[f"cnn seed{seed}"], ranked[f"rank_seed{seed}"])
    spearman = correlation_matrices(scores, ranks)["spearman"]
    # A rank combination agrees with each of its runs more than the runs agree with each other.
    assert spearman.loc["cnn combined", "cnn seed0"] > spearman.loc["cnn seed1", "cnn seed0"]


def test_budget_matched_schedule_scales_every_piece_by_the_fraction():
    paper = {"batch_size": 128, "lr_schedule": [{"epochs": 1, "lr": 0.01}, {"epochs": 90, "lr": 0.1},
                                                {"epochs": 45, "lr": 0.01}, {"epochs": 45, "lr": 0.001}]}
    scaled = plan.budget_training(paper, 0.4)
    assert [p["epochs"] for p in scaled["lr_schedule"]] == [1, 36, 18, 18]  # the 1-epoch warm-up survives
    assert [p["lr"] for p in scaled["lr_schedule"]] == [0.01, 0.1, 0.01, 0.001] and scaled["batch_size"] == 128
    assert [p["epochs"] for p in plan.budget_training({"lr_schedule": [{"epochs": 3, "lr": 0.1}]}, 0.5)["lr_schedule"]] == [2]
    assert paper["lr_schedule"][1]["epochs"] == 90  # the config is not changed
    assert plan.budget_runs(CONFIG) == []  # off by default
    runs = plan.budget_runs({**CONFIG, "report": {"budget_matched": True}})
    assert {(r["fraction"], r["seed"]) for r in runs} == {(f, s) for f in ("0.4", "0.8") for s in (0, 1, 2)}
    assert {r["selection"] for r in runs} == {plan.BUDGET}


TINY = {
    "experiment": "tiny_report",
    "dataset": {"name": "digits"},
    "proxies": {"cnn": {"model": "small_cnn", "seeds": [0], "training": {"batch_size": 128, "lr_schedule": [{"epochs": 2, "lr": 0.05}]}}},
    "targets": {"net": {"model": "small_cnn", "seeds": [0], "training": {"batch_size": 128, "lr_schedule": [{"epochs": 2, "lr": 0.05}]}}},
    "selection": {"metrics": ["entropy"], "fractions": [0.5, 1.0], "class_balanced": True, "random": False},
    "report": {"budget_matched": True},
}


@pytest.mark.workflow
def test_snakemake_report_holds_every_table_and_figure(tmp_path):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    options = ["--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "2",
               "--resources", "gpu=1", "--configfile", str(tmp_path / "tiny.yaml")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for targets in ([], ["--report", str(tmp_path / "report.html")]):
        # Targets first: --configfile and --resources would swallow what follows them.
        result = subprocess.run([sys.executable, "-m", "snakemake", *targets, *options], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
    results = tmp_path / "results/tiny_report"
    table = pd.read_csv(results / "report/results.csv", keep_default_na=False).set_index("selection")
    assert list(table.index) == ["cnn-entropy", "budget", "full"]
    budget = json.loads((results / "targets/net/budget/0.5/seed0/metrics.json").read_text())
    assert budget["epochs"] == 1 and budget["n_train"] == json.loads((results / "data/manifest.json").read_text())["n_train"]
    correlation = pd.read_csv(results / "report/correlation/entropy.csv")
    assert "net seed0" in correlation.columns  # the full-data target's own order is compared
    page = (tmp_path / "report.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html") and len(page) > 100_000
    subsets = pd.read_csv(results / "report/subsets.csv", keep_default_na=False)
    assert list(subsets["subset"]) == ["cnn-entropy", "full"] and subsets["jaccard"].tolist() == ["", ""]  # one proxy seed
    assert "| proxy error % |" in (results / "report/results.md").read_text()
    for name in ("results.html", "results.csv", "runs.csv", "error_vs_fraction.png", "time_vs_fraction.png",
                 "error_vs_time.png", "learning_curves.png", "entropy.png", "entropy.csv", "subsets.html",
                 "class_composition.png", "verdict.html", "verdict.csv"):
        assert name in page, name
    # No validation split here: the verdict, first in the report, says how to get one and guesses nothing.
    assert '"0. Verdict"' in page and "This run held out no validation split" in page
    verdict = (results / "report/verdict.txt").read_text()
    assert verdict.startswith("No verdict: it chooses by the error on a validation split") and "validation: 0.1" in verdict


def test_one_renderer_writes_every_table():
    """Markdown and HTML of the same rows: escaped, marked cells bold or shaded, and no other
    module of the report writes a table of its own."""
    from svp.report.render import html_table, markdown_table

    rows = [["a <b>", ("0.1", True)], ["c", "2"]]
    assert markdown_table(["name", "share"], rows) == "| name | share |\n|---|---|\n| a <b> | **0.1** |\n| c | 2 |"
    assert html_table(["name", "share"], rows) == (
        "<table><tr><th>name</th><th>share</th></tr><tr><td>a &lt;b&gt;</td><td class=low>0.1</td></tr>"
        "<tr><td>c</td><td>2</td></tr></table>"
    )
    svp = Path(__file__).resolve().parents[1] / "svp"
    writers = sorted(
        str(path.relative_to(svp)) for path in svp.rglob("*.py")
        if path.name != "render.py" and ('"---|"' in path.read_text() or "<table>" in path.read_text())
    )  # fmt: skip
    assert writers == [], f"{writers} render tables themselves; use svp.report.render"
