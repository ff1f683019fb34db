# The budget-matched baseline (config `report.budget_matched`): each target trained on
# the full data set for as many SGD steps as its run on each fraction's subset takes
# (every lr_schedule piece's epochs times the fraction; see svp.plan.budget_training).
# Its own rule, because the `selection` wildcard of train_target stands for subsets.


rule train_budget_target:
    input:
        **rules.prepare_data.output,
    output:
        model=f"{RESULTS}/targets/{{target}}/{plan.BUDGET}/{{fraction}}/seed{{seed}}/model.pt",
        history=f"{RESULTS}/targets/{{target}}/{plan.BUDGET}/{{fraction}}/seed{{seed}}/history.csv",
        metrics=f"{RESULTS}/targets/{{target}}/{plan.BUDGET}/{{fraction}}/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/train_budget_target/{{target}}/{{fraction}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_budget_target/{{target}}/{{fraction}}/seed{{seed}}.tsv"
    threads: torch_threads
    resources:
        gpu=torch_gpus,
    params:
        model=target_model,
        training=budget_training_settings,
        info=budget_info,
        data_dir=data_dir,
        svp_version=SVP_VERSION,
    shell:
        "svp train --model {params.model:q} --training {params.training:q} --seed {wildcards.seed}"
        " --data {params.data_dir:q} --model-out {output.model:q} --history-out {output.history:q}"
        " --metrics-out {output.metrics:q} --info {params.info:q} --threads {threads} > {log:q} 2>&1"
