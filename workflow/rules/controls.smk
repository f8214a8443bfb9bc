# Shortcut controls (darklens.learning.controls, docs/evaluation.md): a logistic regression on
# simple features of each image, trained on the runs' split, for each control in
# evaluation.controls (`nuisance` and `fit_chi2` only where there are fits). Deterministic: no seed. The C grid
# is the code's; no config setting changes the numbers, so params carry only the fit files.


rule train_control:
    input:
        unpack(control_inputs),
    output:
        predictions="results/controls/{control}/predictions.csv",
        metrics="results/controls/{control}/metrics.json",
    log:
        "logs/train_control/{control}.log",
    benchmark:
        "logs/benchmark/train_control/{control}.tsv"
    wildcard_constraints:
        control="radial_profile|nuisance|fit_chi2",
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=control_mem_mb,
        runtime=30,
    params:
        fits=fits_option,
        out_dir=subpath(output.metrics, parent=True),
    shell:
        "OMP_NUM_THREADS={threads} python -m darklens control --control {wildcards.control}"
        " --split {input.split} --images {input.images} {params.fits}"
        " --out-dir {params.out_dir} > {log} 2>&1"
