"""The whole DAG through Snakemake on a tiny real config (scikit-learn digits)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from svp.parquet import read_parquet_metadata

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "experiment": "tiny",
    "dataset": {"name": "digits"},
    "proxies": {"cnn": {"model": "small_cnn", "seeds": [0, 1], "training": {"batch_size": 64, "lr_schedule": [{"epochs": 2, "lr": 0.05}]}}},
    "targets": {"net": {"model": "preact_resnet8", "seeds": [0], "training": {"batch_size": 64, "lr_schedule": [{"epochs": 2, "lr": 0.05}]}}},
    "selection": {"metrics": ["entropy", "margin"], "fractions": [0.5, 1.0], "class_balanced": True},
}
RESULTS = "results/tiny"

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, config: dict = TINY, repo: Path = REPO) -> subprocess.CompletedProcess:
    """Run the workflow of ``repo`` (its Snakefile, with its svp package) on ``config``."""
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    command = [
        # Targets and options taking several values come first: --configfile and
        # --resources would swallow a target named after them.
        sys.executable, "-m", "snakemake", *args, "--snakefile", str(repo / "Snakefile"),
        "--directory", str(workdir), "--cores", "2", "--resources", "gpu=1", "--configfile", str(workdir / "tiny.yaml"),
    ]
    # cwd: `python -m` puts the working folder first on sys.path, ahead of PYTHONPATH.
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env={**os.environ, "PYTHONPATH": str(repo)})
    if result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def planned_rules(result: subprocess.CompletedProcess) -> set[str]:
    """Rule names of the jobs a (dry) run lists."""
    return {line.split()[1].rstrip(":") for line in (result.stdout + result.stderr).splitlines() if line.startswith(("rule ", "localrule "))}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake(workdir)
    return workdir, result


def test_every_stage_writes_its_outputs(finished_run):
    workdir, result = finished_run
    results = workdir / RESULTS
    manifest = json.loads((results / "data/manifest.json").read_text())
    n_train = manifest["n_train"]
    for seed in (0, 1):
        scores = pd.read_parquet(results / f"scores/cnn/seed{seed}.parquet")
        assert len(scores) == n_train and scores["index"].tolist() == list(range(n_train))
        assert {"label", "prediction", "least_confidence", "margin", "entropy"} <= set(scores.columns)
        assert (results / f"proxies/cnn/seed{seed}/history.csv").exists()
    for metric in ("entropy", "margin"):
        ranks = pd.read_parquet(results / f"ranks/cnn-{metric}.parquet")
        assert sorted(ranks["rank"]) == list(range(n_train))
        assert {"rank_seed0", "rank_seed1"} <= set(ranks.columns)
        subset = pd.read_parquet(results / f"subsets/cnn-{metric}/0.5.parquet")
        assert len(subset) == int(np.floor(0.5 * n_train + 0.5)) and subset["index"].is_unique
    assert len(pd.read_parquet(results / "subsets/random-0/0.5.parquet")) == int(np.floor(0.5 * n_train + 0.5))
    for selection, fraction in [("full", "1.0"), ("cnn-entropy", "0.5"), ("cnn-margin", "0.5"), ("random", "0.5")]:
        metrics = json.loads((results / f"targets/net/{selection}/{fraction}/seed0/metrics.json").read_text())
        assert 0 <= metrics["test_error"] <= 100 and metrics["test_accuracy"] == pytest.approx(100 - metrics["test_error"])
        assert metrics["n_train"] == (n_train if selection == "full" else int(np.floor(0.5 * n_train + 0.5)))
        assert metrics["epochs"] == 2 and metrics["seconds"] > 0
        assert (results / f"targets/net/{selection}/{fraction}/seed0/model.pt").exists()
    summary = pd.read_csv(results / "summary.csv")
    assert set(summary["selection"]) == {"full", "cnn-entropy", "cnn-margin", "random"}
    full = summary[summary["selection"] == "full"].iloc[0]
    assert full["speedup"] == pytest.approx(1.0)
    svp_row = summary[summary["selection"] == "cnn-entropy"].iloc[0]
    assert svp_row["proxy_seconds"] > 0 and svp_row["scoring_seconds"] > 0
    assert svp_row["total_seconds"] == pytest.approx(svp_row["proxy_seconds"] + svp_row["scoring_seconds"] + svp_row["target_seconds"], rel=1e-4)
    stored = yaml.safe_load((results / "config.yaml").read_text())
    assert stored["selection"]["class_balanced"] is True and stored["scoring"]["batch_size"] == 1024
    subsets = pd.read_csv(results / "report/subsets.csv", keep_default_na=False).set_index("subset")
    assert list(subsets.index) == ["cnn-entropy", "cnn-margin", "random-0", "full"]
    assert (subsets.loc["cnn-entropy", "proxy_runs"], subsets.loc["cnn-entropy", "warning"]) == (2, "")  # class-balanced
    assert 0 <= float(subsets.loc["cnn-entropy", "jaccard"]) <= 1 and subsets.loc["random-0", "jaccard"] == ""
    stored = read_parquet_metadata(results / "subsets/cnn-entropy/0.5.parquet")["diagnostics"]
    assert sum(stored["class_counts"]) == subsets.loc["cnn-entropy", "n_examples"] and stored["min_ratio"] > 0.9
    assert (results / "report/class_composition.png").stat().st_size > 1000
    assert "speedup" in result.stdout + result.stderr  # the summary table is printed at the end
    assert not list(results.rglob("*.tmp"))
    assert (results / "summary.csv").stat().st_mode & 0o044  # readable by others, like any new file


def test_second_run_has_nothing_to_do(finished_run):
    workdir, _ = finished_run
    result = snakemake(workdir)
    assert "Nothing to be done" in result.stdout + result.stderr


def test_one_stage_reruns_alone(finished_run):
    workdir, _ = finished_run
    ranks = workdir / RESULTS / "ranks/cnn-entropy.parquet"
    summary = workdir / RESULTS / "summary.csv"
    ranks_before, summary_before = ranks.stat().st_mtime_ns, summary.stat().st_mtime_ns
    result = snakemake(workdir, str(ranks.relative_to(workdir)), "--forcerun", "rank_examples")
    assert planned_rules(result) == {"rank_examples"}
    assert ranks.stat().st_mtime_ns > ranks_before and summary.stat().st_mtime_ns == summary_before
    # The new ranks equal the old ones, so nothing downstream is out of date...
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snakemake(workdir, "--dry-run"))
    # ...and forcing the stage without naming a file takes everything after it along.
    dry = snakemake(workdir, "--dry-run", "--forcerun", "rank_examples")
    assert planned_rules(dry) == {
        "rank_examples", "select_subset", "train_target", "summarize", "all",
        # the report's tables and figures follow the target runs and the summary
        "tabulate_runs", "tabulate_results", "plot_summary", "plot_error_vs_time", "plot_learning_curves",
        # and the subsets' diagnostics follow the subsets and ranks
        "tabulate_subsets", "plot_class_composition",
        # and the verdict follows the runs and the subsets
        "write_verdict",
    }


def test_changing_a_proxy_setting_reruns_the_proxy_and_what_follows_not_the_data(finished_run):
    workdir, _ = finished_run
    changed = json.loads(json.dumps(TINY))
    changed["proxies"]["cnn"]["training"]["lr_schedule"] = [{"epochs": 2, "lr": 0.02}]
    dry = snakemake(workdir, "--dry-run", config=changed)
    assert "prepare_data" not in planned_rules(dry)
    assert {"train_proxy", "score_examples", "rank_examples", "select_subset", "train_target", "summarize"} <= planned_rules(dry)


def test_a_validation_split_is_part_of_the_data_and_reruns_what_reads_it(finished_run):
    workdir, _ = finished_run
    changed = json.loads(json.dumps(TINY))
    changed["dataset"]["validation"] = 0.1
    dry = snakemake(workdir, "--dry-run", config=changed)
    # Every stage reads the training set the split changes.
    assert {"prepare_data", "train_proxy", "score_examples", "rank_examples", "select_subset", "train_target", "summarize"} <= planned_rules(dry)
    assert "Params have changed since last execution" in dry.stdout + dry.stderr


def test_a_new_svp_version_reruns_every_stage(finished_run, tmp_path):
    """svp.__version__ is a params entry of every stage, since Snakemake does not see code
    inside the package: bumping it (README: when outputs change) reruns them all."""
    workdir, _ = finished_run
    # A copy of the workflow and package with another version (Snakemake imports svp from
    # beside the Snakefile first).
    for part in ("svp", "workflow"):
        shutil.copytree(REPO / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "Snakefile", tmp_path / "Snakefile")
    init = tmp_path / "svp" / "__init__.py"
    init.write_text(re.sub(r'__version__ = "[^"]*"', '__version__ = "999.0"', init.read_text()))
    dry = snakemake(workdir, "--dry-run", repo=tmp_path)
    # All but store_config, which writes the config as it is, whatever the version.
    assert planned_rules(dry) == planned_rules(snakemake(workdir, "--dry-run", "--forceall")) - {"store_config"}
    assert "Params have changed since last execution" in dry.stdout + dry.stderr


def test_a_target_on_two_gpus_is_planned_as_one_job_of_two_processes(tmp_path):
    """Where jobs get GPUs (here nvidia-smi answers with two), a target with `gpus: 2` is one
    job claiming gpu=2 whose command starts two processes (`svp train --processes 2`: torchrun);
    its proxy keeps one GPU. `--resources gpu=1` lowers the job to one GPU, and says so."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Fake (UUID: GPU-0)'\necho 'GPU 1: Fake (UUID: GPU-1)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    config = json.loads(json.dumps(TINY))
    config["targets"]["net"]["gpus"] = 2
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))

    def dry_run(gpus: int, path: str) -> str:
        command = [
            sys.executable, "-m", "snakemake", "--dry-run", "--printshellcmds", "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(tmp_path), "--cores", "2", "--resources", f"gpu={gpus}", "--configfile", str(tmp_path / "tiny.yaml"),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": path}
        result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    def jobs(output: str, rule: str) -> list[tuple[str, str]]:
        """(resources, shell command) of each planned job of ``rule``."""
        found = re.findall(rf"^rule {rule}:\n(?:    .*\n)*?    resources: (.*)\n(?:.*\n)*?Shell command: (.*)$", output, flags=re.M)
        assert found, output[-3000:]
        return found

    output = dry_run(2, f"{fake}{os.pathsep}{os.environ['PATH']}")
    for resources, command in jobs(output, "train_target"):
        assert "gpu=2" in resources and command.startswith("svp train ") and " --threads 2 --processes 2 >" in command
    for resources, command in jobs(output, "train_proxy"):
        assert "gpu=1" in resources and "--processes" not in command
    assert "warning" not in output

    capped = dry_run(1, f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert all("gpu=1" in resources and "--processes" not in command for resources, command in jobs(capped, "train_target"))
    assert "warning: config key 'targets.net.gpus' is 2, but --resources gpu=1 gives a job at most 1" in capped

    # No GPU on this machine (as on CI): one process, no GPU claimed, and nothing to warn about.
    without = dry_run(1, os.environ["PATH"]) if shutil.which("nvidia-smi") is None else None
    if without is not None:
        assert all("gpu=0" in resources and "--processes" not in command for resources, command in jobs(without, "train_target"))
        assert "warning" not in without
