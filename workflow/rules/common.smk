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
from darklens.simulation.shards import n_shards

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
    from darklens.simulation.presets import resolve

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
    keys += ("mixed_precision",)
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
        *evaluation_outputs(),
        *gallery_outputs(),
    ]


# --- evaluation and the sensitivity sweep (darklens.reporting.summary, darklens.evaluation.sweep) ---
import json
import re

from darklens.evaluation.sweep import sweep_points, swept_class

EVAL = config["evaluation"]
for _model in [*EVAL["comparison"], EVAL["attribution_model"]]:
    if _model not in MODELS:
        raise WorkflowError(
            f"config error at evaluation: {_model!r} is not in training.models ({MODELS})"
        )
try:
    SWEEP = sweep_points(config)
except ConfigError as error:
    raise WorkflowError(str(error)) from None
SWEEP_MODELS = config["sweep"]["models"]
SWEEP_SEEDS = config["sweep"].get("seeds") or SEEDS


def evaluation_outputs():
    """Summary tables, ROC curves, accuracy against substructure signal and attribution maps."""
    return [
        "results/summary.md",
        *expand("results/roc_{model}.png", model=MODELS),
        "results/figures/accuracy_vs_substructure.png",
        f"results/figures/attribution_{EVAL['attribution_model']}.png",
        *(["results/figures/sensitivity.png"] if SWEEP else []),
    ]


def attribution_inputs(wildcards):
    inputs = {
        "checkpoint": f"results/runs/{wildcards.model}/seed_{SEEDS[0]}/checkpoint.pt",
        "images": expand("data/{cls}.h5", cls=CLASS_NAMES),
        "split": "data/split.json",
    }
    if uses_residual(wildcards.model):
        inputs["residuals"] = expand("data/features/{cls}.h5", cls=CLASS_NAMES)
    return inputs


def _sections(cfg, *names):
    return {name: cfg[name] for name in names}


def _common(cfg):
    return {k: v for k, v in cfg["simulation"].items() if k != "classes"}


def _same_class_data(point, cls):
    other = SWEEP[point]
    return (
        other["seed"] == config["seed"]
        and _common(other) == _common(config)
        and other["simulation"]["classes"][cls] == SIM["classes"][cls]
    )


def sweep_class_file(point, cls):
    """A point's images of a class: the main file unless the point changes them."""
    if _same_class_data(point, cls):
        return f"data/{cls}.h5"
    return f"data/sweep/{point}/{cls}.h5"


def sweep_features_file(point, cls):
    if _same_class_data(point, cls) and SWEEP[point]["features"] == config["features"]:
        return f"data/features/{cls}.h5"
    return f"data/sweep/{point}/features/{cls}.h5"


def sweep_split_file(point):
    keys = lambda c: (c["seed"], c["simulation"]["images_per_class"], c["split"])
    if keys(SWEEP[point]) == keys(config):
        return "data/split.json"
    return f"data/sweep/{point}/split.json"


def sweep_run_dir(point, model, seed):
    """A point's run directory: the main run when the point changes nothing training sees."""
    names = ("seed", "simulation", "features", "split", "training")
    if _sections(SWEEP[point], *names) == _sections(config, *names):
        return f"results/runs/{model}/seed_{seed}"
    return f"results/sweep/{point}/runs/{model}/seed_{seed}"


def sweep_shard_files(wildcards):
    sim = SWEEP[wildcards.point]["simulation"]
    shards = range(n_shards(sim["images_per_class"], sim["images_per_shard"]))
    return expand(
        "data/sweep/{point}/shards/{cls}/{shard}.h5",
        point=wildcards.point,
        cls=wildcards.cls,
        shard=shards,
    )


def sweep_training_inputs(wildcards):
    point = wildcards.point
    inputs = {
        "images": [sweep_class_file(point, cls) for cls in CLASS_NAMES],
        "split": sweep_split_file(point),
    }
    if uses_residual(wildcards.model):
        inputs["residuals"] = [sweep_features_file(point, cls) for cls in CLASS_NAMES]
    return inputs


def sweep_param(wildcards, what):
    """JSON (or value) of one section of a point's config for its rules' params."""
    cfg = SWEEP[wildcards.point]
    if what == "common":
        return canonical_json(_common(cfg))
    if what == "class_settings":
        return canonical_json(cfg["simulation"]["classes"][wildcards.cls])
    if what == "training":  # the keys of the main rule's training_json()
        keys = json.loads(training_json())
        return canonical_json({k: cfg["training"][k] for k in keys})
    if what == "residual_args":
        if not uses_residual(wildcards.model):
            return ""
        sigma = cfg["features"]["smoothing_sigma_px"]
        files = [sweep_features_file(wildcards.point, cls) for cls in CLASS_NAMES]
        return f"--residuals {' '.join(files)} --smoothing-sigma-px {sigma}"
    return cfg[what]


def sweep_metrics_files():
    return [
        f"{sweep_run_dir(point, model, seed)}/metrics.json"
        for point in SWEEP
        for model in SWEEP_MODELS
        for seed in SWEEP_SEEDS
    ]


def sweep_manifest():
    """What `darklens sweep-collect` needs: points, values, the swept class's file, runs."""
    parameter = config["sweep"]["parameter"]
    cls = swept_class(parameter)
    points = []
    for point, value in zip(SWEEP, config["sweep"]["values"]):
        runs = [
            {
                "model": model,
                "seed": seed,
                "metrics": f"{sweep_run_dir(point, model, seed)}/metrics.json",
            }
            for model in SWEEP_MODELS
            for seed in SWEEP_SEEDS
        ]
        points.append(
            {
                "point": point,
                "value": value,
                "class_file": sweep_class_file(point, cls) if cls else None,
                "runs": runs,
            }
        )
    return canonical_json({"parameter": parameter, "class": cls, "points": points})


def sweep_class_files():
    cls = swept_class(config["sweep"]["parameter"])
    return [sweep_class_file(point, cls) for point in SWEEP] if cls else []


# --- own images instead of simulated ones, GPUs and training memory (docs/issue5.md) ---
IMPORT = config["import"]


def import_folder(cls):
    """The folder of a class's .npy images: {import.root}/{import.folders[cls] or cls}."""
    return str(Path(IMPORT["root"]) / IMPORT["folders"].get(cls, cls))


if IMPORT["root"]:
    for _cls in CLASS_NAMES:
        if not Path(import_folder(_cls)).is_dir():
            raise WorkflowError(
                f"config error at import.root: no folder {import_folder(_cls)} for class {_cls}"
            )
    _sweep = config.get("sweep", {})
    if _sweep.get("enabled") and _sweep.get("parameter", "").startswith("simulation"):
        raise WorkflowError(
            "config error at sweep.enabled: imported images have no simulation settings to "
            "sweep; set sweep.enabled: false (or sweep a features./training. key)"
        )


def import_files(wildcards):
    """Every .npy image of the class (inputs, so that a changed file reruns the import)."""
    return sorted(str(p) for p in Path(import_folder(wildcards.cls)).glob("*.npy"))


def training_gpus():
    """GPUs a training job holds: 1 for device cuda, or auto with an NVIDIA GPU here; else 0.
    Local runs share GPUs through `--resources gpu=N` (profiles/default declares 1)."""
    from darklens.learning.devices import nvidia_gpu_count

    device = config["training"]["device"]
    if device == "auto":
        return min(nvidia_gpu_count(), 1)
    return int(device == "cuda")


def training_set_shape(model):
    """(images, channels, side in px) of a model's training set, from the config."""
    channels = len(model_spec(model)["channels"])
    if not IMPORT["root"]:
        return 3 * SIM["images_per_class"], channels, SIM["instrument"]["n_pix"]
    from darklens.io.npy import load_image

    n, side = 0, 0
    for cls in CLASS_NAMES:
        files = sorted(Path(import_folder(cls)).glob("*.npy"))
        n += len(files)
        if files and not side:
            side = load_image(files[0], IMPORT["allow_pickle"]).shape[0]
    return n, channels, side


def training_mem_mb(wildcards, attempt):
    """Memory of a training job: the float32 training set, once, plus the process (measured in
    docs/issue5.md); doubled on each retry."""
    n, channels, side = training_set_shape(wildcards.model)
    data_mb = n * channels * side * side * 4 / 2**20
    return int((1500 + 1.2 * data_mb) * attempt)
