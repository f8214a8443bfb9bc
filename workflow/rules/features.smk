rule residual_features:
    input:
        "data/{cls}.h5",
    output:
        "data/features/{cls}.h5",
    log:
        "logs/residual_features/{cls}.log",
    benchmark:
        "logs/benchmark/residual_features/{cls}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        smoothing_sigma_px=setting("features", "smoothing_sigma_px"),
    shell:
        "python -m darklens features --input {input} --output {output}"
        " --smoothing-sigma-px {params.smoothing_sigma_px} > {log} 2>&1"
