# Shared by all rules: the validated config, wildcard patterns and the functions that
# turn wildcards into inputs and settings. The logic of every stage lives in `svp`.

import functools
import json
import os
import shlex
import sys

import svp
from svp import plan
from svp.training.gpus import count_gpus
from svp.config import ConfigError, validate_config
from svp.selection.uncertainty import METRICS

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
# Stages whose code lives in the package rerun when its version changes.
SVP_VERSION = svp.__version__


@functools.cache
def jobs_use_gpus():
    """Whether the torch rules' jobs get a GPU: always on a cluster, locally when there is one.

    Asked when the jobs are planned, once the executor is known (not while this file is
    read). On a cluster that is the submitting process, and the one that runs each job on
    its node (remote mode), which must give the job the threads it was submitted with.
    """
    return workflow.non_local_exec or workflow.remote_exec or count_gpus() > 0


def torch_threads(wildcards):
    """A torch job's threads: all the cores beside a GPU; one on a machine without GPUs.

    Without GPUs, one thread per job lets `--cores N` train N (small) models at once,
    which beats N threads on one model and overlaps the jobs' start-up (importing torch).
    `--set-threads train_target=4` gives a rule more.
    """
    return workflow.cores if jobs_use_gpus() else 1


def torch_gpus(wildcards):
    """GPUs a torch job claims (`--resources gpu=N` runs N at once): none where there is none."""
    return 1 if jobs_use_gpus() else 0


wildcard_constraints:
    proxy=r"[A-Za-z0-9_]+",
    target=r"[A-Za-z0-9_]+",
    seed=r"\d+",
    metric="|".join(METRICS),
    fraction=r"0\.\d+|1\.0",
    selection=r"full|random|[A-Za-z0-9_]+-("
    + "|".join(METRICS)
    + ")"
    + plan.KEEP_SUFFIX_PATTERN,
    subset=r"random-\d+|[A-Za-z0-9_]+-("
    + "|".join(METRICS)
    + ")"
    + plan.KEEP_SUFFIX_PATTERN,


def proxy_model(wildcards):
    return config["proxies"][wildcards.proxy]["model"]


def proxy_training(wildcards):
    return json.dumps(config["proxies"][wildcards.proxy]["training"])


def proxy_info(wildcards):
    return json.dumps(
        {"role": "proxy", "proxy": wildcards.proxy, "seed": int(wildcards.seed)}
    )


def proxy_score_files(wildcards):
    return expand(
        rules.score_examples.output.scores,
        proxy=wildcards.proxy,
        seed=config["proxies"][wildcards.proxy]["seeds"],
    )


def subset_source(wildcards):
    """Where a subset's order comes from: a proxy's combined ranking or a random seed."""
    if wildcards.subset.startswith(f"{plan.RANDOM}-"):
        return {}
    proxy, metric = plan.parse_selection(wildcards.subset)
    return {
        "ranks": rules.rank_examples.output.ranks.format(proxy=proxy, metric=metric)
    }


def subset_source_args(wildcards, input):
    data = f"--data {shlex.quote(os.path.dirname(input.labels))}"
    if "ranks" in input.keys():
        keep = plan.selection_keep(wildcards.subset)
        return f"--ranks {shlex.quote(input.ranks)} --keep {keep} {data}"
    seed = wildcards.subset.split("-", 1)[1]
    return f"--random-seed {seed} {data}"


def data_dir(wildcards, input):
    """The prepared data folder, from the rule's data inputs."""
    return os.path.dirname(input.manifest)


def target_model(wildcards):
    return config["targets"][wildcards.target]["model"]


def target_training(wildcards):
    return json.dumps(config["targets"][wildcards.target]["training"])


def target_subset(wildcards):
    """The subset file a target run trains on; the full-data baseline needs none."""
    if wildcards.selection == plan.FULL:
        return {}
    subset = plan.subset_name(wildcards.selection, wildcards.seed)
    return {
        "subset": rules.select_subset.output.subset.format(
            subset=subset, fraction=wildcards.fraction
        )
    }


def target_subset_args(wildcards, input):
    return f"--subset {shlex.quote(input.subset)}" if "subset" in input.keys() else ""


def target_info(wildcards):
    proxy, metric = plan.parse_selection(wildcards.selection)
    return json.dumps(
        {
            "role": "target",
            "target": wildcards.target,
            "selection": wildcards.selection,
            "proxy": proxy,
            "metric": metric,
            "fraction": float(wildcards.fraction),
            "seed": int(wildcards.seed),
        }
    )


def all_target_metrics():
    return [
        rules.train_target.output.metrics.format(**run)
        for run in plan.target_runs(config)
    ]


def all_proxy_metrics():
    used = {plan.parse_selection(s)[0] for s in plan.proxy_selections(config)}
    return [
        rules.train_proxy.output.metrics.format(**run)
        for run in plan.proxy_runs(config)
        if run["proxy"] in used
    ]


def all_score_files():
    used = {plan.parse_selection(s)[0] for s in plan.proxy_selections(config)}
    return [
        rules.score_examples.output.scores.format(**run)
        for run in plan.proxy_runs(config)
        if run["proxy"] in used
    ]
