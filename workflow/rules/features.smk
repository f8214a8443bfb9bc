# The features file of a class (darklens.features.files, docs/features.md): the Gaussian residual
# always; with a fit file the lens-model planes fit_residual, source_plane and source_residual;
# oracle_residual where the class file stores its true smooth models. The fit file is an input
# only where fits exist (fits_available()) and a model uses a lens-model channel, so that the
# features of residual-only runs neither wait for nor rerun with the fits.
rule class_features:
    input:
        unpack(features_inputs),
    output:
        "data/features/{cls}.h5",
    log:
        "logs/class_features/{cls}.log",
    benchmark:
        "logs/benchmark/class_features/{cls}.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        smoothing_sigma_px=setting("features", "smoothing_sigma_px"),
        fit=fit_option,
    shell:
        "python -m darklens features --input {input.images} {params.fit} --output {output}"
        " --smoothing-sigma-px {params.smoothing_sigma_px} > {log} 2>&1"
