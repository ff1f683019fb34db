"""The whole DAG through Snakemake on a small real text slice (IMDB): fastText proxies and a
VDCNN target, with the same rules and file names as the image experiments."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
IMDB = REPO.parent / "shared" / "data" / "imdb"

CONFIG = {
    "experiment": "text",
    "dataset": {
        "name": "text_csv",
        "train": [str(IMDB / "train.csv.gz")],
        "test": [str(IMDB / "test.csv.gz")],
        "classes": {0: "negative", 1: "positive"},
        "train_rows": 200,
        "test_rows": 100,
    },
    "proxies": {
        "ft": {
            "model": "fasttext",
            "seeds": [0, 1],
            "training": {"lr_schedule": [{"epochs": 5, "lr": 0.5}], "fasttext": {"bucket": 100_000}},
        }
    },
    "targets": {
        "vdcnn": {
            "model": "vdcnn9",
            "seeds": [0],
            "training": {"lr_schedule": [{"epochs": 1, "lr": 0.01}], "batch_size": 50, "text_length": 64, "eval_every": 0},
        }
    },
    "selection": {"metrics": ["entropy"], "fractions": [0.5, 1.0]},
}
RESULTS = "results/text"

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.shared_data(IMDB / "train.csv.gz", IMDB / "test.csv.gz"),
]


def snakemake(workdir: Path, *args: str, config: dict = CONFIG) -> subprocess.CompletedProcess:
    (workdir / "text.yaml").write_text(yaml.safe_dump(config))
    command = [
        # Targets and options taking several values first, --configfile last (see test_workflow.py).
        sys.executable, "-m", "snakemake", *args, "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--cores", "2", "--resources", "gpu=1", "--configfile", str(workdir / "text.yaml"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    lines = (result.stdout + result.stderr).splitlines()
    return {line.split()[1].rstrip(":") for line in lines if line.startswith(("rule ", "localrule "))}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("text_workflow")
    return workdir, snakemake(workdir)


def test_text_experiment_runs_every_stage(finished_run):
    workdir, result = finished_run
    results = workdir / RESULTS
    manifest = json.loads((results / "data/manifest.json").read_text())
    assert manifest["modality"] == "text" and manifest["n_train"] == 200 and manifest["classes"] == ["negative", "positive"]
    half = int(np.floor(0.5 * 200 + 0.5))
    for seed in (0, 1):
        scores = pd.read_parquet(results / f"scores/ft/seed{seed}.parquet")
        assert scores["index"].tolist() == list(range(200)) and scores["entropy"].between(0, np.log(2) + 1e-9).all()
        metrics = json.loads((results / f"proxies/ft/seed{seed}/metrics.json").read_text())
        assert metrics["model"] == "fasttext" and metrics["seconds"] > 0 and metrics["epochs"] == 5
    ranks = pd.read_parquet(results / "ranks/ft-entropy.parquet")
    assert sorted(ranks["rank"]) == list(range(200)) and {"rank_seed0", "rank_seed1"} <= set(ranks.columns)
    assert len(pd.read_parquet(results / "subsets/ft-entropy/0.5.parquet")) == half
    for selection, fraction, n_train in [("full", "1.0", 200), ("ft-entropy", "0.5", half), ("random", "0.5", half)]:
        run = results / f"targets/vdcnn/{selection}/{fraction}/seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["model"] == "vdcnn9" and metrics["n_train"] == n_train and metrics["epochs"] == 1
        assert (run / "model.pt").exists() and (run / "history.csv").exists()
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["selection"]) == {"full", "ft-entropy", "random"}
    svp_row = summary[summary["selection"] == "ft-entropy"].iloc[0]
    assert svp_row["proxy_seconds"] > 0 and svp_row["scoring_seconds"] > 0
    assert "speedup" in result.stdout + result.stderr
    assert not list(results.rglob("*.tmp")) and not list(results.rglob(".fasttext-*"))


def test_a_fasttext_setting_reruns_the_proxy_not_the_data(finished_run):
    workdir, _ = finished_run
    changed = json.loads(json.dumps(CONFIG))
    changed["proxies"]["ft"]["training"]["fasttext"]["dim"] = 20
    planned = planned_rules(snakemake(workdir, "--dry-run", config=changed))
    assert "prepare_data" not in planned
    assert {"train_proxy", "score_examples", "rank_examples", "select_subset", "train_target"} <= planned
