DATA_DIR = f"{RESULTS}/data"


rule prepare_data:
    output:
        train=f"{DATA_DIR}/train.npz",
        test=f"{DATA_DIR}/test.npz",
        manifest=f"{DATA_DIR}/manifest.json",
    params:
        dataset=json.dumps(config["dataset"]),
        out_dir=DATA_DIR,
        svp_version=SVP_VERSION,
    log:
        f"{RESULTS}/logs/prepare_data.log",
    shell:
        "{SVP} prepare --dataset {params.dataset:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
