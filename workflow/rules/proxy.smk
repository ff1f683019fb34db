# The one `svp train` command of every training rule: train_target and
# train_budget_target are this rule with other files and settings (`use rule ... with:`),
# keeping its threads and command; each names its run's GPUs. A proxy trains on all the
# data, so its `--subset` option (params.subset) is empty. A run with `gpus: N` claims N
# GPUs and trains as N processes, one per GPU (`--processes N`: torchrun, DDP).
rule train_proxy:
    input:
        **rules.prepare_data.output,
    output:
        model=f"{RESULTS}/proxies/{{proxy}}/seed{{seed}}/model.pt",
        history=f"{RESULTS}/proxies/{{proxy}}/seed{{seed}}/history.csv",
        metrics=f"{RESULTS}/proxies/{{proxy}}/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/train_proxy/{{proxy}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_proxy/{{proxy}}/seed{{seed}}.tsv"
    threads: proxy_threads
    resources:
        gpu=proxy_gpus,
    params:
        model=settings.proxy_model,
        training=settings.proxy_training,
        subset=subset_args,
        processes=training_processes,
        info=settings.proxy_info,
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp train --model {params.model:q} --training {params.training:q} --seed {wildcards.seed}"
        " --data {params.data_dir:q} {params.subset} --model-out {output.model:q}"
        " --history-out {output.history:q} --metrics-out {output.metrics:q} --info {params.info:q}"
        " --threads {threads} {params.processes} > {log:q} 2>&1"


rule score_examples:
    input:
        **rules.prepare_data.output,
        model=rules.train_proxy.output.model,
    output:
        scores=f"{RESULTS}/scores/{{proxy}}/seed{{seed}}.parquet",
    log:
        f"{RESULTS}/logs/score_examples/{{proxy}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_examples/{{proxy}}/seed{{seed}}.tsv"
    threads: torch_threads
    resources:
        gpu=torch_gpus,
    params:
        batch_size=config["scoring"]["batch_size"],
        info=settings.proxy_info,
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp score --checkpoint {input.model:q} --data {params.data_dir:q} --out {output.scores:q}"
        " --batch-size {params.batch_size} --info {params.info:q} --threads {threads} > {log:q} 2>&1"


# A selection method beyond uncertainty (forgetting, grand, kcenter) per proxy run, in a
# file of its own: the uncertainty scores above stay as they are.
rule score_method:
    input:
        **rules.prepare_data.output,
        model=rules.train_proxy.output.model,
    output:
        scores=f"{RESULTS}/scores/{{proxy}}/seed{{seed}}-{{method}}.parquet",
    log:
        f"{RESULTS}/logs/score_method/{{proxy}}/seed{{seed}}-{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/score_method/{{proxy}}/seed{{seed}}-{{method}}.tsv"
    threads: torch_threads
    resources:
        gpu=torch_gpus,
    params:
        batch_size=config["scoring"]["batch_size"],
        info=settings.proxy_info,
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp score-method --method {wildcards.method} --checkpoint {input.model:q} --data {params.data_dir:q}"
        " --out {output.scores:q} --batch-size {params.batch_size} --info {params.info:q}"
        " --threads {threads} > {log:q} 2>&1"
