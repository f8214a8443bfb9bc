rule train_model:
    input:
        unpack(training_inputs),
    output:
        checkpoint="results/runs/{model}/seed_{seed}/checkpoint.pt",
        history="results/runs/{model}/seed_{seed}/history.csv",
        predictions="results/runs/{model}/seed_{seed}/predictions.csv",
        metrics="results/runs/{model}/seed_{seed}/metrics.json",
    log:
        "logs/train_model/{model}/seed_{seed}.log",
    benchmark:
        "logs/benchmark/train_model/{model}/seed_{seed}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=training_mem_mb,
        runtime=120,
        gpu=training_gpus(),
    params:
        spec=lambda wildcards: canonical_json(model_spec(wildcards.model)),
        training=training_json,
        features_args=features_args,
        out_dir=subpath(output.metrics, parent=True),
    shell:
        "python -m darklens train --model {wildcards.model} --model-spec {params.spec:q}"
        " --training {params.training:q} --seed {wildcards.seed} --split {input.split}"
        " --images {input.images} {params.features_args} --threads {threads}"
        " --out-dir {params.out_dir} > {log} 2>&1"
