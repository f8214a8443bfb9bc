rule collect_metrics:
    input:
        run_files("metrics.json"),
    output:
        "results/metrics.csv",
    log:
        "logs/collect_metrics/metrics.log",
    benchmark:
        "logs/benchmark/collect_metrics/metrics.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    shell:
        "python -m darklens evaluate --output {output} {input} > {log} 2>&1"


rule summarize:
    input:
        predictions=run_files("predictions.csv"),
        metrics=run_files("metrics.json"),
        controls=control_files("predictions.csv"),
        control_metrics=control_files("metrics.json"),
        sensitivity=SWEEP.threshold_files(),  # with a sweep: its threshold block
    output:
        csv="results/summary.csv",
        comparisons="results/comparisons.csv",
        md="results/summary.md",
        html=report(
            "results/summary.html",
            caption="../report/summary.rst",
            category="1. Summary",
            labels={"table": "summary"},
        ),
    log:
        "logs/summarize/summary.log",
    benchmark:
        "logs/benchmark/summarize/summary.tsv"
    conda:
        "../../envs/darklens.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        models=json.dumps(config["training"]["models"], separators=(",", ":")),
        evaluation=canonical_json(EVAL),
        seed=config["seed"],
        max_epochs=config["training"]["max_epochs"],
        controls=controls_option,
        sensitivity=sensitivity_option,
    shell:
        "python -m darklens summarize --models {params.models:q}"
        " --evaluation {params.evaluation:q} --seed {params.seed} --max-epochs {params.max_epochs}"
        " {params.controls} --csv {output.csv} --comparisons {output.comparisons} --md {output.md}"
        " --html {output.html} {params.sensitivity} {input.predictions} > {log} 2>&1"
