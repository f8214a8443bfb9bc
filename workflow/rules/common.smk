# The workflow's config, wildcard constraints, input functions and per-rule parameter views (each
# rule sees only the config it depends on). Checks and planning live in the package, with tests,
# in darklens.config (validation, config views) and darklens.evaluation.sweep (a sweep's files).
import json
import re
import sys
from pathlib import Path

# Rules run `python -m darklens` from this checkout (also inside conda envs and cluster jobs).
DARKLENS_SRC = str(Path(workflow.basedir) / "workflow")
sys.path.insert(0, DARKLENS_SRC)
shell.prefix(
    f'set -euo pipefail; export PYTHONPATH="{DARKLENS_SRC}:${{{{PYTHONPATH:-}}}}"; '
)

from darklens import CLASS_NAMES
from darklens.config import ConfigError, canonical_json, validate_config
from darklens.config import check_workflow_config, import_folder
from darklens.config import simulation_common, training_settings
from darklens.evaluation.sweep import SweepPlan
from darklens.learning import devices
from darklens.simulation.shards import n_shards

try:
    _validated = validate_config(config)
    check_workflow_config(_validated, CLASS_NAMES)
    SWEEP = SweepPlan(_validated, CLASS_NAMES)  # the sensitivity sweep: points, files
except ConfigError as error:
    raise WorkflowError(str(error)) from None
config.clear()
config.update(_validated)

SIM, EVAL, IMPORT = config["simulation"], config["evaluation"], config["import"]
MODELS = list(config["training"]["models"])
SEEDS = config["training"]["seeds"]
SHARDS = list(range(n_shards(SIM["images_per_class"], SIM["images_per_shard"])))


wildcard_constraints:
    cls="|".join(CLASS_NAMES),
    shard=r"\d+",
    model="|".join(MODELS),
    seed=r"\d+",


# --- parameters: a job's config, for a sweep job (wildcard `point`) its point's ---
def point_config(wildcards):
    return SWEEP.points[wildcards.point] if "point" in wildcards.keys() else config


def setting(*keys, as_json=False):
    """A param: the config value at keys (e.g. "split", "fractions"), optionally as JSON."""

    def value(wildcards):
        node = point_config(wildcards)
        for key in keys:
            node = node[key]
        return canonical_json(node) if as_json else node

    return value


def simulation_json(wildcards):
    """The simulation settings shared by all classes (everything but `classes`)."""
    return canonical_json(simulation_common(point_config(wildcards)))


def class_settings_json(wildcards):
    return canonical_json(
        point_config(wildcards)["simulation"]["classes"][wildcards.cls]
    )


def training_json(wildcards):
    return canonical_json(training_settings(point_config(wildcards)))


def residuals_option(wildcards, input):
    """`--residuals FILES` when the job's inputs hold residuals, else nothing."""
    if "residuals" not in input.keys():
        return ""
    return f"--residuals {' '.join(input.residuals)}"


def residual_args(wildcards, input):
    """`--residuals FILES --smoothing-sigma-px S` of a training job with residuals."""
    if "residuals" not in input.keys():
        return ""  # an image-only model
    sigma = point_config(wildcards)["features"]["smoothing_sigma_px"]
    return f"{residuals_option(wildcards, input)} --smoothing-sigma-px {sigma}"


def model_spec(model):
    if model not in config["training"]["models"]:
        raise ValueError(f"unknown model {model!r}; configured: {MODELS}")
    return config["training"]["models"][model]


# --- inputs and targets ---
def psf_kernel_input(wildcards):
    """The pixelated PSF kernel file, when the (preset-resolved) config names one."""
    from darklens.simulation.presets import resolve

    common = resolve(simulation_common(point_config(wildcards)))[0]
    path = common["instrument"].get("psf_kernel_file")
    return {"psf_kernel": path} if path else {}


def shard_files(wildcards):
    return expand("data/shards/{cls}/{shard}.h5", cls=wildcards.cls, shard=SHARDS)


def sweep_shard_files(wildcards):
    sim = SWEEP.points[wildcards.point]["simulation"]
    count = n_shards(sim["images_per_class"], sim["images_per_shard"])
    return SWEEP.shard_files(wildcards.point, wildcards.cls, count)


def training_inputs(wildcards):
    inputs = {
        "images": expand("data/{cls}.h5", cls=CLASS_NAMES),
        "split": "data/split.json",
    }
    if "residual" in model_spec(wildcards.model)["channels"]:
        inputs["residuals"] = expand("data/features/{cls}.h5", cls=CLASS_NAMES)
    return inputs


def attribution_inputs(wildcards):
    run_dir = f"results/runs/{wildcards.model}/seed_{SEEDS[0]}"
    return {"checkpoint": f"{run_dir}/checkpoint.pt", **training_inputs(wildcards)}


def import_class_folder(wildcards):
    """The class's folder of .npy images (the import's input: one path, however many files)."""
    return import_folder(config, wildcards.cls)


def import_listing(wildcards):
    """A param: digest of the names, sizes and mtimes of the class's .npy files, so that an
    added, removed or rewritten file reruns the import (Snakemake's params trigger)."""
    from darklens.io.npy import listing_digest

    return listing_digest(import_folder(config, wildcards.cls))


def import_units_args(wildcards):
    """`--units U` of the import, with `--exposure-time-s T` for counts."""
    if IMPORT["units"] != "counts":
        return f"--units {IMPORT['units']}"
    return f"--units counts --exposure-time-s {IMPORT['exposure_time_s']!r}"


def run_files(name, model=None):
    return expand(
        "results/runs/{model}/seed_{seed}/{name}",
        model=[model] if model else MODELS,
        seed=SEEDS,
        name=name,
    )


def all_outputs():
    """Runs, tables and figures; with simulated data a gallery per class; with a sweep its curve."""
    return [
        "results/metrics.csv",
        "results/training_curves.png",
        "results/figures/samples.png",
        *expand("results/confusion_matrix_{model}.png", model=MODELS),
        *run_files("checkpoint.pt"),
        "results/summary.md",
        *expand("results/roc_{model}.png", model=MODELS),
        "results/figures/accuracy_vs_substructure.png",
        f"results/figures/attribution_{EVAL['attribution_model']}.png",
        *(["results/figures/sensitivity.png"] if SWEEP.points else []),
        *(
            []
            if IMPORT["root"]
            else expand("results/figures/gallery_{cls}.png", cls=CLASS_NAMES)
        ),
        *(
            expand("data/fits/{cls}.h5", cls=CLASS_NAMES)  # workflow/rules/fit.smk
            if config["fitting"]["enabled"] and not IMPORT["root"]
            else []
        ),
    ]


# --- resources: GPUs and training memory (docs/clusters-and-gpus.md, docs/training.md) ---
def training_gpus():
    """GPUs a training job holds (darklens.learning.devices.training_gpus). Local runs share
    GPUs through `--resources gpu=N` (profiles/default declares 1)."""
    return devices.training_gpus(config["training"]["device"])


def training_mem_mb(wildcards, attempt):
    """Memory of a training job, from its own (main or sweep point) config."""
    channels = len(model_spec(wildcards.model)["channels"])
    return devices.training_memory_mb(point_config(wildcards), channels, attempt)
