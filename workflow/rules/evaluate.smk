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
        epochs=config["training"]["epochs"],
        controls=controls_option,
    shell:
        "python -m darklens summarize --models {params.models:q}"
        " --evaluation {params.evaluation:q} --seed {params.seed} --epochs {params.epochs}"
        " {params.controls} --csv {output.csv} --comparisons {output.comparisons} --md {output.md}"
        " --html {output.html} {input.predictions} > {log} 2>&1"
