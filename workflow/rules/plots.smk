rule confusion_matrix:
    input:
        lambda wildcards: run_files("predictions.csv", model=wildcards.model),
    output:
        "results/confusion_matrix_{model}.png",
    log:
        "logs/confusion_matrix/{model}.log",
    benchmark:
        "logs/benchmark/confusion_matrix/{model}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m darklens plot confusion --title {wildcards.model} --output {output}"
        " {input} > {log} 2>&1"


rule training_curves:
    input:
        run_files("history.csv"),
    output:
        "results/training_curves.png",
    log:
        "logs/training_curves/curves.log",
    benchmark:
        "logs/benchmark/training_curves/curves.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m darklens plot curves --output {output} {input} > {log} 2>&1"


rule sample_images:
    input:
        images=expand("data/{cls}.h5", cls=CLASS_NAMES),
        residuals=expand("data/features/{cls}.h5", cls=CLASS_NAMES),
    output:
        "results/figures/samples.png",
    log:
        "logs/sample_images/samples.log",
    benchmark:
        "logs/benchmark/sample_images/samples.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m darklens plot samples --output {output}"
        " --residuals {input.residuals} -- {input.images} > {log} 2>&1"


rule gallery:
    input:
        unpack(psf_kernel_input),
        images="data/{cls}.h5",
    output:
        "results/figures/gallery_{cls}.png",
    log:
        "logs/gallery/{cls}.log",
    benchmark:
        "logs/benchmark/gallery/{cls}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        seed=config["seed"],
        common=lambda wildcards: simulation_common_json(),
        class_settings=lambda wildcards: class_settings_json(wildcards.cls),
    shell:
        "OMP_NUM_THREADS={threads} python -m darklens gallery --class {wildcards.cls}"
        " --seed {params.seed} --common {params.common:q}"
        " --class-settings {params.class_settings:q} --n-images 4"
        " --images {input.images} --output {output} > {log} 2>&1"
