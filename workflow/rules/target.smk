# A target run: train_proxy's command (proxy.smk) on the subset a selection chose, or on
# all the data for the full-data baseline (no subset input, so no --subset option).
use rule train_proxy as train_target with:
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
    threads: target_threads
    resources:
        gpu=target_gpus,
    params:
        model=settings.target_model,
        training=settings.target_training,
        info=settings.target_info,
