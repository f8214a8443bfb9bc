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


def test_points_change_only_the_swept_key(default_config):
    points = sweep_points(default_config)
    parameter = default_config["sweep"]["parameter"]
    assert list(points) == [point_id(v) for v in default_config["sweep"]["values"]]
    for name, config in points.items():
        assert config["simulation"]["classes"]["cdm"]["n_subhalos"]["mean"] == float(name)
        restored = set_path(config, parameter, 25)
        assert restored == default_config
    assert swept_class(parameter) == "cdm"
    assert swept_class("simulation.instrument.background_rms") is None


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
    ],
)
def test_bad_sweeps_name_the_key(default_config, changes, match):
    config = copy.deepcopy(default_config)
    config["sweep"].update(changes)
    with pytest.raises(ConfigError, match=match):
        sweep_points(config)


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
    assert float(rows[3]["auc_macro_ovr"]) == 0.9
    assert rows[0]["chi_refit_median"] == "" and rows[0]["chi_refit_above_1"] == ""
    assert float(rows[3]["chi_refit_median"]) == 4.0
    assert float(rows[3]["chi_refit_above_1"]) == 2 / 3

    from darklens.reporting.figures import sensitivity_figure

    sensitivity_figure(tmp_path / "sensitivity.csv", tmp_path / "sensitivity.png")
    assert (tmp_path / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
