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
