# Functions of the budget-matched baseline and report rules (budget.smk, report.smk):
# the runs, subsets and rankings they read and the settings they pass, from the config
# and svp.plan.

REPORT = f"{RESULTS}/report"


def budget_training_settings(wildcards):
    training = config["targets"][wildcards.target]["training"]
    return json.dumps(plan.budget_training(training, float(wildcards.fraction)))


def budget_info(wildcards):
    return json.dumps(
        {
            "role": "target",
            "target": wildcards.target,
            "selection": plan.BUDGET,
            "proxy": None,
            "metric": None,
            "fraction": float(wildcards.fraction),
            "seed": int(wildcards.seed),
        }
    )


def all_budget_metrics():
    return [
        rules.train_budget_target.output.metrics.format(**run)
        for run in plan.budget_runs(config)
    ]


def full_target_model(wildcards):
    return rules.train_target.output.model.format(
        target=wildcards.target,
        selection=plan.FULL,
        fraction=plan.FULL_FRACTION,
        seed=wildcards.seed,
    )


def target_score_info(wildcards):
    return json.dumps(
        {"role": "target", "target": wildcards.target, "seed": int(wildcards.seed)}
    )


def all_target_score_files():
    return [
        rules.score_target.output.scores.format(**run)
        for run in plan.target_runs(config)
        if run["selection"] == plan.FULL
    ]


def all_run_metrics():
    """metrics.json of every proxy and target run (history.csv lies beside each)."""
    return all_proxy_metrics() + all_target_metrics() + all_budget_metrics()


def all_run_histories():
    return [
        os.path.join(os.path.dirname(path), "history.csv") for path in all_run_metrics()
    ]


def correlation_files():
    return expand(
        [rules.correlate_orders.output.matrix, rules.correlate_orders.output.figure],
        metric=config["selection"]["metrics"] if all_score_files() else [],
    )


def all_subset_files():
    """Every subset a target trains on: each proxy selection and random seed, at each fraction."""
    subsets = {
        (plan.subset_name(run["selection"], run["seed"]), run["fraction"])
        for run in plan.target_runs(config)
        if run["selection"] != plan.FULL
    }
    return [
        rules.select_subset.output.subset.format(subset=subset, fraction=fraction)
        for subset, fraction in sorted(subsets)
    ]


def all_rank_files():
    return [
        rules.rank_examples.output.ranks.format(proxy=proxy, metric=metric)
        for proxy, metric in map(plan.parse_selection, plan.proxy_selections(config))
    ]


def subset_report_files():
    """The subsets' tables and figure; none when no target trains on a subset."""
    if not all_subset_files():
        return []
    return [*rules.tabulate_subsets.output, rules.plot_class_composition.output.figure]


def report_command():
    """The command that writes this experiment's HTML report (--cores: the rules' threads need it)."""
    words = ["snakemake", "--report", f"{RESULTS}/report.html", "--cores", "1"]
    for path in workflow.config_settings.configfiles:
        words += ["--configfile", str(path)]
    return shlex.join(words)
