# Active learning with proxies (config `active_learning`; svp.active): a random labelled
# pool, then one round per budget. A round trains the selector on the pool before it
# (train_selector: train_proxy's command with the selector's model and the round's seed),
# scores every training example (score_selector: score_examples' command), and labels the
# next batch (label_next_batch). The kcenter strategy scores nothing: label_next_batch
# embeds the training set with the selector's model itself. Each round's pool is a file,
# so a killed run resumes at the last finished round. Every target is then trained from
# scratch on each round's pool.
# Without `active_learning` in the config nothing here is asked for.


rule start_labelled_pool:
    input:
        labels=rules.prepare_data.output.train,
        manifest=rules.prepare_data.output.manifest,
    output:
        pool=f"{ACTIVE}/start/seed{{seed}}/pool.parquet",
    log:
        f"{RESULTS}/logs/start_labelled_pool/seed{{seed}}.log",
    params:
        fraction=active_settings.initial_fraction,
        random_seed=active_settings.start_seed,
        info=active_settings.start_info,
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp active start --data {params.data_dir:q} --fraction {params.fraction} --random-seed {params.random_seed}"
        " --info {params.info:q} --out {output.pool:q} > {log:q} 2>&1"


# Round 1's selector trains on the shared random start with round 1's seed: the same
# model for every strategy of that selector, so they share it (and, for the uncertainty
# strategies, its scores). Its folder names the seed it trains with.
use rule train_proxy as train_first_selector with:
    input:
        **rules.prepare_data.output,
        subset=first_selector_pool,
    output:
        model=f"{ACTIVE_START}/selectors/{{selector}}/seed{{seed}}/model.pt",
        history=f"{ACTIVE_START}/selectors/{{selector}}/seed{{seed}}/history.csv",
        metrics=f"{ACTIVE_START}/selectors/{{selector}}/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/train_first_selector/{{selector}}/seed{{run_seed}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_first_selector/{{selector}}/seed{{run_seed}}/seed{{seed}}.tsv"
    threads: selector_threads
    resources:
        gpu=selector_gpus,
    params:
        model=active_settings.selector_model,
        training=active_settings.selector_training,
        info=active_settings.first_selector_info,


use rule score_examples as score_first_selector with:
    input:
        **rules.prepare_data.output,
        model=rules.train_first_selector.output.model,
    output:
        scores=f"{ACTIVE_START}/selectors/{{selector}}/seed{{seed}}/scores.parquet",
    log:
        f"{RESULTS}/logs/score_first_selector/{{selector}}/seed{{run_seed}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_first_selector/{{selector}}/seed{{run_seed}}/seed{{seed}}.tsv"
    params:
        info=active_settings.first_selector_info,


# The selector of round r > 1 trains on pool r-1. Its folder names the seed it trains with
# (train_proxy's command passes --seed {wildcards.seed}): the round's seed, derived
# from the run's seed and the round (svp.active.rounds.round_seed).
use rule train_proxy as train_selector with:
    input:
        **rules.prepare_data.output,
        subset=selector_pool,
    output:
        model=f"{ACTIVE}/{{labelling}}/seed{{run_seed}}/round{{round}}/selector/seed{{seed}}/model.pt",
        history=f"{ACTIVE}/{{labelling}}/seed{{run_seed}}/round{{round}}/selector/seed{{seed}}/history.csv",
        metrics=f"{ACTIVE}/{{labelling}}/seed{{run_seed}}/round{{round}}/selector/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/train_selector/{{labelling}}/seed{{run_seed}}/round{{round}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_selector/{{labelling}}/seed{{run_seed}}/round{{round}}/seed{{seed}}.tsv"
    threads: selector_threads
    resources:
        gpu=selector_gpus,
    params:
        model=active_settings.selector_model,
        training=active_settings.selector_training,
        info=active_settings.selector_info,


# Every training example scored on un-augmented inputs; label_next_batch reads only the
# unlabelled ones. Asked for by the uncertainty strategies only.
use rule score_examples as score_selector with:
    input:
        **rules.prepare_data.output,
        model=rules.train_selector.output.model,
    output:
        scores=f"{ACTIVE}/{{labelling}}/seed{{run_seed}}/round{{round}}/selector/seed{{seed}}/scores.parquet",
    log:
        f"{RESULTS}/logs/score_selector/{{labelling}}/seed{{run_seed}}/round{{round}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_selector/{{labelling}}/seed{{run_seed}}/round{{round}}/seed{{seed}}.tsv"
    params:
        info=active_settings.selector_info,


# By uncertainty: reads the selector's scores. By kcenter: reads its model.pt and runs it
# over the training set (embeddings, then k-center greedy), so it is a torch job there.
rule label_next_batch:
    input:
        unpack(batch_inputs),
        labels=rules.prepare_data.output.train,
        manifest=rules.prepare_data.output.manifest,
    output:
        pool=f"{ACTIVE_ROUND}/pool.parquet",
    log:
        f"{RESULTS}/logs/label_next_batch/{{labelling}}/seed{{seed}}/round{{round}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/label_next_batch/{{labelling}}/seed{{seed}}/round{{round}}.tsv"
    threads: batch_threads
    resources:
        gpu=batch_gpus,
    params:
        source=batch_source_args,
        budget=active_settings.budget,
        info=active_settings.pool_info,
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp active next --pool {input.pool:q} {params.source} --budget {params.budget} --round {wildcards.round}"
        " --data {params.data_dir:q} --info {params.info:q} --out {output.pool:q} > {log:q} 2>&1"


# The target from scratch on a round's pool, with the run's seed: train_proxy's command.
use rule train_proxy as train_active_target with:
    input:
        **rules.prepare_data.output,
        subset=rules.label_next_batch.output.pool,
    output:
        model=f"{ACTIVE_ROUND}/targets/{{target}}/model.pt",
        history=f"{ACTIVE_ROUND}/targets/{{target}}/history.csv",
        metrics=f"{ACTIVE_ROUND}/targets/{{target}}/metrics.json",
    log:
        f"{RESULTS}/logs/train_active_target/{{labelling}}/seed{{seed}}/round{{round}}/{{target}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_active_target/{{labelling}}/seed{{seed}}/round{{round}}/{{target}}.tsv"
    threads: target_threads
    resources:
        gpu=target_gpus,
    params:
        model=settings.target_model,
        training=settings.target_training,
        info=active_settings.target_info,


rule tabulate_active_learning:
    input:
        pools=all_active_pools(),
        selectors=all_selector_metrics(),
        scores=all_selector_scores(),
        targets=all_active_target_metrics(),
    output:
        rounds=report(
            f"{REPORT}/active_learning/rounds.csv",
            caption="../report/active_rounds.rst",
            category="5. Active learning",
            labels={"table": "every round (CSV)"},
        ),
        csv=report(
            f"{REPORT}/active_learning/results.csv",
            caption="../report/active_results.rst",
            category="5. Active learning",
            labels={"table": "results (CSV)"},
        ),
        markdown=report(
            f"{REPORT}/active_learning/results.md",
            caption="../report/active_results.rst",
            category="5. Active learning",
            labels={"table": "results (Markdown)"},
        ),
        html=report(
            f"{REPORT}/active_learning/results.html",
            caption="../report/active_results.rst",
            category="5. Active learning",
            labels={"table": "results"},
        ),
    log:
        f"{RESULTS}/logs/tabulate_active_learning.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report active-tables --pools {input.pools:q} --selectors {input.selectors:q} --scores {input.scores:q}"
        " --targets {input.targets:q} --rounds-out {output.rounds:q} --csv {output.csv:q}"
        " --markdown {output.markdown:q} --html {output.html:q} > {log:q} 2>&1"


rule plot_active_learning:
    input:
        rounds=rules.tabulate_active_learning.output.rounds,
        targets=all_active_target_metrics(),
    output:
        error=report(
            f"{REPORT}/active_learning/error_vs_budget.png",
            caption="../report/active_error_vs_budget.rst",
            category="5. Active learning",
            labels={"figure": "error against labelled budget"},
        ),
        time=report(
            f"{REPORT}/active_learning/selection_time.png",
            caption="../report/active_selection_time.rst",
            category="5. Active learning",
            labels={"figure": "selection time per round"},
        ),
    log:
        f"{RESULTS}/logs/plot_active_learning.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report active-figures --rounds {input.rounds:q} --targets {input.targets:q}"
        " --error-out {output.error:q} --time-out {output.time:q} > {log:q} 2>&1"


# `snakemake active_learning` runs the rounds and their report alone, without the core-set runs.
rule active_learning:
    input:
        active_learning_files(),
