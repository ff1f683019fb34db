"""The selection methods beyond uncertainty through the whole DAG (Snakemake, digits)."""

import copy

import numpy as np
import pandas as pd
import pytest

from svp.parquet import read_parquet_metadata
from test_workflow import RESULTS, TINY, planned_rules, snakemake

METHODS = ["forgetting", "grand", "kcenter"]
CONFIG = copy.deepcopy(TINY)
CONFIG["selection"] = {"metrics": METHODS, "fractions": [0.5, 1.0], "class_balanced": True, "random": False}

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("methods_workflow")
    return workdir, snakemake(workdir, config=CONFIG)


def test_methods_select_subsets_that_train_targets(methods_run):
    workdir, _ = methods_run
    results = workdir / RESULTS
    n_train = len(pd.read_parquet(results / "scores/cnn/seed0.parquet"))
    for method in METHODS:
        for seed in (0, 1):
            scores = pd.read_parquet(results / f"scores/cnn/seed{seed}-{method}.parquet")
            assert scores["index"].tolist() == list(range(n_train)) and np.isfinite(scores[method]).all()
            facts = read_parquet_metadata(results / f"scores/cnn/seed{seed}-{method}.parquet")
            assert (facts["method"], facts["proxy"], facts["seed"]) == (method, "cnn", seed)
        ranks = pd.read_parquet(results / f"ranks/cnn-{method}.parquet")
        assert sorted(ranks["rank"]) == list(range(n_train)) and {"rank_seed0", "rank_seed1"} <= set(ranks.columns)
        subset = pd.read_parquet(results / f"subsets/cnn-{method}/0.5.parquet")
        assert len(subset) == int(np.floor(0.5 * n_train + 0.5)) and subset["index"].is_unique
        assert (results / f"targets/net/cnn-{method}/0.5/seed0/metrics.json").exists()
        correlation = pd.read_csv(results / f"report/correlation/{method}.csv")
        # The proxies' runs and combination, the full-data target's own order, random.
        assert {"cnn seed0", "cnn seed1", "cnn combined", "net seed0", "random"} <= set(correlation["run"])
        assert (results / f"target_scores/net/seed0-{method}.parquet").exists()
    summary = pd.read_csv(results / "summary.csv").set_index("selection")
    assert set(summary.index) == {"full", *(f"cnn-{m}" for m in METHODS)}
    # Each method's selections pay for its own scoring; forgetting costs nothing beyond training.
    method_seconds = {
        m: sum(read_parquet_metadata(results / f"scores/cnn/seed{s}-{m}.parquet")["scoring_seconds"] for s in (0, 1))
        for m in METHODS
    }
    for method in METHODS:
        assert summary.loc[f"cnn-{method}", "scoring_seconds"] == pytest.approx(method_seconds[method], rel=1e-4)


def test_uncertainty_configs_plan_no_method_jobs(methods_run):
    workdir, _ = methods_run
    dry = snakemake(workdir, "--dry-run", "--forceall", config=TINY)
    assert not {"score_method", "score_target_method"} & planned_rules(dry)
