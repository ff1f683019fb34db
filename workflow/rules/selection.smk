rule rank_examples:
    input:
        scores=proxy_score_files,
    output:
        ranks=f"{RESULTS}/ranks/{{proxy}}-{{metric}}.parquet",
    log:
        f"{RESULTS}/logs/rank_examples/{{proxy}}-{{metric}}.log",
    params:
        svp_version=SVP_VERSION,
    shell:
        "svp rank {input.scores:q} --metric {wildcards.metric} --out {output.ranks:q} > {log:q} 2>&1"


rule select_subset:
    input:
        unpack(subset_source),
        labels=rules.prepare_data.output.train,
    output:
        subset=f"{RESULTS}/subsets/{{subset}}/{{fraction}}.parquet",
    log:
        f"{RESULTS}/logs/select_subset/{{subset}}/{{fraction}}.log",
    params:
        source=subset_source_args,
        balanced="--class-balanced" if config["selection"]["class_balanced"] else "",
        svp_version=SVP_VERSION,
    shell:
        "svp select --fraction {wildcards.fraction} {params.source} {params.balanced}"
        " --out {output.subset:q} > {log:q} 2>&1"
