rule store_config:
    output:
        config=f"{RESULTS}/config.yaml",
    log:
        f"{RESULTS}/logs/store_config.log",
    params:
        config=json.dumps(config),
    shell:
        "svp store-config --config {params.config:q} --out {output.config:q} > {log:q} 2>&1"


rule summarize:
    input:
        targets=all_target_metrics() + all_budget_metrics(),
        proxies=all_proxy_metrics(),
        scores=all_score_files() + all_method_score_files(),
        config=rules.store_config.output.config,
    output:
        summary=f"{RESULTS}/summary.csv",
    log:
        f"{RESULTS}/logs/summarize.log",
    shell:
        "svp summarize --targets {input.targets:q} --proxies {input.proxies:q} --scores {input.scores:q}"
        " --out {output.summary:q} > {log:q} 2>&1"


onsuccess:
    # The verdict leads: what the run decided, from the validation split alone.
    if verdict_files() and os.path.exists(rules.write_verdict.output.text):
        shell("cat {rules.write_verdict.output.text:q}")
    if os.path.exists(rules.summarize.output.summary):
        shell("svp show-summary {rules.summarize.output.summary:q}")
    if os.path.exists(rules.tabulate_subsets.output.csv):
        shell("svp report subset-warnings {rules.tabulate_subsets.output.csv:q}")
    if os.path.exists(rules.tabulate_results.output.markdown):
        print(f"Tables and figures: {REPORT}/; the HTML report: {report_command()}")
