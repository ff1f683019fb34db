"""The workflow through workflow/profiles/slurm on a real one-node SLURM cluster.

A throw-away cluster (tests/slurm/cluster.py: slurmctld + slurmd, one fake GPU, state
under a temporary folder) runs the workflow's jobs as SLURM jobs; the results must equal
those of a local run of the same config, and a job that fails must fail the run with its
logs named. Installs Debian's SLURM with apt-get when it is missing (as CI does);
skipped only where that is impossible (not root, no apt-get).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from svp.data import prepare_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent / "slurm"))
from cluster import Cluster, ClusterUnavailable  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow/profiles/slurm"

# Every rule of the default target, each once: one proxy seed, one metric, one fraction
# (16 SLURM jobs). Each SLURM job starts Snakemake twice (the job step, then the job
# under srun) and waits for the executor's next status check, 15-30 s in all here;
# the 27 jobs of config/config.yaml, next to its local run, took over 10 minutes.
CONFIG = {
    "experiment": "slurm",
    "dataset": {"name": "digits"},
    "proxies": {"cnn": {"model": "small_cnn", "seeds": [0], "training": {"batch_size": 64, "lr_schedule": [{"epochs": 2, "lr": 0.05}]}}},
    "targets": {"net": {"model": "preact_resnet8", "seeds": [0], "training": {"batch_size": 64, "lr_schedule": [{"epochs": 2, "lr": 0.05}]}}},
    "selection": {"metrics": ["entropy"], "fractions": [0.5], "class_balanced": True, "random": False},
}
# A data set that cannot be prepared: no files and no download.
BROKEN = {**CONFIG, "experiment": "broken", "dataset": {"name": "cifar10", "root": "no-data", "download": False}}
# Training on the CPU is deterministic for a given seed and thread count: both runs
# give every training and scoring job the same number of threads (on the cluster the
# rules ask for `--cores`, and the profile's 4 would not fit this node's 2 CPUs either;
# a local run without GPUs gives them one thread unless --set-threads says otherwise).
THREADS = min(2, os.cpu_count() or 1)
TIMEOUT = 900  # seconds for any one run

pytestmark = pytest.mark.workflow


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


# How a rule declares a GPU: 1, `torch_gpus` (1 on a cluster), or a training rule's run's
# `gpus` (`proxy_gpus`, `target_gpus`, `selector_gpus`: 1 unless the config says more).
GPU_DECLARATION = r"^\s+gpu=(1|torch_gpus|proxy_gpus|target_gpus|selector_gpus),?$"


def gpu_rules() -> set[str]:
    """Rules that declare a GPU (GPU_DECLARATION), and the rules made from them with
    `use rule ... as ... with:` that keep their resources or declare their own."""
    rules, derived = set(), []
    for rules_file in (REPO / "workflow/rules").glob("*.smk"):
        text = rules_file.read_text()
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", text, flags=re.M):
            if re.search(GPU_DECLARATION, body, flags=re.M):
                rules.add(name)
        for parent, name, body in re.findall(r"^use rule (\w+) as (\w+) with:\n((?:[ \t]+.*\n|\n)*)", text, flags=re.M):
            own_resources = re.search(r"^\s+resources:", body, flags=re.M) is not None
            derived.append((parent, name, own_resources, re.search(GPU_DECLARATION, body, flags=re.M) is not None))
    for parent, name, own_resources, own_gpu in derived:
        if (parent in rules and not own_resources) or own_gpu:
            rules.add(name)
    return rules


def snakemake_command(workdir: Path, config: dict, *args: str, slurm: bool) -> list[str]:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    if slurm:
        # The profile as a user gets it; the options after it are what this cluster
        # needs (no accounting: poll with squeue, no account) and faster polling for
        # short jobs. --cores: the thread count of the local run.
        mode = [
            "--profile", str(PROFILE), "--slurm-status-command", "squeue", "--slurm-no-account",
            "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
        ]
    else:
        mode = ["--resources", "gpu=1", "--set-threads", *(f"{rule}={THREADS}" for rule in sorted(gpu_rules()))]
    # Targets and options taking several values come first: --configfile last.
    return [
        sys.executable, "-m", "snakemake", *args, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        *mode, "--cores", str(THREADS), "--configfile", str(workdir / "config.yaml"),
    ]  # fmt: skip


class Run:
    """One Snakemake run in a folder of its own, started now and waited for later."""

    def __init__(self, workdir: Path, config: dict, *targets: str, cluster: Cluster | None):
        self.workdir = workdir
        self.results = workdir / "results" / config["experiment"]
        env = {**(cluster.env if cluster else os.environ), "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            snakemake_command(workdir, config, *targets, slurm=cluster is not None),
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.output = None

    def wait(self) -> "Run":
        if self.output is None:
            try:
                self.output, _ = self.process.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.output, _ = self.process.communicate()
                raise AssertionError(f"snakemake still running after {TIMEOUT} s:\n{self.output[-6000:]}") from None
        return self

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("slurm-cluster"))
    try:
        cluster.start()
    except ClusterUnavailable as reason:
        pytest.skip(f"no SLURM test cluster: {reason}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def started(cluster, tmp_path_factory):
    """All three runs at once: SLURM runs spend most of their time waiting for the
    scheduler and for status checks, which the others fill."""
    began = time.monotonic()
    runs = {
        "slurm": Run(tmp_path_factory.mktemp("slurm-run"), CONFIG, cluster=cluster),
        "local": Run(tmp_path_factory.mktemp("local-run"), CONFIG, cluster=None),
        "broken": Run(tmp_path_factory.mktemp("broken-run"), BROKEN, "results/broken/data/manifest.json", cluster=cluster),
    }
    try:
        yield runs
    finally:
        for run in runs.values():
            run.stop()
        print(f"\nSLURM, local and failing runs: {time.monotonic() - began:.0f} s")


@pytest.fixture(scope="module")
def finished(started, cluster):
    slurm, local = started["slurm"].wait(), started["local"].wait()
    assert local.process.returncode == 0, f"local run failed:\n{local.output[-6000:]}"
    assert slurm.process.returncode == 0, f"SLURM run failed:\n{slurm.output[-6000:]}\n{cluster.logs()}"
    return slurm, local, cluster.jobs()


def test_the_profile_gives_every_gpu_rule_its_resources():
    assert {"train_proxy", "score_examples", "train_target"} <= gpu_rules()
    missing = gpu_rules() - set(profile()["set-resources"])
    assert not missing, f"add {sorted(missing)} to set-resources in workflow/profiles/slurm/config.yaml"
    assert profile()["executor"] == "slurm" and profile()["retries"] >= 1 and profile()["cores"] >= 1


def test_a_run_on_two_gpus_is_submitted_for_two_gpus_on_one_node(tmp_path):
    """Planning through the profile, without a cluster: SLURM's commands are stand-ins on PATH
    (sinfo names a default partition; sbatch writes down how it was called, then refuses, as
    a full cluster would). The full-data target of a `gpus: 2` target, its data prepared
    here, is submitted with `--gpus=2 --nodes=1` and trains as two processes."""
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch-calls.txt"
    bin_dir.mkdir()
    tools = {
        "sinfo": "echo PARTITION; echo 'gpu*'",
        "squeue": "exit 0",
        "sacct": "exit 1",
        "sbatch": f'printf "%s\\n" "$*" >> {record}; echo "sbatch: error: a stand-in" >&2; exit 1',
    }
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    config = json.loads(json.dumps(CONFIG))
    config["targets"]["net"]["gpus"] = 2
    prepare_dataset({"name": "digits"}, tmp_path / "results" / "slurm" / "data")
    target = "results/slurm/targets/net/full/1.0/seed0/metrics.json"
    command = snakemake_command(tmp_path, config, target, "--retries", "0", slurm=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and record.exists(), output[-6000:]
    calls = record.read_text().splitlines()
    assert len(calls) == 1 and "rule_train_target_wildcards_net_full_1.0_0" in calls[0], calls
    assert " --gpus=2 " in calls[0] and " --nodes=1 " in calls[0] and f" --cpus-per-task={THREADS} " in calls[0], calls[0]
    shell = re.search(r"^Shell command: (svp train .*)$", output, flags=re.M)
    assert shell and f"--threads {THREADS} --processes 2 >" in shell[1], output[-6000:]


def test_every_job_runs_as_a_slurm_job_gpu_rules_with_a_gpu(finished):
    slurm, _, jobs = finished
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", slurm.output)
    # Every job but those of `localrules` (`all`, at least), which run in the main process.
    remote = re.findall(r"^rule (\w+):$", slurm.output, flags=re.M)
    assert len(submitted) == len(remote) and "all" not in remote, slurm.output[-6000:]
    assert all(jobs[job]["JobState"] == "COMPLETED" for job in submitted), jobs
    rules = {job: re.match(r"rule_(\w+?)(_wildcards_|$)", jobs[job]["Comment"]).group(1) for job in submitted}
    for job, rule in rules.items():
        expected = {"NumCPUs": str(THREADS), "TresPerJob": "gres:gpu:1"} if rule in gpu_rules() else {"NumCPUs": "1"}
        assert {key: jobs[job].get(key) for key in expected} == expected, (rule, jobs[job])
    assert gpu_rules() & set(rules.values()) >= {"train_proxy", "score_examples", "train_target"}


def _target_metrics(results: Path) -> dict:
    return {
        str(path.relative_to(results)): {k: v for k, v in json.loads(path.read_text()).items() if "seconds" not in k}
        for path in sorted((results / "targets").rglob("metrics.json"))
    }


def test_results_equal_a_local_run(finished):
    slurm, local, _ = finished
    metrics = _target_metrics(slurm.results)
    if any(m["device"] != "cpu" for m in metrics.values()):
        pytest.skip("the jobs trained on a real GPU, where results may differ from run to run")
    assert len(metrics) == 2 and metrics == _target_metrics(local.results)
    assert all(m["epochs"] == 2 for m in metrics.values())
    for folder in ("scores", "ranks", "subsets"):
        files = sorted(p.relative_to(slurm.results) for p in (slurm.results / folder).rglob("*.parquet"))
        assert files and files == sorted(p.relative_to(local.results) for p in (local.results / folder).rglob("*.parquet"))
        for file in files:
            pd.testing.assert_frame_equal(
                pd.read_parquet(slurm.results / file), pd.read_parquet(local.results / file), check_exact=True
            )
    columns = ["target", "selection", "proxy", "metric", "fraction", "runs", "error_mean", "error_std"]
    summaries = [pd.read_csv(run.results / "summary.csv")[columns] for run in (slurm, local)]
    pd.testing.assert_frame_equal(*summaries, check_exact=True)


def test_a_failing_job_fails_the_run_and_names_its_logs(started, cluster):
    """SLURM reports the job failed, Snakemake retries it as the profile says, then
    exits non-zero naming the rule's log, which holds svp's message."""
    broken = started["broken"].wait()
    assert broken.process.returncode != 0, broken.output[-6000:]
    attempts = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.", broken.output)
    prepare = [(job, log) for job, log in attempts if "/rule_prepare_data/" in log]
    assert len(prepare) == 1 + profile()["retries"], broken.output[-6000:]
    jobs = cluster.jobs()
    assert all(jobs[job]["JobState"] == "FAILED" for job, _ in prepare), jobs
    # Each retry asks SLURM for more time and memory, as the profile's expressions say.
    runtime, mem_mb = profile()["set-resources"]["prepare_data"]["runtime"], profile()["default-resources"]["mem_mb"]
    for attempt, (job, _) in enumerate(prepare, start=1):
        hours, minutes, _ = jobs[job]["TimeLimit"].split(":")
        assert int(hours) * 60 + int(minutes) == eval(runtime, {"attempt": attempt}), jobs[job]
        assert jobs[job]["MinMemoryNode"] == f"{eval(mem_mb, {'attempt': attempt})}M", jobs[job]
    rule_log = "results/broken/logs/prepare_data.log"
    assert "Error in rule prepare_data" in broken.output and rule_log in broken.output, broken.output[-6000:]
    message = (broken.workdir / rule_log).read_text()
    assert "dataset.download is false and these files are missing" in message and "cifar-10-python.tar.gz" in message
    # SLURM's own log of a failed job is kept, and names the rule and its log.
    slurm_log = Path(prepare[-1][1]).read_text()
    assert "Error in rule prepare_data" in slurm_log and rule_log in slurm_log
