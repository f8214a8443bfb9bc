# darklens: simulate strong-lensing images of three dark-matter classes, build residual features,
# train baseline and physics-informed CNNs, and evaluate them. Rules live in workflow/rules/.
from snakemake.utils import min_version

min_version("9.27")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/import.smk"
include: "workflow/rules/fit.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/controls.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/sweep.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
