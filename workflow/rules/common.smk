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


def _feature_files(input):
    """The features files among a job's inputs (key `features`)."""
    return list(input.features) if "features" in input.keys() else []


def features_option(wildcards, input):
    """`--features FILES` when the job's inputs hold features files, else nothing."""
    files = _feature_files(input)
    return f"--features {' '.join(files)}" if files else ""


def features_args(wildcards, input):
    """`--features FILES [--smoothing-sigma-px S]` of a training job with features files; the
    smoothing only where the model has the Gaussian residual channel (it is kept for
    prediction)."""
    if not _feature_files(input):
        return ""  # an image-only model
    args = features_option(wildcards, input)
    if "residual" in model_spec(wildcards.model)["channels"]:
        sigma = point_config(wildcards)["features"]["smoothing_sigma_px"]
        args += f" --smoothing-sigma-px {sigma}"
    return args


def model_spec(model):
    if model not in config["training"]["models"]:
        raise ValueError(f"unknown model {model!r}; configured: {MODELS}")
    return config["training"]["models"][model]
