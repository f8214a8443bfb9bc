# The sensitivity sweep: the rules of simulate.smk, features.smk and train.smk for one point of
# `sweep` (wildcard `point`), with threads and resources inherited; their params read the point's
# config (common.smk: point_config). Inputs the point does not change are the main files
# (darklens.evaluation.sweep.SweepPlan: class_file, fit_file, features_file, split_file,
# run_dir).


wildcard_constraints:
    point="|".join(re.escape(p) for p in SWEEP.points) or "(?!)",


use rule simulate_shard as sweep_simulate_shard with:
    output:
        "data/sweep/{point}/shards/{cls}/{shard}.h5",
    log:
        "logs/sweep_simulate_shard/{point}/{cls}/{shard}.log",
    benchmark:
        "logs/benchmark/sweep_simulate_shard/{point}/{cls}/{shard}.tsv"


use rule merge_class as sweep_merge_class with:
    input:
        sweep_shard_files,
    output:
        "data/sweep/{point}/{cls}.h5",
    log:
        "logs/sweep_merge_class/{point}/{cls}.log",
    benchmark:
        "logs/benchmark/sweep_merge_class/{point}/{cls}.tsv"


use rule fit_class as sweep_fit_class with:
    input:
        "data/sweep/{point}/{cls}.h5",
    output:
        "data/sweep/{point}/fits/{cls}.h5",
    log:
        "logs/sweep_fit_class/{point}/{cls}.log",
    benchmark:
        "logs/benchmark/sweep_fit_class/{point}/{cls}.tsv"


use rule class_features as sweep_class_features with:
    input:
        unpack(
            lambda wildcards: SWEEP.features_inputs(
                wildcards.point, wildcards.cls, wildcards.kind
            )
        ),
    output:
        "data/sweep/{point}/features/{kind}/{cls}.h5",
    log:
        "logs/sweep_class_features/{point}/{kind}/{cls}.log",
    benchmark:
        "logs/benchmark/sweep_class_features/{point}/{kind}/{cls}.tsv"


use rule split_dataset as sweep_split_dataset with:
    output:
        "data/sweep/{point}/split.json",
    log:
        "logs/sweep_split_dataset/{point}.log",
    benchmark:
        "logs/benchmark/sweep_split_dataset/{point}.tsv"


use rule train_model as sweep_train_model with:
    input:
        unpack(
            lambda wildcards: SWEEP.training_inputs(wildcards.point, wildcards.model)
        ),
    output:
        checkpoint="results/sweep/{point}/runs/{model}/seed_{seed}/checkpoint.pt",
        history="results/sweep/{point}/runs/{model}/seed_{seed}/history.csv",
        predictions="results/sweep/{point}/runs/{model}/seed_{seed}/predictions.csv",
        metrics="results/sweep/{point}/runs/{model}/seed_{seed}/metrics.json",
    log:
        "logs/sweep_train_model/{point}/{model}/seed_{seed}.log",
    benchmark:
        "logs/benchmark/sweep_train_model/{point}/{model}/seed_{seed}.tsv"


rule sweep_collect:
    input:
        metrics=SWEEP.metrics_files(),
        images=SWEEP.swept_class_files(),
        fits=SWEEP.swept_fit_files(),
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
        manifest=canonical_json(SWEEP.manifest()),
    shell:
        "python -m darklens sweep-collect --manifest {params.manifest:q} --output {output}"
        " > {log} 2>&1"


rule sensitivity_threshold:
    input:
        "results/sweep/sensitivity.csv",
    output:
        "results/sweep/sensitivity_threshold.csv",
    log:
        "logs/sensitivity_threshold/threshold.log",
    benchmark:
        "logs/benchmark/sensitivity_threshold/threshold.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        level=config["sweep"]["threshold_auc"],
        evaluation=canonical_json(
            {k: EVAL[k] for k in ("bootstrap_samples", "confidence")}
        ),
        seed=config["seed"],
    shell:
        "python -m darklens sweep-threshold --input {input} --level {params.level}"
        " --evaluation {params.evaluation:q} --seed {params.seed} --output {output} > {log} 2>&1"


rule sensitivity_curves:
    input:
        "results/sweep/sensitivity.csv",
        "results/sweep/sensitivity_threshold.csv",
    output:
        report(
            "results/figures/sensitivity.png",
            caption="../report/sensitivity.rst",
            category="4. Sensitivity",
            labels={"figure": f"AUC against {SWEEP.parameter}"},
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
