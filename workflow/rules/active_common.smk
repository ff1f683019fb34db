# What the active-learning rules (active.smk) read and are given: paths, wildcard
# patterns, and the callables their inputs and params name, from svp.active.

ACTIVE = f"{RESULTS}/active"
ACTIVE_ROUND = f"{ACTIVE}/{{labelling}}/seed{{seed}}/round{{round}}"
ACTIVE_START = f"{ACTIVE}/start/seed{{run_seed}}"

active_settings = active_job_inputs.ActiveJobSettings(config)


wildcard_constraints:
    labelling=r"random|[A-Za-z0-9_]+-(" + "|".join(active_rounds.STRATEGIES) + ")",
    round=r"\d+",
    run_seed=r"\d+",
    selector=r"[A-Za-z0-9_]+",


def previous_pool(wildcards):
    """The pool a round adds to (label_next_batch's wildcards: seed is the run's)."""
    return active_job_inputs.previous_pool(
        wildcards.labelling,
        wildcards.seed,
        wildcards.round,
        rules.start_labelled_pool.output.pool,
        rules.label_next_batch.output.pool,
    )


def selector_pool(wildcards):
    active_job_inputs.checked_round_seed(
        wildcards.run_seed, wildcards.round, wildcards.seed
    )
    return active_job_inputs.previous_pool(
        wildcards.labelling,
        wildcards.run_seed,
        wildcards.round,
        rules.start_labelled_pool.output.pool,
        rules.label_next_batch.output.pool,
    )


def first_selector_pool(wildcards):
    active_job_inputs.checked_round_seed(wildcards.run_seed, 1, wildcards.seed)
    return rules.start_labelled_pool.output.pool.format(seed=wildcards.run_seed)


def batch_inputs(wildcards):
    return active_job_inputs.batch_inputs(
        wildcards.labelling,
        wildcards.seed,
        wildcards.round,
        previous_pool(wildcards),
        rules.score_selector.output.scores,
        rules.train_selector.output.model,
        rules.score_first_selector.output.scores,
        rules.train_first_selector.output.model,
    )


def batch_source_args(wildcards, input, threads):
    return active_job_inputs.batch_source_args(
        wildcards.labelling,
        wildcards.seed,
        wildcards.round,
        input.get("scores"),
        input.get("checkpoint"),
        batch_size=config["scoring"]["batch_size"],
        threads=threads,
    )


def batch_threads(wildcards):
    """A k-center batch runs the selector over the training set: a torch job's threads."""
    return (
        torch_threads(wildcards) if active_job_inputs.embeds(wildcards.labelling) else 1
    )


def selector_gpus(wildcards):
    return run_gpus(*active_settings.selector_gpus(wildcards))


def selector_threads(wildcards):
    return gpu_share_threads(selector_gpus(wildcards))


def batch_gpus(wildcards):
    return torch_gpus(wildcards) if active_job_inputs.embeds(wildcards.labelling) else 0


def all_active_pools():
    return workflow_inputs.run_files(
        rules.label_next_batch.output.pool, active_rounds.pool_runs(config)
    )


def all_selector_metrics():
    return workflow_inputs.run_files(
        rules.train_first_selector.output.metrics,
        active_rounds.first_selector_runs(config),
    ) + workflow_inputs.run_files(
        rules.train_selector.output.metrics, active_rounds.selector_runs(config)
    )


def all_selector_scores():
    """The score files of the uncertainty labellings' selectors (k-center's have none)."""
    return workflow_inputs.run_files(
        rules.score_first_selector.output.scores,
        active_rounds.scored_first_selector_runs(config),
    ) + workflow_inputs.run_files(
        rules.score_selector.output.scores, active_rounds.scored_selector_runs(config)
    )


def all_active_target_metrics():
    return workflow_inputs.run_files(
        rules.train_active_target.output.metrics, active_rounds.target_runs(config)
    )


def active_learning_files():
    """The active-learning tables and figures; none when the config asks for no active learning."""
    if not active_rounds.labellings(config):
        return []
    return [
        *rules.tabulate_active_learning.output,
        *rules.plot_active_learning.output,
    ]
