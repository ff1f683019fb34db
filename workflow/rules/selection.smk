rule rank_examples:
    input:
        scores=proxy_score_files,
    output:
        ranks=f"{RESULTS}/ranks/{{proxy}}-{{metric}}.parquet",
    params:
        svp_version=SVP_VERSION,
    log:
        f"{RESULTS}/logs/rank_examples/{{proxy}}-{{metric}}.log",
    shell:
        "{SVP} rank {input.scores:q} --metric {wildcards.metric} --out {output.ranks:q} > {log:q} 2>&1"


rule select_subset:
    input:
        unpack(subset_source),
        labels=rules.prepare_data.output.train,
    output:
        subset=f"{RESULTS}/subsets/{{subset}}/{{fraction}}.parquet",
    params:
        source=subset_source_args,
        balanced="--class-balanced" if config["selection"]["class_balanced"] else "",
        svp_version=SVP_VERSION,
    log:
        f"{RESULTS}/logs/select_subset/{{subset}}/{{fraction}}.log",
    shell:
        "{SVP} select --fraction {wildcards.fraction} {params.source} {params.balanced}"
        " --out {output.subset:q} > {log:q} 2>&1"
