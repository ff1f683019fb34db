DATA_DIR = f"{RESULTS}/data"


rule prepare_data:
    output:
        train=f"{DATA_DIR}/train.npz",
        test=f"{DATA_DIR}/test.npz",
        manifest=f"{DATA_DIR}/manifest.json",
    log:
        f"{RESULTS}/logs/prepare_data.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_data.tsv"
    params:
        dataset=json.dumps(config["dataset"]),
        svp_version=SVP_VERSION,
    shell:
        "svp prepare --dataset {params.dataset:q} --out-dir $(dirname {output.manifest:q}) > {log:q} 2>&1"
