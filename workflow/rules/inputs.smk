# Input functions and the targets of `rule all` (common.smk holds the config they read).
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
    # every channel but the image is a plane of a features file (darklens.features.files)
    kinds = feature_kinds(model_spec(wildcards.model)["channels"])
    if kinds:
        inputs["features"] = expand(
            "data/features/{kind}/{cls}.h5", kind=kinds, cls=CLASS_NAMES
        )
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


# --- shortcut controls (workflow/rules/controls.smk, darklens.learning.controls) ---
def fits_available():
    """Whether data/fits/{cls}.h5 exist: fitting enabled (where the config has a `fitting`
    section; without one there is no fitter) and the classes simulated, not imported."""
    return bool(config.get("fitting", {}).get("enabled", False)) and not IMPORT["root"]


# evaluation.controls, less those made from the fits where there are none to train them on
CONTROLS = [
    c for c in EVAL["controls"] if c not in ("nuisance", "fit_chi2") or fits_available()
]


def control_files(name):
    return expand("results/controls/{control}/{name}", control=CONTROLS, name=name)


def control_inputs(wildcards):
    inputs = {
        "images": expand("data/{cls}.h5", cls=CLASS_NAMES),
        "split": "data/split.json",
    }
    if wildcards.control in ("nuisance", "fit_chi2"):
        inputs["fits"] = expand("data/fits/{cls}.h5", cls=CLASS_NAMES)
    return inputs


def fits_option(wildcards, input):
    """`--fits FILES` of a control job whose inputs hold fit files, else nothing."""
    return f"--fits {' '.join(input.fits)}" if "fits" in input.keys() else ""


def controls_option(wildcards, input):
    """`--controls FILES` of the summary when there are controls, else nothing."""
    paths = list(input.controls) if "controls" in input.keys() else []
    return f"--controls {' '.join(paths)}" if paths else ""


def sensitivity_option(wildcards, input):
    """`--sensitivity FILE` of the summary when there is a sweep (its threshold table)."""
    paths = list(input.sensitivity) if "sensitivity" in input.keys() else []
    return f"--sensitivity {paths[0]}" if paths else ""


# --- features (workflow/rules/features.smk, darklens.features) ---
from darklens.config import feature_kinds


def features_inputs(wildcards):
    """The class file, and for the lens_model kind its fit file."""
    inputs = {"images": f"data/{wildcards.cls}.h5"}
    if wildcards.kind == "lens_model":
        inputs["fit"] = f"data/fits/{wildcards.cls}.h5"
    return inputs


def smoothing_option(wildcards):
    """A param: `--smoothing-sigma-px S` for the residual kind only (what it depends on)."""
    if wildcards.kind != "residual":
        return ""
    return f"--smoothing-sigma-px {point_config(wildcards)['features']['smoothing_sigma_px']}"


def fit_option(wildcards, input):
    """`--fit FILE` when the job's inputs hold a fit file, else nothing."""
    return f"--fit {input.fit}" if "fit" in input.keys() else ""
