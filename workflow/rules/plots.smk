rule confusion_matrix:
    input:
        lambda wildcards: run_files("predictions.csv", model=wildcards.model),
    output:
        report(
            "results/confusion_matrix_{model}.png",
            caption="../report/confusion.rst",
            category="3. Confusion matrices",
            labels={"model": "{model}"},
        ),
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
        report(
            "results/training_curves.png",
            caption="../report/training_curves.rst",
            category="6. Training",
            labels={"figure": "training curves"},
        ),
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
        features=expand("data/features/residual/{cls}.h5", cls=CLASS_NAMES),
    output:
        report(
            "results/figures/samples.png",
            caption="../report/samples.rst",
            category="7. Data",
            labels={"figure": "sample images", "class": "all"},
        ),
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
        " --features {input.features} -- {input.images} > {log} 2>&1"


rule roc_curves:
    input:
        lambda wildcards: run_files("predictions.csv", model=wildcards.model),
    output:
        report(
            "results/roc_{model}.png",
            caption="../report/roc.rst",
            category="2. ROC curves",
            labels={"model": "{model}"},
        ),
    log:
        "logs/roc_curves/{model}.log",
    benchmark:
        "logs/benchmark/roc_curves/{model}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m darklens plot roc --title {wildcards.model} --output {output}"
        " {input} > {log} 2>&1"


rule accuracy_vs_substructure:
    input:
        predictions=run_files("predictions.csv"),
        images=expand("data/{cls}.h5", cls=CLASS_NAMES),
        # the signal left by a smooth refit (substructure_chi_refit) where images are fitted
        fits=(
            expand("data/fits/{cls}.h5", cls=CLASS_NAMES)
            if config["fitting"]["enabled"] and not IMPORT["root"]
            else []
        ),
    output:
        report(
            "results/figures/accuracy_vs_substructure.png",
            caption="../report/accuracy_vs_substructure.rst",
            category="4. Sensitivity",
            labels={"figure": "accuracy vs substructure signal"},
        ),
    log:
        "logs/accuracy_vs_substructure/figure.log",
    benchmark:
        "logs/benchmark/accuracy_vs_substructure/figure.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        "python -m darklens plot signal --output {output} --fits {input.fits}"
        " --images {input.images} -- {input.predictions} > {log} 2>&1"


rule attribution_maps:
    input:
        unpack(attribution_inputs),
    output:
        report(
            "results/figures/attribution_{model}.png",
            caption="../report/attribution.rst",
            category="5. Attribution",
            labels={"model": "{model}"},
        ),
    log:
        "logs/attribution_maps/{model}.log",
    benchmark:
        "logs/benchmark/attribution_maps/{model}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        per_class=EVAL["attribution_images_per_class"],
        features=features_option,
    shell:
        "OMP_NUM_THREADS={threads} python -m darklens attribution --checkpoint {input.checkpoint}"
        " --split {input.split} --per-class {params.per_class} --images {input.images}"
        " {params.features} --output {output} > {log} 2>&1"


rule gallery:
    input:
        unpack(psf_kernel_input),
        images="data/{cls}.h5",
    output:
        report(
            "results/figures/gallery_{cls}.png",
            caption="../report/gallery.rst",
            category="7. Data",
            labels={"figure": "gallery", "class": "{cls}"},
        ),
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
        seed=setting("seed"),
        common=simulation_json,
        class_settings=class_settings_json,
    shell:
        "OMP_NUM_THREADS={threads} python -m darklens gallery --class {wildcards.cls}"
        " --seed {params.seed} --common {params.common:q}"
        " --class-settings {params.class_settings:q} --n-images 4"
        " --images {input.images} --output {output} > {log} 2>&1"
