# The files the budget-matched baseline and report rules (budget.smk, report.smk) read,
# from svp.plan; their settings come from svp.workflow_inputs (common.smk's `settings`).

REPORT = f"{RESULTS}/report"


def all_budget_metrics():
    return workflow_inputs.run_files(
        rules.train_budget_target.output.metrics, plan.budget_runs(config)
    )


def full_target_model(wildcards):
    return rules.train_target.output.model.format(
        target=wildcards.target,
        selection=plan.FULL,
        fraction=plan.FULL_FRACTION,
        seed=wildcards.seed,
    )


def all_target_score_files():
    return workflow_inputs.run_files(
        rules.score_target.output.scores, plan.full_target_runs(config)
    )


def metric_proxy_score_files(wildcards):
    """Every proxy run's scores by the correlation's metric (uncertainty, or a method's file)."""
    return workflow_inputs.score_files(
        wildcards.metric,
        plan.selecting_proxy_runs(config),
        rules.score_examples.output.scores,
        rules.score_method.output.scores,
    )


def metric_target_score_files(wildcards):
    """Every full-data target run's own scores by the metric (for a method: the targets supporting it)."""
    if wildcards.metric in METHODS:
        return workflow_inputs.run_files(
            rules.score_target_method.output.scores,
            plan.target_method_runs(config, wildcards.metric),
        )
    return all_target_score_files()


def all_run_metrics():
    """metrics.json of every proxy and target run (history.csv lies beside each)."""
    return all_proxy_metrics() + all_target_metrics() + all_budget_metrics()


def all_run_histories():
    return workflow_inputs.history_files(all_run_metrics())


def correlation_files():
    return expand(
        [rules.correlate_orders.output.matrix, rules.correlate_orders.output.figure],
        metric=config["selection"]["metrics"] if all_score_files() else [],
    )


def all_subset_files():
    """Every subset a target trains on: each proxy selection and random seed, at each fraction."""
    return workflow_inputs.run_files(
        rules.select_subset.output.subset, plan.target_subsets(config)
    )


def all_rank_files():
    return workflow_inputs.run_files(
        rules.rank_examples.output.ranks, plan.rankings(config)
    )


def subset_report_files():
    """The subsets' tables and figure; none when no target trains on a subset."""
    if not all_subset_files():
        return []
    return [*rules.tabulate_subsets.output, rules.plot_class_composition.output.figure]


def verdict_files():
    """The verdict, wherever targets train on subsets (without a validation split it says
    how to get one); none otherwise."""
    if not all_subset_files():
        return []
    return list(rules.write_verdict.output)


def report_command():
    return workflow_inputs.report_command(RESULTS, workflow.config_settings.configfiles)
