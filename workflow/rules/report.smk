# What the results mean: the verdict (which selection to trust, by validation error), the
# paper-form results table, figures of error, time and learning curves, the correlation
# between example orders (the paper's Figure 3), and what each subset holds (class
# composition, proxy agreement and error, warnings).
# Every output marked report(...) goes into `snakemake --report report.html`, with the
# caption of the same name in workflow/report/.


use rule score_examples as score_target with:
    input:
        **rules.prepare_data.output,
        model=full_target_model,
    output:
        scores=f"{RESULTS}/target_scores/{{target}}/seed{{seed}}.parquet",
    log:
        f"{RESULTS}/logs/score_target/{{target}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_target/{{target}}/seed{{seed}}.tsv"
    params:
        info=settings.target_score_info,


# A full-data target's own order by a selection method, for the order correlation.
use rule score_method as score_target_method with:
    input:
        **rules.prepare_data.output,
        model=full_target_model,
    output:
        scores=f"{RESULTS}/target_scores/{{target}}/seed{{seed}}-{{method}}.parquet",
    log:
        f"{RESULTS}/logs/score_target_method/{{target}}/seed{{seed}}-{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_target_method/{{target}}/seed{{seed}}-{{method}}.tsv"
    params:
        info=settings.target_score_info,


rule tabulate_runs:
    input:
        targets=all_target_metrics() + all_budget_metrics(),
        # read beside each metrics.json, for the runs' final training accuracy
        histories=workflow_inputs.history_files(
            all_target_metrics() + all_budget_metrics()
        ),
        proxies=all_proxy_metrics(),
        scores=all_score_files() + all_method_score_files(),
    output:
        runs=report(
            f"{REPORT}/runs.csv",
            caption="../report/runs.rst",
            category="1. Results",
            labels={"table": "every target run"},
        ),
    log:
        f"{RESULTS}/logs/tabulate_runs.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report runs --targets {input.targets:q} --proxies {input.proxies:q}"
        " --scores {input.scores:q} --out {output.runs:q} > {log:q} 2>&1"


rule tabulate_results:
    input:
        summary=rules.summarize.output.summary,
        config=rules.store_config.output.config,
        proxies=all_proxy_metrics(),
    output:
        csv=report(
            f"{REPORT}/results.csv",
            caption="../report/results.rst",
            category="1. Results",
            labels={"table": "results (CSV)"},
        ),
        markdown=report(
            f"{REPORT}/results.md",
            caption="../report/results.rst",
            category="1. Results",
            labels={"table": "results (Markdown)"},
        ),
        html=report(
            f"{REPORT}/results.html",
            caption="../report/results.rst",
            category="1. Results",
            labels={"table": "results"},
        ),
    log:
        f"{RESULTS}/logs/tabulate_results.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report tables --summary {input.summary:q} --config {input.config:q} --proxies {input.proxies:q}"
        " --csv {output.csv:q} --markdown {output.markdown:q} --html {output.html:q} > {log:q} 2>&1"


rule plot_summary:
    input:
        summary=rules.summarize.output.summary,
    output:
        error=report(
            f"{REPORT}/error_vs_fraction.png",
            caption="../report/error_vs_fraction.rst",
            category="2. Figures",
            labels={"figure": "error against fraction"},
        ),
        time=report(
            f"{REPORT}/time_vs_fraction.png",
            caption="../report/time_vs_fraction.rst",
            category="2. Figures",
            labels={"figure": "time against fraction"},
        ),
    log:
        f"{RESULTS}/logs/plot_summary.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report summary-figures --summary {input.summary:q}"
        " --error-out {output.error:q} --time-out {output.time:q} > {log:q} 2>&1"


rule plot_error_vs_time:
    input:
        runs=rules.tabulate_runs.output.runs,
    output:
        figure=report(
            f"{REPORT}/error_vs_time.png",
            caption="../report/error_vs_time.rst",
            category="2. Figures",
            labels={"figure": "error against end-to-end time"},
        ),
    log:
        f"{RESULTS}/logs/plot_error_vs_time.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report error-vs-time --runs {input.runs:q} --out {output.figure:q} > {log:q} 2>&1"


rule plot_learning_curves:
    input:
        metrics=all_run_metrics(),
        histories=all_run_histories(),
    output:
        figure=report(
            f"{REPORT}/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="2. Figures",
            labels={"figure": "learning curves"},
        ),
    log:
        f"{RESULTS}/logs/plot_learning_curves.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report learning-curves --runs {input.metrics:q} --out {output.figure:q} > {log:q} 2>&1"


rule correlate_orders:
    input:
        proxy_scores=metric_proxy_score_files,
        target_scores=metric_target_score_files,
    output:
        matrix=report(
            f"{REPORT}/correlation/{{metric}}.csv",
            caption="../report/correlation.rst",
            category="3. Order correlation",
            subcategory="{metric}",
            labels={"metric": "{metric}", "file": "matrices (CSV)"},
        ),
        figure=report(
            f"{REPORT}/correlation/{{metric}}.png",
            caption="../report/correlation.rst",
            category="3. Order correlation",
            subcategory="{metric}",
            labels={"metric": "{metric}", "file": "figure"},
        ),
    log:
        f"{RESULTS}/logs/correlate_orders/{{metric}}.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report correlate --metric {wildcards.metric} --proxy-scores {input.proxy_scores:q}"
        " --target-scores {input.target_scores:q} --csv {output.matrix:q} --figure {output.figure:q} > {log:q} 2>&1"


rule tabulate_subsets:
    input:
        train=rules.prepare_data.output.train,
        manifest=rules.prepare_data.output.manifest,
        subsets=all_subset_files(),
        ranks=all_rank_files(),
        scores=all_score_files(),
        proxies=all_proxy_metrics(),
    output:
        csv=report(
            f"{REPORT}/subsets.csv",
            caption="../report/subsets.rst",
            category="4. Subsets",
            labels={"table": "subsets (CSV)"},
        ),
        markdown=report(
            f"{REPORT}/subsets.md",
            caption="../report/subsets.rst",
            category="4. Subsets",
            labels={"table": "subsets (Markdown)"},
        ),
        html=report(
            f"{REPORT}/subsets.html",
            caption="../report/subsets.rst",
            category="4. Subsets",
            labels={"table": "subsets and warnings"},
        ),
    log:
        f"{RESULTS}/logs/tabulate_subsets.log",
    params:
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp report subsets --data {params.data_dir:q} --subsets {input.subsets:q} --ranks {input.ranks:q}"
        " --scores {input.scores:q} --proxies {input.proxies:q} --csv {output.csv:q}"
        " --markdown {output.markdown:q} --html {output.html:q} > {log:q} 2>&1"


rule write_verdict:
    input:
        runs=rules.tabulate_runs.output.runs,
        subsets=rules.tabulate_subsets.output.csv,
        proxies=all_proxy_metrics(),
        manifest=rules.prepare_data.output.manifest,
    output:
        csv=report(
            f"{REPORT}/verdict.csv",
            caption="../report/verdict.rst",
            category="0. Verdict",
            labels={"table": "verdict (CSV)"},
        ),
        markdown=f"{REPORT}/verdict.md",
        html=report(
            f"{REPORT}/verdict.html",
            caption="../report/verdict.rst",
            category="0. Verdict",
            labels={"table": "verdict"},
        ),
        text=f"{REPORT}/verdict.txt",
    log:
        f"{RESULTS}/logs/write_verdict.log",
    params:
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp report verdict --runs {input.runs:q} --data {params.data_dir:q} --subsets {input.subsets:q}"
        " --proxies {input.proxies:q} --csv {output.csv:q} --markdown {output.markdown:q}"
        " --html {output.html:q} --text {output.text:q} > {log:q} 2>&1"


rule plot_class_composition:
    input:
        subsets=rules.tabulate_subsets.output.csv,
    output:
        figure=report(
            f"{REPORT}/class_composition.png",
            caption="../report/class_composition.rst",
            category="4. Subsets",
            labels={"table": "class composition (figure)"},
        ),
    log:
        f"{RESULTS}/logs/plot_class_composition.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp report class-composition --subsets {input.subsets:q} --out {output.figure:q} > {log:q} 2>&1"
