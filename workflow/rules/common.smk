# All the Python of the workflow: config validation, wildcard constraints, input functions and
# the per-rule parameter views (each rule sees only the config it depends on).
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
from darklens.simulate import n_shards

try:
    _validated = validate_config(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None
config.clear()
config.update(_validated)

SIM = config["simulation"]
MODELS = list(config["training"]["models"])
SEEDS = config["training"]["seeds"]
SHARDS = list(range(n_shards(SIM["images_per_class"], SIM["images_per_shard"])))


wildcard_constraints:
    cls="|".join(CLASS_NAMES),
    shard=r"\d+",
    model="|".join(MODELS),
    seed=r"\d+",


def simulation_common_json():
    """The simulation settings shared by all classes (everything but `classes`)."""
    return canonical_json({k: v for k, v in SIM.items() if k != "classes"})


def class_settings_json(cls):
    return canonical_json(SIM["classes"][cls])


def psf_kernel_input(wildcards):
    """The pixelated PSF kernel file, when the (preset-resolved) config names one."""
    from darklens.presets import resolve

    common = resolve({k: v for k, v in SIM.items() if k != "classes"})[0]
    path = common["instrument"].get("psf_kernel_file")
    return {"psf_kernel": path} if path else {}


def gallery_outputs():
    """One gallery figure per class (simulated data only: it re-simulates the images)."""
    if config.get("import", {}).get("root"):
        return []
    return expand("results/figures/gallery_{cls}.png", cls=CLASS_NAMES)


def shard_files(wildcards):
    return expand("data/shards/{cls}/{shard}.h5", cls=wildcards.cls, shard=SHARDS)


def model_spec(model):
    if model not in config["training"]["models"]:
        raise ValueError(f"unknown model {model!r}; configured: {MODELS}")
    return config["training"]["models"][model]


def uses_residual(model):
    return "residual" in model_spec(model)["channels"]


def training_inputs(wildcards):
    inputs = {
        "images": expand("data/{cls}.h5", cls=CLASS_NAMES),
        "split": "data/split.json",
    }
    if uses_residual(wildcards.model):
        inputs["residuals"] = expand("data/features/{cls}.h5", cls=CLASS_NAMES)
    return inputs


def training_json():
    keys = ("epochs", "batch_size", "learning_rate", "weight_decay", "device")
    return canonical_json({k: config["training"][k] for k in keys})


def residual_args(wildcards, input):
    if not uses_residual(wildcards.model):
        return ""
    sigma = config["features"]["smoothing_sigma_px"]
    return f"--residuals {' '.join(input.residuals)} --smoothing-sigma-px {sigma}"


def run_files(name, model=None):
    return expand(
        "results/runs/{model}/seed_{seed}/{name}",
        model=[model] if model else MODELS,
        seed=SEEDS,
        name=name,
    )


def all_outputs():
    return [
        "results/metrics.csv",
        "results/training_curves.png",
        "results/figures/samples.png",
        *expand("results/confusion_matrix_{model}.png", model=MODELS),
        *run_files("checkpoint.pt"),
        *gallery_outputs(),
    ]
