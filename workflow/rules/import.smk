# Own images instead of simulated ones (config `import`): these rules replace merge_class and
# split_dataset when import.root is set; everything downstream is unchanged.
if IMPORT["root"]:

    ruleorder: import_class > merge_class
    ruleorder: split_classes > split_dataset

    rule import_class:
        input:
            import_class_folder,
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
            # memory is bounded by a chunk (1,024 files, at most 256 MiB of float32): 30,000
            # files of 150 x 150 px peaked at 159 MiB; 600 MB also holds the 256 MiB chunks of
            # larger images (docs/own-data-and-prediction.md)
            mem_mb=600,
            runtime=30,
        params:
            files=import_listing,
            units=import_units_args,
            allow_pickle="--allow-pickle" if IMPORT["allow_pickle"] else "",
        shell:
            "python -m darklens import --class {wildcards.cls} --folder {input:q}"
            " {params.units} {params.allow_pickle} --output {output} > {log} 2>&1"

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
