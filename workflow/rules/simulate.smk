rule simulate_shard:
    input:
        unpack(psf_kernel_input),
    output:
        "data/shards/{cls}/{shard}.h5",
    log:
        "logs/simulate_shard/{cls}/{shard}.log",
    benchmark:
        "logs/benchmark/simulate_shard/{cls}/{shard}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        seed=setting("seed"),
        common=simulation_json,
        class_settings=class_settings_json,
    shell:
        "OMP_NUM_THREADS={threads} python -m darklens simulate --class {wildcards.cls}"
        " --shard {wildcards.shard} --seed {params.seed} --common {params.common:q}"
        " --class-settings {params.class_settings:q} --output {output} > {log} 2>&1"


rule merge_class:
    input:
        shard_files,
    output:
        "data/{cls}.h5",
    log:
        "logs/merge_class/{cls}.log",
    benchmark:
        "logs/benchmark/merge_class/{cls}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m darklens merge --class {wildcards.cls} --output {output} {input} > {log} 2>&1"


rule split_dataset:
    output:
        "data/split.json",
    log:
        "logs/split_dataset/split.log",
    benchmark:
        "logs/benchmark/split_dataset/split.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        seed=setting("seed"),
        images_per_class=setting("simulation", "images_per_class"),
        fractions=setting("split", "fractions", as_json=True),
    shell:
        "python -m darklens split --images-per-class {params.images_per_class}"
        " --fractions {params.fractions:q} --seed {params.seed} --output {output} > {log} 2>&1"
