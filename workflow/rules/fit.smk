# The smooth-lens fit of every image of a class (darklens.fitting, docs/fitting.md). Its params
# carry the fitting settings except `enabled` and `threads`, which do not change the numbers.


rule fit_class:
    input:
        "data/{cls}.h5",
    output:
        "data/fits/{cls}.h5",
    log:
        "logs/fit_class/{cls}.log",
    benchmark:
        "logs/benchmark/fit_class/{cls}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: config["fitting"]["threads"]
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        fitting=lambda wildcards: canonical_json(
            {
                k: v
                for k, v in config["fitting"].items()
                if k not in ("enabled", "threads")
            }
        ),
    shell:
        "OMP_NUM_THREADS={threads} python -m darklens fit --input {input} --output {output}"
        " --fitting {params.fitting:q} --threads {threads} > {log} 2>&1"
