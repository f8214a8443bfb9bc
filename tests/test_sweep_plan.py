"""Sweep planning (darklens.evaluation.sweep.SweepPlan): which main files each point reuses, its
own files, its training inputs and the manifest of `darklens sweep-collect`."""

import copy

import pytest
from darklens import CLASS_NAMES
from darklens.config import ConfigError, validate_config
from darklens.evaluation.sweep import SweepPlan

MAIN_CLASS_FILES = [f"data/{cls}.h5" for cls in CLASS_NAMES]
MAIN_FEATURES = [f"data/features/residual/{cls}.h5" for cls in CLASS_NAMES]
MAIN_LENS_FEATURES = [f"data/features/lens_model/{cls}.h5" for cls in CLASS_NAMES]


def plan(config: dict, **sweep) -> SweepPlan:
    config = copy.deepcopy(config)
    config["sweep"] = {"enabled": True, **sweep}
    return SweepPlan(validate_config(config), CLASS_NAMES)


def class_files(sweep: SweepPlan, point: str) -> list[str]:
    return [sweep.class_file(point, cls) for cls in CLASS_NAMES]


def features_files(sweep: SweepPlan, point: str, kind: str = "residual") -> list[str]:
    return [sweep.features_file(point, cls, kind) for cls in CLASS_NAMES]


def test_a_cdm_setting_resimulates_only_cdm(tiny_config):
    """tests/tiny.yaml: n_subhalos.mean is 10 in the main config, so point 10 reuses everything."""
    sweep = plan(tiny_config, parameter="simulation.classes.cdm.n_subhalos.mean", values=[2, 10])
    assert list(sweep.points) == ["2", "10"]
    assert class_files(sweep, "2") == ["data/no_sub.h5", "data/sweep/2/cdm.h5", "data/axion.h5"]
    assert features_files(sweep, "2", "lens_model") == [
        "data/features/lens_model/no_sub.h5",
        "data/sweep/2/features/lens_model/cdm.h5",
        "data/features/lens_model/axion.h5",
    ]
    assert sweep.split_file("2") == "data/split.json"
    assert sweep.run_dir("2", "physics", 0) == "results/sweep/2/runs/physics/seed_0"
    assert class_files(sweep, "10") == MAIN_CLASS_FILES
    assert features_files(sweep, "10") == MAIN_FEATURES
    assert sweep.run_dir("10", "physics", 1) == "results/runs/physics/seed_1"
    assert sweep.swept_class_files() == ["data/sweep/2/cdm.h5", "data/cdm.h5"]


def test_a_features_setting_reuses_the_images_and_the_split(tiny_config):
    sweep = plan(tiny_config, parameter="features.smoothing_sigma_px", values=[1.5, 3.0])
    assert list(sweep.points) == ["1.5", "3"]
    assert class_files(sweep, "3") == MAIN_CLASS_FILES
    assert features_files(sweep, "3") == [
        f"data/sweep/3/features/residual/{c}.h5" for c in CLASS_NAMES
    ]
    # the smoothing changes only the residual kind: the lens-model planes are the main ones
    assert features_files(sweep, "3", "lens_model") == MAIN_LENS_FEATURES
    assert sweep.split_file("3") == "data/split.json"
    assert sweep.run_dir("3", "baseline", 0) == "results/sweep/3/runs/baseline/seed_0"
    assert features_files(sweep, "1.5") == MAIN_FEATURES  # the main value
    assert sweep.run_dir("1.5", "baseline", 0) == "results/runs/baseline/seed_0"
    assert sweep.swept_class is None and sweep.swept_class_files() == []


def test_a_training_setting_retrains_on_the_main_data(tiny_config):
    sweep = plan(tiny_config, parameter="training.max_epochs", values=[5])
    assert sweep.training_inputs("5", "physics") == {
        "images": MAIN_CLASS_FILES,
        "split": "data/split.json",
        "features": MAIN_LENS_FEATURES,  # physics: image + fit_residual
    }
    assert sweep.run_dir("5", "physics", 0) == "results/sweep/5/runs/physics/seed_0"


def test_a_common_setting_resimulates_every_class_and_resplits(tiny_config):
    sweep = plan(tiny_config, parameter="simulation.images_per_class", values=[60])
    assert class_files(sweep, "60") == [f"data/sweep/60/{c}.h5" for c in CLASS_NAMES]
    assert sweep.split_file("60") == "data/sweep/60/split.json"
    assert sweep.shard_files("60", "cdm", 3) == [
        f"data/sweep/60/shards/cdm/{shard}.h5" for shard in range(3)
    ]


def test_only_models_with_more_than_the_image_read_features(tiny_config):
    sweep = plan(tiny_config, parameter="simulation.instrument.psf_fwhm_arcsec", values=[0.3])
    inputs = sweep.training_inputs("0.3", "baseline")
    assert inputs == {
        "images": [f"data/sweep/0.3/{c}.h5" for c in CLASS_NAMES],
        "split": "data/split.json",
    }
    kinds = {"physics": "lens_model", "seed_recipe": "residual", "lens_planes": "lens_model"}
    for model, kind in kinds.items():  # a model reads the kinds its channels are in, no more
        features = sweep.training_inputs("0.3", model)["features"]
        assert features == [f"data/sweep/0.3/features/{kind}/{c}.h5" for c in CLASS_NAMES]
    oracle = sweep.training_inputs("0.3", "oracle")["features"]
    assert oracle == [f"data/sweep/0.3/features/oracle/{c}.h5" for c in CLASS_NAMES]


def test_manifest_lists_every_run_of_every_point(tiny_config):
    sweep = plan(
        tiny_config,
        parameter="simulation.classes.cdm.n_subhalos.mean",
        values=[2, 10],
        models=["baseline"],  # no seeds: the sweep's seeds default to training.seeds
    )
    assert sweep.seeds == tiny_config["training"]["seeds"] == [0, 1]
    manifest = sweep.manifest()
    assert manifest["parameter"] == "simulation.classes.cdm.n_subhalos.mean"
    assert manifest["class"] == "cdm"
    assert [(p["point"], p["value"], p["class_file"]) for p in manifest["points"]] == [
        ("2", 2, "data/sweep/2/cdm.h5"),
        ("10", 10, "data/cdm.h5"),
    ]
    assert manifest["points"][0]["runs"] == [
        {
            "model": "baseline",
            "seed": s,
            "metrics": f"results/sweep/2/runs/baseline/seed_{s}/metrics.json",
        }
        for s in (0, 1)
    ]
    runs = [run["metrics"] for point in manifest["points"] for run in point["runs"]]
    assert sweep.metrics_files() == runs
    assert runs[2:] == [f"results/runs/baseline/seed_{s}/metrics.json" for s in (0, 1)]


def test_disabled_sweep_plans_nothing(tiny_config):
    config = copy.deepcopy(tiny_config)
    config["sweep"]["enabled"] = False
    sweep = SweepPlan(config, CLASS_NAMES)
    assert sweep.points == {} and sweep.metrics_files() == [] and sweep.swept_class_files() == []
    assert sweep.manifest()["points"] == []


def test_plan_raises_the_sweep_errors(tiny_config):
    with pytest.raises(ConfigError, match="sweep.models: 'vit'"):
        plan(tiny_config, parameter="training.max_epochs", values=[3], models=["vit"])


def test_fit_files_follow_the_class_files(tiny_config):
    """A point that re-simulates cdm refits it; one that reuses the main images reuses the main
    fits; without fitting (or with imported images) no fit file is planned."""
    sweep = plan(tiny_config, parameter="simulation.classes.cdm.n_subhalos.mean", values=[2, 10])
    assert sweep.with_fits
    assert [sweep.fit_file("2", c) for c in CLASS_NAMES] == [
        "data/fits/no_sub.h5",
        "data/sweep/2/fits/cdm.h5",
        "data/fits/axion.h5",
    ]
    assert sweep.swept_fit_files() == ["data/sweep/2/fits/cdm.h5", "data/fits/cdm.h5"]
    assert [p["fit_file"] for p in sweep.manifest()["points"]] == sweep.swept_fit_files()
    no_fits = copy.deepcopy(tiny_config)
    no_fits["fitting"]["enabled"] = False
    sweep = plan(no_fits, parameter="simulation.classes.cdm.n_subhalos.mean", values=[2, 10])
    assert not sweep.with_fits and sweep.swept_fit_files() == []
    assert [p["fit_file"] for p in sweep.manifest()["points"]] == [None, None]


def test_a_mass_scale_sweep_of_two_keys(tiny_config):
    """Both mass keys set together (tests/tiny.yaml's form): the point equal to the main masses
    reuses every main file and run; the other re-simulates, refits and retrains cdm only. The
    manifest's x is the first key's value, with every key's setting alongside."""
    keys = ["simulation.classes.cdm.mass_max_msun", "simulation.classes.cdm.mass_min_msun"]
    sweep = plan(tiny_config, parameter=keys, values=[[3.0e10, 1.0e9], [3.0e9, 1.0e8]], seeds=[0])
    main, small = "3e+10_1e+09", "3e+09_1e+08"
    assert list(sweep.points) == [main, small]
    assert (sweep.parameter, sweep.parameters, sweep.swept_class) == (keys[0], keys, "cdm")
    assert class_files(sweep, main) == MAIN_CLASS_FILES
    assert sweep.run_dir(main, "physics", 0) == "results/runs/physics/seed_0"
    assert class_files(sweep, small) == [
        "data/no_sub.h5",
        f"data/sweep/{small}/cdm.h5",
        "data/axion.h5",
    ]
    assert sweep.fit_file(small, "cdm") == f"data/sweep/{small}/fits/cdm.h5"
    assert sweep.features_inputs(small, "cdm", "lens_model") == {
        "images": f"data/sweep/{small}/cdm.h5",
        "fit": f"data/sweep/{small}/fits/cdm.h5",
    }
    assert sweep.features_inputs(small, "cdm", "residual") == {
        "images": f"data/sweep/{small}/cdm.h5"  # the Gaussian residual needs no fit
    }
    assert sweep.features_inputs(main, "axion", "lens_model") == {
        "images": "data/axion.h5",
        "fit": "data/fits/axion.h5",
    }
    assert sweep.run_dir(small, "physics", 0) == f"results/sweep/{small}/runs/physics/seed_0"
    manifest = sweep.manifest()
    assert (manifest["parameter"], manifest["parameters"]) == (keys[0], keys)
    assert [(p["point"], p["value"]) for p in manifest["points"]] == [
        (main, 3.0e10),
        (small, 3.0e9),
    ]
    assert manifest["points"][1]["settings"] == {keys[0]: 3.0e9, keys[1]: 1.0e8}
    assert sweep.threshold_files() == ["results/sweep/sensitivity_threshold.csv"]


def test_no_threshold_without_a_sweep(tiny_config):
    config = copy.deepcopy(tiny_config)
    config["sweep"]["enabled"] = False
    assert SweepPlan(config, CLASS_NAMES).threshold_files() == []
