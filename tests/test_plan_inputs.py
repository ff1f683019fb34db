"""What the rules' jobs are given (svp.workflow_inputs) and which runs and files a config
implies (svp.plan), without Snakemake.

The strings are the rules' params, Snakemake's rerun trigger: each is checked in its exact
form, since a change in any of them reruns every job it belongs to. The run facts are
checked against the reader of metrics.json (svp.stage_files), through real files.
"""

import json
from types import SimpleNamespace

import pytest

from svp import plan, workflow_inputs
from svp.config import validate_config
from svp.io import write_json
from svp.report.summary import load_runs

CONFIG = validate_config(
    {
        "experiment": "inputs",
        "dataset": {"name": "digits"},
        "proxies": {
            "cnn": {"model": "small_cnn", "seeds": [0, 1], "training": {"lr_schedule": [{"epochs": 4, "lr": 0.1}]}},
            "tiny": {"model": "small_cnn", "seeds": [3]},
        },
        "targets": {
            "net": {"model": "preact_resnet8", "seeds": [0, 2], "training": {"lr_schedule": [{"epochs": 1, "lr": 0.01}, {"epochs": 9, "lr": 0.1}]}},
            "big": {"model": "preact_resnet20", "seeds": [2]},
        },
        "selection": {"metrics": ["entropy", "margin"], "fractions": [0.5, 0.25, 1.0]},
        "report": {"budget_matched": True},
    }
)
SETTINGS = workflow_inputs.JobSettings(CONFIG)


def wildcards(**values):
    """A job's wildcards as Snakemake hands them to a function: strings, read as attributes."""
    return SimpleNamespace(**{name: str(value) for name, value in values.items()})


def test_proxy_settings_are_the_configs_own():
    job = wildcards(proxy="cnn", seed=1)
    assert SETTINGS.proxy_model(job) == "small_cnn"
    assert json.loads(SETTINGS.proxy_training(job)) == CONFIG["proxies"]["cnn"]["training"]
    assert SETTINGS.proxy_info(job) == '{"role": "proxy", "proxy": "cnn", "seed": 1}'


def test_target_info_names_the_proxy_and_metric_of_its_selection():
    proxy_run = wildcards(target="net", selection="cnn-entropy", fraction="0.25", seed=2)
    assert SETTINGS.target_model(proxy_run) == "preact_resnet8"
    assert SETTINGS.target_info(proxy_run) == (
        '{"role": "target", "target": "net", "selection": "cnn-entropy", "proxy": "cnn", '
        '"metric": "entropy", "fraction": 0.25, "seed": 2}'
    )
    for selection, fraction in [("random", "0.5"), ("full", "1.0")]:
        info = json.loads(SETTINGS.target_info(wildcards(target="big", selection=selection, fraction=fraction, seed=2)))
        assert (info["proxy"], info["metric"], info["fraction"]) == (None, None, float(fraction))


def test_budget_runs_scale_the_schedule_and_say_they_are_budget_runs():
    job = wildcards(target="net", fraction="0.25", seed=0)
    assert json.loads(SETTINGS.budget_training(job))["lr_schedule"] == [{"epochs": 1, "lr": 0.01}, {"epochs": 2, "lr": 0.1}]
    assert SETTINGS.budget_info(job) == (
        '{"role": "target", "target": "net", "selection": "budget", "proxy": null, '
        '"metric": null, "fraction": 0.25, "seed": 0}'
    )
    assert SETTINGS.target_score_info(wildcards(target="big", seed=2)) == '{"role": "target", "target": "big", "seed": 2}'


def test_run_facts_are_what_the_summary_reads_from_metrics_json(tmp_path):
    target = workflow_inputs.target_run_facts("net", "tiny-margin", "0.5", "2")
    proxy = workflow_inputs.proxy_run_facts("tiny", "3")
    for name, facts in [("target", target), ("proxy", proxy)]:
        write_json(tmp_path / f"{name}.json", {**facts, "test_error": 10.0, "test_accuracy": 90.0, "n_train": 100, "epochs": 1, "seconds": 2.5})
    targets = load_runs([tmp_path / "target.json"], "target")
    assert targets.iloc[0][["target", "selection", "proxy", "metric", "fraction", "seed"]].tolist() == ["net", "tiny-margin", "tiny", "margin", 0.5, 2]
    assert load_runs([tmp_path / "proxy.json"], "proxy").iloc[0].tolist() == ["tiny", 3, 2.5]


def test_a_subset_comes_from_its_ranking_or_its_random_seed():
    ranks = "results/x/ranks/{proxy}-{metric}.parquet"
    assert workflow_inputs.subset_source("cnn-margin", ranks) == {"ranks": "results/x/ranks/cnn-margin.parquet"}
    assert workflow_inputs.subset_source("random-7", ranks) == {}
    labels = "results/my run/data/train.npz"  # a space: the options are shell-quoted
    assert workflow_inputs.subset_source_args("cnn-margin", "results/my run/ranks/cnn-margin.parquet", labels) == (
        "--ranks 'results/my run/ranks/cnn-margin.parquet' --data 'results/my run/data'"
    )
    assert workflow_inputs.subset_source_args("random-7", None, labels) == "--random-seed 7 --data 'results/my run/data'"


def test_a_target_trains_on_its_selections_subset_and_the_baseline_on_all_data():
    subsets = "results/x/subsets/{subset}/{fraction}.parquet"
    assert workflow_inputs.target_subset("cnn-entropy", "0.5", "2", subsets) == {"subset": "results/x/subsets/cnn-entropy/0.5.parquet"}
    assert workflow_inputs.target_subset("random", "0.5", "2", subsets) == {"subset": "results/x/subsets/random-2/0.5.parquet"}
    assert workflow_inputs.target_subset("full", "1.0", "2", subsets) == {}
    assert workflow_inputs.subset_args("a b/0.5.parquet") == "--subset 'a b/0.5.parquet'"
    assert workflow_inputs.subset_args(None) == ""


def test_the_runs_and_files_a_config_implies():
    assert len(plan.target_runs(CONFIG)) == 3 * (1 + 2 * 2 * 2 + 2)  # target seeds x (full + 2 proxies x 2 metrics x 2 fractions + random x 2)
    assert plan.full_target_runs(CONFIG) == [
        {"target": "net", "selection": "full", "fraction": "1.0", "seed": 0},
        {"target": "net", "selection": "full", "fraction": "1.0", "seed": 2},
        {"target": "big", "selection": "full", "fraction": "1.0", "seed": 2},
    ]
    assert plan.selecting_proxy_runs(CONFIG) == [{"proxy": "cnn", "seed": 0}, {"proxy": "cnn", "seed": 1}, {"proxy": "tiny", "seed": 3}]
    assert plan.rankings(CONFIG) == [
        {"proxy": "cnn", "metric": "entropy"}, {"proxy": "cnn", "metric": "margin"},
        {"proxy": "tiny", "metric": "entropy"}, {"proxy": "tiny", "metric": "margin"},
    ]
    # Targets sharing a seed share its random subset: each subset is made once.
    subsets = plan.target_subsets(CONFIG)
    assert len(subsets) == len({tuple(s.values()) for s in subsets}) == (4 + 2) * 2  # (4 proxy selections + random-0, random-2) x 2 fractions
    assert subsets[:3] == [
        {"subset": "cnn-entropy", "fraction": "0.25"}, {"subset": "cnn-entropy", "fraction": "0.5"}, {"subset": "cnn-margin", "fraction": "0.25"},
    ]
    assert {"subset": "random-2", "fraction": "0.5"} in subsets and {"subset": "random-1", "fraction": "0.5"} not in subsets


def test_file_lists_fill_a_rules_path_pattern():
    pattern = "r/targets/{target}/{selection}/{fraction}/seed{seed}/metrics.json"
    assert workflow_inputs.run_files(pattern, plan.budget_runs(CONFIG))[:2] == [
        "r/targets/net/budget/0.25/seed0/metrics.json", "r/targets/net/budget/0.5/seed0/metrics.json",
    ]
    assert workflow_inputs.history_files(["r/proxies/cnn/seed0/metrics.json"]) == ["r/proxies/cnn/seed0/history.csv"]


@pytest.mark.parametrize("configfiles, expected", [
    ([], "snakemake --report results/x/report.html --cores 1"),
    (["my configs/a.yaml"], "snakemake --report results/x/report.html --cores 1 --configfile 'my configs/a.yaml'"),
])
def test_report_command_repeats_the_config_files(configfiles, expected):
    assert workflow_inputs.report_command("results/x", configfiles) == expected


def test_each_metric_is_read_from_its_own_score_files():
    runs = [{"proxy": "cnn", "seed": 0}, {"proxy": "cnn", "seed": 1}]
    scores, method = "s/{proxy}/seed{seed}.parquet", "s/{proxy}/seed{seed}-{method}.parquet"
    assert workflow_inputs.score_files("entropy", runs, scores, method) == ["s/cnn/seed0.parquet", "s/cnn/seed1.parquet"]
    assert workflow_inputs.score_files("grand", runs, scores, method) == ["s/cnn/seed0-grand.parquet", "s/cnn/seed1-grand.parquet"]
    assert plan.method_runs(CONFIG) == []  # uncertainty metrics only: no method jobs
    config = {**CONFIG, "selection": {**CONFIG["selection"], "metrics": ["entropy", "kcenter"]}}
    assert plan.selection_methods(config) == ["kcenter"]
    assert plan.method_runs(config) == [{**run, "method": "kcenter"} for run in plan.selecting_proxy_runs(config)]
    assert [run["target"] for run in plan.target_method_runs(config, "kcenter")] == ["net", "net", "big"]


def test_a_run_on_several_gpus_claims_them_and_trains_as_that_many_processes():
    config = validate_config({**{k: CONFIG[k] for k in ("experiment", "proxies")}, "dataset": {"name": "digits"},
                              "targets": {"net": {"model": "preact_resnet8", "gpus": 4}}})
    settings = workflow_inputs.JobSettings(config)
    assert settings.target_gpus(wildcards(target="net")) == 4
    assert SETTINGS.target_gpus(wildcards(target="big")) == SETTINGS.proxy_gpus(wildcards(proxy="cnn")) == 1
    assert "gpus" not in config["proxies"]["cnn"]  # left out, configs resolve as before
    assert [workflow_inputs.processes_args(gpus) for gpus in (0, 1, 2, 8)] == ["", "", "--processes 2", "--processes 8"]
    assert workflow_inputs.capped_gpus_message("targets.net", 4, 1) == (
        "config key 'targets.net.gpus' is 4, but --resources gpu=1 gives a job at most 1: its runs train on 1 GPU. "
        "Run with --resources gpu=4 (or more) to train them on 4"
    )
