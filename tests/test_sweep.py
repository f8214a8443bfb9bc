"""Sensitivity sweeps: point names, point configs, and the sensitivity table."""

import copy
import csv
import json

import h5py
import numpy as np
import pytest
from darklens.config import ConfigError
from darklens.evaluation.sensitivity import collect_sensitivity
from darklens.evaluation.sweep import point_id, set_path, sweep_points, swept_class

MASS_KEYS = ["simulation.classes.cdm.mass_max_msun", "simulation.classes.cdm.mass_min_msun"]


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (25, "25"),
        (5.0, "5"),
        (1e10, "1e+10"),
        (3.5e8, "3.5e+08"),
        (0.25, "0.25"),
        ([1e-24, 1e-23], "1e-24_1e-23"),
        ("tnfw", "tnfw"),
    ],
)
def test_point_names(value, name):
    assert point_id(value) == name


def test_point_names_must_be_file_names():
    with pytest.raises(ConfigError, match="sweep.values"):
        point_id("a/b")


def enabled(config: dict) -> dict:
    """A copy of config with its sweep on (config.yaml has it off)."""
    config = copy.deepcopy(config)
    config["sweep"]["enabled"] = True
    return config


def test_points_change_only_the_swept_key(default_config):
    config = enabled(default_config)
    points = sweep_points(config)
    parameter = config["sweep"]["parameter"]
    assert list(points) == [point_id(v) for v in config["sweep"]["values"]]
    for name, point in points.items():
        assert point["simulation"]["classes"]["cdm"]["n_subhalos"]["mean"] == float(name)
        restored = set_path(point, parameter, 25)
        assert restored == config
    assert swept_class(parameter) == "cdm"
    assert swept_class("simulation.instrument.background_rms") is None


def test_default_config_has_the_sweep_off(default_config):
    assert default_config["sweep"]["enabled"] is False
    assert sweep_points(default_config) == {}


def test_overlay_sweeps_the_mass_scale(repo):
    """workflow/configs/sensitivity.yaml over config.yaml: the five mass-scale points, both
    mass keys set together, the last the main masses; the rest of config.yaml unchanged."""
    from darklens.config import load_config

    base = load_config(repo / "config.yaml")
    config = load_config(
        repo / "workflow" / "configs" / "sensitivity.yaml", base=repo / "config.yaml"
    )
    sweep = config["sweep"]
    assert sweep["enabled"] and sweep["seeds"] == [0, 1, 2]
    assert sweep["models"] == ["baseline", "physics"]
    assert {k: v for k, v in config.items() if k != "sweep"} == {
        k: v for k, v in base.items() if k != "sweep"
    }
    points = sweep_points(config)
    assert list(points) == [
        "1e+08_3.3e+06",
        "1e+09_3.3e+07",
        "3e+09_1e+08",
        "1e+10_3.3e+08",
        "3e+10_1e+09",
    ]
    for (mass_max, mass_min), point in zip(sweep["values"], points.values(), strict=True):
        cdm = point["simulation"]["classes"]["cdm"]
        assert (cdm["mass_max_msun"], cdm["mass_min_msun"]) == (mass_max, mass_min)
        assert cdm["mass_function_slope"] == -1.9
    assert points["3e+10_1e+09"] == {**config}  # the main config's masses
    assert swept_class(sweep["parameter"]) == "cdm"


def test_disabled_sweep_has_no_points(default_config):
    config = copy.deepcopy(default_config)
    config["sweep"]["enabled"] = False
    assert sweep_points(config) == {}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"parameter": "simulation.classes.cdm.nope"}, "not a config key"),
        ({"parameter": "training.models"}, "cannot be swept"),
        ({"parameter": "split.fractions"}, "cannot be swept"),
        ({"values": [-1, 5]}, r"sweep value -1 of .*n_subhalos.mean.*minimum"),
        ({"values": [5, 5.0]}, "two values are named '5'"),
        ({"models": ["vit"]}, "sweep.models: 'vit'"),
        ({"seeds": [9]}, r"sweep.seeds: \[9\]"),
        ({"parameter": "simulation.classes.cdm.mass_max_msun", "values": [1e7]}, "mass_min"),
        (
            {"parameter": MASS_KEYS, "values": [[1e9, 1e8], [1e9]]},
            r"\[1000000000.0\] is not a list of 2",
        ),
        ({"parameter": MASS_KEYS, "values": [5]}, "5 is not a list of 2 values"),
        (
            {"parameter": [MASS_KEYS[0], "simulation.nope"], "values": [[1e9, 1]]},
            "not a config key",
        ),
        ({"parameter": [MASS_KEYS[0], "training.seeds"], "values": [[1e9, 1]]}, "cannot be swept"),
        ({"parameter": MASS_KEYS, "values": [[1e9, 3e9]]}, r"mass_max_msun \+ .*mass_min"),
        ({"parameter": MASS_KEYS, "values": [[1e9, 1e8], [1e9, 1e8]]}, "named '1e\\+09_1e\\+08'"),
    ],
)
def test_bad_sweeps_name_the_key(default_config, changes, match):
    config = enabled(default_config)
    config["sweep"].update(changes)
    with pytest.raises(ConfigError, match=match):
        sweep_points(config)


def test_several_keys_are_set_together_per_point(default_config):
    """A list of keys: every key of a point set from its list, named after all of them; the
    first key is the x axis (point_settings, axis_value)."""
    from darklens.evaluation.sweep import axis_value, parameters, point_settings

    config = enabled(default_config)
    config["sweep"].update(parameter=MASS_KEYS, values=[[1.0e8, 3.3e6], [3.0e10, 1.0e9]])
    points = sweep_points(config)
    assert list(points) == ["1e+08_3.3e+06", "3e+10_1e+09"]
    cdm = points["1e+08_3.3e+06"]["simulation"]["classes"]["cdm"]
    assert (cdm["mass_max_msun"], cdm["mass_min_msun"]) == (1.0e8, 3.3e6)
    assert points["3e+10_1e+09"] == config  # config.yaml's masses: the main config itself
    assert parameters(config["sweep"]) == MASS_KEYS
    settings = point_settings(config["sweep"], [1.0e8, 3.3e6])
    assert settings == {MASS_KEYS[0]: 1.0e8, MASS_KEYS[1]: 3.3e6}
    assert axis_value(config["sweep"], [1.0e8, 3.3e6]) == 1.0e8
    single = {"parameter": MASS_KEYS[0], "values": [[1, 2]]}
    assert axis_value(single, [1, 2]) == [1, 2]  # one key: the value is the point's, whole
    assert swept_class([MASS_KEYS[0], "simulation.classes.axion.vortex_points"]) is None
    assert swept_class(["simulation.instrument.psf_fwhm_arcsec", *MASS_KEYS]) is None


def test_sensitivity_table(tmp_path):
    points = []
    for point, chi in (("1", [0.0, 0.5, 2.0]), ("25", [10.0, 20.0, 30.0])):
        class_file = tmp_path / f"{point}.h5"
        with h5py.File(class_file, "w") as handle:
            handle.create_dataset("params/substructure_chi", data=np.array(chi))
        runs = []
        for seed in (0, 1):
            metrics = tmp_path / point / f"seed_{seed}" / "metrics.json"
            metrics.parent.mkdir(parents=True)
            auc = 0.5 if point == "1" else 0.9
            metrics.write_text(
                json.dumps(
                    {"accuracy": 0.4, "auc_macro_ovr": auc, "auc_cdm": None, "class_names": ["cdm"]}
                )
            )
            runs.append({"model": "baseline", "seed": seed, "metrics": str(metrics)})
        entry = {"point": point, "value": int(point), "class_file": str(class_file), "runs": runs}
        entry["settings"] = {"simulation.classes.cdm.n_subhalos.mean": int(point)}
        if point == "25":  # a fit file with what a smooth refit leaves of the signal
            entry["fit_file"] = str(tmp_path / "fit_25.h5")
            with h5py.File(entry["fit_file"], "w") as handle:
                handle.create_dataset("substructure_chi_refit", data=np.array([0.5, 4.0, 6.0]))
                handle.attrs["class_name"] = "cdm"
        points.append(entry)
    manifest = {
        "parameter": "simulation.classes.cdm.n_subhalos.mean",
        "class": "cdm",
        "points": points,
    }
    collect_sensitivity(manifest, tmp_path / "sensitivity.csv")
    with open(tmp_path / "sensitivity.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["point"], r["seed"]) for r in rows] == [
        ("1", "0"),
        ("1", "1"),
        ("25", "0"),
        ("25", "1"),
    ]
    assert float(rows[0]["chi_median"]) == 0.5 and float(rows[0]["chi_above_1"]) == 1 / 3
    assert rows[0]["auc_cdm"] == ""  # undefined stays empty, not NaN
    assert rows[2]["settings"] == "simulation.classes.cdm.n_subhalos.mean=25"
    assert float(rows[3]["auc_macro_ovr"]) == 0.9
    assert rows[0]["chi_refit_median"] == "" and rows[0]["chi_refit_above_1"] == ""
    assert float(rows[3]["chi_refit_median"]) == 4.0
    assert float(rows[3]["chi_refit_above_1"]) == 2 / 3

    from darklens.reporting.figures import sensitivity_figure

    sensitivity_figure(tmp_path / "sensitivity.csv", tmp_path / "sensitivity.png")
    assert (tmp_path / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
