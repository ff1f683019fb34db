"""The whole DAG through Snakemake on images read from disk: a tiny synthetic ImageNet-layout
tree with a validation split, an svp proxy and a torchvision target, subsets, the summary
and the report."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from test_workflow import snakemake

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from imagenet_tree import make_tree  # noqa: E402

pytestmark = pytest.mark.workflow

SHORT = {"batch_size": 16, "lr_schedule": [{"epochs": 1, "lr": 0.05}], "eval_batch_size": 64}


def test_the_dag_runs_on_imagenet_read_from_disk(tmp_path, monkeypatch):
    make_tree(tmp_path / "imagenet", classes=3, train_per_class=12, val_per_class=3, min_side=24, max_side=64)
    config = {
        "experiment": "tiny",
        # 3 of each class's 12 training images held out: 27 to score and select from.
        "dataset": {"name": "imagenet", "path": str(tmp_path / "imagenet"), "image_size": 16, "validation": 0.25},
        "proxies": {"cnn": {"model": "small_cnn", "training": SHORT}},
        "targets": {"r18": {"model": "torchvision/resnet18", "training": SHORT}},
        "selection": {"metrics": ["entropy", "kcenter"], "fractions": [0.5, 1.0]},
        "scoring": {"batch_size": 64},
    }
    monkeypatch.setenv("SVP_LOADER_WORKERS", "1")
    snakemake(tmp_path, config=config)
    results = tmp_path / "results/tiny"
    manifest = json.loads((results / "data/manifest.json").read_text())
    assert manifest["storage"] == "disk" and (manifest["n_train"], manifest["n_validation"]) == (27, 9)
    assert len(pd.read_parquet(results / "scores/cnn/seed0.parquet")) == 27  # the held-out images are never scored
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["selection"]) == {"cnn-entropy", "cnn-kcenter", "random", "full"}
    assert summary["error_mean"].between(0, 100).all() and summary["validation_error_mean"].between(0, 100).all()
    for selection in ("cnn-entropy", "cnn-kcenter", "random"):
        metrics = json.loads((results / f"targets/r18/{selection}/0.5/seed0/metrics.json").read_text())
        assert metrics["n_train"] == 14 and metrics["model"] == "torchvision/resnet18"
        assert 0 <= metrics["validation_error"] <= 100
    report = results / "report"
    for name in ("results.md", "runs.csv", "subsets.md", "error_vs_fraction.png", "learning_curves.png", "class_composition.png"):
        assert (report / name).stat().st_size > 0, name
