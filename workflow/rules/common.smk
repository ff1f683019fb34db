# Shared by all rules: the validated config, wildcard patterns, and the callables rules
# name for inputs and params. What each job is given is worked out in svp.plan (which
# runs) and svp.workflow_inputs (their settings and facts); what is here only hands
# Snakemake's wildcards, inputs and rule paths to them.

import functools
import json
import os
import sys

import svp
from svp import plan, workflow_inputs
from svp.active import job_inputs as active_job_inputs, rounds as active_rounds
from svp.training.gpus import count_gpus
from svp.config import ConfigError, validate_config
from svp.selection.methods import METHODS, SELECTION_METRICS

try:
    config.update(validate_config(config))
except ConfigError as error:
    raise WorkflowError(str(error)) from None

RESULTS = f"results/{config['experiment']}"


envvars:
    "PATH",


# Jobs find the `svp` command of the environment Snakemake runs in, even when that
# virtual environment was not activated.
os.environ["PATH"] = os.pathsep.join(
    [os.path.dirname(sys.executable), os.environ.get("PATH", "")]
)
# Snakemake does not see code changes inside the svp package; a `params:` entry does
# rerun jobs when it changes. svp.__version__ is the version of the outputs: it is
# bumped when a change makes a stage write different outputs for the same config and
# seed (README, "Caching and rerunning single stages").
SVP_VERSION = svp.__version__

# Each job's model, training settings and run facts (svp.workflow_inputs.JobSettings).
settings = workflow_inputs.JobSettings(config)


@functools.cache
def jobs_use_gpus():
    """Whether the torch rules' jobs get a GPU: always on a cluster, locally when there is one.

    Asked when the jobs are planned, once the executor is known (not while this file is
    read). On a cluster that is the submitting process, and the one that runs each job on
    its node (remote mode), which must give the job the threads it was submitted with.
    """
    return workflow.non_local_exec or workflow.remote_exec or count_gpus() > 0


def torch_threads(wildcards):
    """A torch job's threads: the cores shared among the GPU jobs; one without GPUs.

    With GPUs, `--resources gpu=N` runs N jobs at once, so each gets cores / N threads:
    a job holding all the cores would let Snakemake start no other beside it, whatever N.
    Without GPUs, one thread per job lets `--cores N` train N (small) models at once,
    which beats N threads on one model and overlaps the jobs' start-up (importing torch).
    `--set-threads train_target=4` gives a rule more.
    """
    if not jobs_use_gpus():
        return 1
    gpu_jobs = workflow.global_resources.get("gpu")
    gpu_jobs = getattr(
        gpu_jobs, "value", gpu_jobs
    )  # Snakemake 9 wraps it in a Resource
    return (
        max(1, workflow.cores // gpu_jobs)
        if isinstance(gpu_jobs, int) and gpu_jobs > 0
        else workflow.cores
    )


def gpu_share_threads(gpus):
    """Threads for a job on `gpus` GPUs: a GPU's share of the cores (torch_threads) for each
    of them, at most all the cores. A job of two processes on two GPUs gets two shares, so
    each process keeps the threads a one-GPU job has."""
    return min(workflow.cores, torch_threads(None) * max(1, gpus))


def proxy_threads(wildcards):
    return gpu_share_threads(proxy_gpus(wildcards))


def target_threads(wildcards):
    return gpu_share_threads(target_gpus(wildcards))


def torch_gpus(wildcards):
    """GPUs a torch job claims (`--resources gpu=N` runs N at once): none where there is none."""
    return 1 if jobs_use_gpus() else 0


def run_gpus(gpus, key):
    """GPUs a training job claims: its run's `gpus` (config key `key`), where jobs get GPUs;
    none elsewhere, where it trains in one process."""
    if not jobs_use_gpus():
        return 0
    limit = workflow.global_resources.get("gpu").value
    if limit is not None and gpus > limit:
        warn_once(workflow_inputs.capped_gpus_message(key, gpus, limit))
    return gpus


@functools.cache
def warn_once(message):
    print(f"warning: {message}", file=sys.stderr)


def proxy_gpus(wildcards):
    return run_gpus(settings.proxy_gpus(wildcards), f"proxies.{wildcards.proxy}")


def target_gpus(wildcards):
    return run_gpus(settings.target_gpus(wildcards), f"targets.{wildcards.target}")


def training_processes(wildcards, resources):
    """`svp train --processes N` for a job granted N > 1 GPUs. It reads the job's resources,
    so Snakemake does not count it among the params that rerun a job: a run trains the
    same on one GPU or several, and a finished one is kept when its gpus change."""
    return workflow_inputs.processes_args(resources.gpu)


wildcard_constraints:
    proxy=r"[A-Za-z0-9_]+",
    target=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    metric="|".join(SELECTION_METRICS),
    method="|".join(METHODS),
    fraction=r"0\.\d+|1\.0",
    selection=r"full|random|[A-Za-z0-9_]+-("
    + "|".join(SELECTION_METRICS)
    + ")"
    + plan.KEEP_SUFFIX_PATTERN,
    subset=r"random-\d+|[A-Za-z0-9_]+-("
    + "|".join(SELECTION_METRICS)
    + ")"
    + plan.KEEP_SUFFIX_PATTERN,


# Callables of a job's wildcards and inputs, for the rules' input and params.


def data_dir(wildcards, input):
    return workflow_inputs.data_dir(input.manifest)


def proxy_score_files(wildcards):
    """The files a ranking reads: each proxy run's uncertainty scores, or its method's scores."""
    runs = [
        {"proxy": wildcards.proxy, "seed": seed}
        for seed in config["proxies"][wildcards.proxy]["seeds"]
    ]
    return workflow_inputs.score_files(
        wildcards.metric,
        runs,
        rules.score_examples.output.scores,
        rules.score_method.output.scores,
    )


def subset_source(wildcards):
    return workflow_inputs.subset_source(
        wildcards.subset, rules.rank_examples.output.ranks
    )


def subset_source_args(wildcards, input):
    return workflow_inputs.subset_source_args(
        wildcards.subset, input.get("ranks"), input.labels
    )


def target_subset(wildcards):
    return workflow_inputs.target_subset(
        wildcards.selection,
        wildcards.fraction,
        wildcards.seed,
        rules.select_subset.output.subset,
    )


def subset_args(wildcards, input):
    return workflow_inputs.subset_args(input.get("subset"))


# Every file of a kind the experiment makes, for the rules that read them all.


def all_target_metrics():
    return workflow_inputs.run_files(
        rules.train_target.output.metrics, plan.target_runs(config)
    )


def all_proxy_metrics():
    return workflow_inputs.run_files(
        rules.train_proxy.output.metrics, plan.selecting_proxy_runs(config)
    )


def all_score_files():
    return workflow_inputs.run_files(
        rules.score_examples.output.scores, plan.selecting_proxy_runs(config)
    )


def all_method_score_files():
    """The score files of the selection methods beyond uncertainty, for the summary's costs."""
    return workflow_inputs.run_files(
        rules.score_method.output.scores, plan.method_runs(config)
    )
