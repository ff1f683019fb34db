rule train_target:
    input:
        unpack(target_subset),
        **rules.prepare_data.output,
    output:
        model=f"{RESULTS}/targets/{{target}}/{{selection}}/{{fraction}}/seed{{seed}}/model.pt",
        history=f"{RESULTS}/targets/{{target}}/{{selection}}/{{fraction}}/seed{{seed}}/history.csv",
        metrics=f"{RESULTS}/targets/{{target}}/{{selection}}/{{fraction}}/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/train_target/{{target}}/{{selection}}/{{fraction}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_target/{{target}}/{{selection}}/{{fraction}}/seed{{seed}}.tsv"
    threads: torch_threads
    resources:
        gpu=torch_gpus,
    params:
        model=target_model,
        training=target_training,
        subset=target_subset_args,
        info=target_info,
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp train --model {params.model:q} --training {params.training:q} --seed {wildcards.seed}"
        " --data {params.data_dir:q} {params.subset} --model-out {output.model:q}"
        " --history-out {output.history:q} --metrics-out {output.metrics:q} --info {params.info:q}"
        " --threads {threads} > {log:q} 2>&1"
