# The features files of a class (darklens.features.files, docs/features.md), one per kind so that
# a change reruns only what depends on it: `residual` (the Gaussian residual; its params carry
# the smoothing), `lens_model` (fit_residual, source_plane, source_residual; its input is the fit
# file) and `oracle` (oracle_residual, from the class file's true smooth models). Only the kinds
# some model reads are made.
rule class_features:
    input:
        unpack(features_inputs),
    output:
        "data/features/{kind}/{cls}.h5",
    log:
        "logs/class_features/{kind}/{cls}.log",
    benchmark:
        "logs/benchmark/class_features/{kind}/{cls}.tsv"
    wildcard_constraints:
        kind="residual|lens_model|oracle",
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        smoothing=smoothing_option,
        fit=fit_option,
    shell:
        "python -m darklens features --kind {wildcards.kind} --input {input.images}"
        " {params.fit} {params.smoothing} --output {output} > {log} 2>&1"
