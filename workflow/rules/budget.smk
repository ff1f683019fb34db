# The budget-matched baseline (config `report.budget_matched`): each target trained on
# the full data set for as many SGD steps as its run on each fraction's subset takes
# (every lr_schedule piece's epochs times the fraction; see svp.plan.budget_training).
# Its own rule, because the `selection` wildcard of train_target stands for subsets; like
# train_target, it is train_proxy's command (proxy.smk) with the target's files and settings.


use rule train_proxy as train_budget_target with:
    output:
        model=f"{RESULTS}/targets/{{target}}/{plan.BUDGET}/{{fraction}}/seed{{seed}}/model.pt",
        history=f"{RESULTS}/targets/{{target}}/{plan.BUDGET}/{{fraction}}/seed{{seed}}/history.csv",
        metrics=f"{RESULTS}/targets/{{target}}/{plan.BUDGET}/{{fraction}}/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/train_budget_target/{{target}}/{{fraction}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_budget_target/{{target}}/{{fraction}}/seed{{seed}}.tsv"
    threads: target_threads
    resources:
        gpu=target_gpus,
    params:
        model=settings.target_model,
        training=settings.budget_training,
        info=settings.budget_info,
