# The sensitivity sweep: the rules of simulate.smk, features.smk and train.smk for one point of
# `sweep` (wildcard `point`), with that point's config; inputs the point does not change are the
# main files (common.smk: sweep_class_file, sweep_features_file, sweep_split_file, sweep_run_dir).


wildcard_constraints:
    point="|".join(re.escape(p) for p in SWEEP) or "(?!)",


rule sweep_simulate_shard:
    output:
        "data/sweep/{point}/shards/{cls}/{shard}.h5",
    log:
        "logs/sweep_simulate_shard/{point}/{cls}/{shard}.log",
    benchmark:
        "logs/benchmark/sweep_simulate_shard/{point}/{cls}/{shard}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        seed=lambda wildcards: sweep_param(wildcards, "seed"),
        common=lambda wildcards: sweep_param(wildcards, "common"),
        class_settings=lambda wildcards: sweep_param(wildcards, "class_settings"),
    shell:
        "OMP_NUM_THREADS={threads} python -m darklens simulate --class {wildcards.cls}"
        " --shard {wildcards.shard} --seed {params.seed} --common {params.common:q}"
        " --class-settings {params.class_settings:q} --output {output} > {log} 2>&1"


rule sweep_merge_class:
    input:
        sweep_shard_files,
    output:
        "data/sweep/{point}/{cls}.h5",
    log:
        "logs/sweep_merge_class/{point}/{cls}.log",
    benchmark:
        "logs/benchmark/sweep_merge_class/{point}/{cls}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m darklens merge --class {wildcards.cls} --output {output} {input} > {log} 2>&1"


rule sweep_residual_features:
    input:
        lambda wildcards: sweep_class_file(wildcards.point, wildcards.cls),
    output:
        "data/sweep/{point}/features/{cls}.h5",
    log:
        "logs/sweep_residual_features/{point}/{cls}.log",
    benchmark:
        "logs/benchmark/sweep_residual_features/{point}/{cls}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        smoothing_sigma_px=lambda wildcards: sweep_param(wildcards, "features")[
            "smoothing_sigma_px"
        ],
    shell:
        "python -m darklens features --input {input} --output {output}"
        " --smoothing-sigma-px {params.smoothing_sigma_px} > {log} 2>&1"


rule sweep_split_dataset:
    output:
        "data/sweep/{point}/split.json",
    log:
        "logs/sweep_split_dataset/{point}.log",
    benchmark:
        "logs/benchmark/sweep_split_dataset/{point}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        seed=lambda wildcards: sweep_param(wildcards, "seed"),
        images_per_class=lambda wildcards: sweep_param(wildcards, "simulation")[
            "images_per_class"
        ],
        fractions=lambda wildcards: canonical_json(
            sweep_param(wildcards, "split")["fractions"]
        ),
    shell:
        "python -m darklens split --images-per-class {params.images_per_class}"
        " --fractions {params.fractions:q} --seed {params.seed} --output {output} > {log} 2>&1"


rule sweep_train_model:
    input:
        unpack(sweep_training_inputs),
    output:
        checkpoint="results/sweep/{point}/runs/{model}/seed_{seed}/checkpoint.pt",
        history="results/sweep/{point}/runs/{model}/seed_{seed}/history.csv",
        predictions="results/sweep/{point}/runs/{model}/seed_{seed}/predictions.csv",
        metrics="results/sweep/{point}/runs/{model}/seed_{seed}/metrics.json",
    log:
        "logs/sweep_train_model/{point}/{model}/seed_{seed}.log",
    benchmark:
        "logs/benchmark/sweep_train_model/{point}/{model}/seed_{seed}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    params:
        spec=lambda wildcards: canonical_json(model_spec(wildcards.model)),
        training=lambda wildcards: sweep_param(wildcards, "training"),
        residual_args=lambda wildcards: sweep_param(wildcards, "residual_args"),
        out_dir=subpath(output.metrics, parent=True),
    shell:
        "python -m darklens train --model {wildcards.model} --model-spec {params.spec:q}"
        " --training {params.training:q} --seed {wildcards.seed} --split {input.split}"
        " --images {input.images} {params.residual_args} --threads {threads}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule sweep_collect:
    input:
        metrics=sweep_metrics_files(),
        images=sweep_class_files(),
    output:
        "results/sweep/sensitivity.csv",
    log:
        "logs/sweep_collect/sensitivity.log",
    benchmark:
        "logs/benchmark/sweep_collect/sensitivity.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        manifest=sweep_manifest(),
    shell:
        "python -m darklens sweep-collect --manifest {params.manifest:q} --output {output}"
        " > {log} 2>&1"


rule sensitivity_curves:
    input:
        "results/sweep/sensitivity.csv",
    output:
        report(
            "results/figures/sensitivity.png",
            caption="../report/sensitivity.rst",
            category="4. Sensitivity",
            labels={"figure": f"AUC against {config['sweep']['parameter']}"},
        ),
    log:
        "logs/sensitivity_curves/figure.log",
    benchmark:
        "logs/benchmark/sensitivity_curves/figure.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m darklens plot sensitivity --output {output} {input} > {log} 2>&1"
