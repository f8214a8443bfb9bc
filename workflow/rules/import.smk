# Own images instead of simulated ones (config `import`): these rules replace merge_class and
# split_dataset when import.root is set; everything downstream is unchanged.
if IMPORT["root"]:

    ruleorder: import_class > merge_class
    ruleorder: split_classes > split_dataset

    rule import_class:
        input:
            import_files,
        output:
            "data/{cls}.h5",
        log:
            "logs/import_class/{cls}.log",
        benchmark:
            "logs/benchmark/import_class/{cls}.tsv"
        conda:
            "../../envs/darklens.yaml"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        params:
            folder=lambda wildcards: import_folder(config, wildcards.cls),
            allow_pickle="--allow-pickle" if IMPORT["allow_pickle"] else "",
        shell:
            "python -m darklens import --class {wildcards.cls} --folder {params.folder:q}"
            " {params.allow_pickle} --output {output} > {log} 2>&1"

    rule split_classes:
        input:
            expand("data/{cls}.h5", cls=CLASS_NAMES),
        output:
            "data/split.json",
        log:
            "logs/split_classes/split.log",
        benchmark:
            "logs/benchmark/split_classes/split.tsv"
        conda:
            "../../envs/darklens.yaml"
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        params:
            seed=config["seed"],
            fractions=canonical_json(config["split"]["fractions"]),
        shell:
            "python -m darklens split-files --fractions {params.fractions:q}"
            " --seed {params.seed} --output {output} {input} > {log} 2>&1"
