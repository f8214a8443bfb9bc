import copy

import pytest
import yaml
from darklens.config import ConfigError, load_config, validate_config


def test_default_config_is_valid_and_has_required_keys(default_config):
    assert default_config["training"]["epochs"] >= 1
    assert isinstance(default_config["training"]["seeds"], list)
    assert default_config["features"]["smoothing_sigma_px"] > 0
    assert default_config["simulation"]["images_per_class"] == 500
    assert default_config["simulation"]["instrument"]["n_pix"] == 64


def test_defaults_are_filled_in():
    config = validate_config({"simulation": {}, "features": {}, "training": {}})
    assert config["simulation"]["instrument"]["supersampling"] == 4
    assert config["training"]["models"]["physics"]["channels"] == ["image", "residual"]
    assert config["training"]["models"]["baseline"]["augment_flips"] is False


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("training", "epochs"), 0, "training.epochs"),
        (("training", "epochs"), "ten", "training.epochs"),
        (("features", "smoothing_sigma_px"), -1.0, "features.smoothing_sigma_px"),
        (("simulation", "instrument", "supersampling"), 0, "simulation.instrument.supersampling"),
        (("simulation", "lens", "theta_E_arcsec"), [2.0, 1.0], "simulation.lens.theta_E_arcsec"),
        (("simulation", "lens", "z_source"), 0.3, "simulation.lens.z_source"),
        (("simulation", "classes", "cdm", "profile"), "nfw_blob", "simulation.classes.cdm.profile"),
        (("training", "models", "baseline", "channels"), ["colour"], "training.models.baseline"),
        (("split", "fractions", "test"), 0.5, "split.fractions"),
    ],
)
def test_bad_values_name_the_key(default_config, path, value, expected):
    config = copy.deepcopy(default_config)
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_unknown_key_is_rejected(default_config):
    config = copy.deepcopy(default_config)
    config["training"]["epoch"] = 3
    with pytest.raises(ConfigError, match="'epoch' was unexpected"):
        validate_config(config)


def test_load_config_reads_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {"simulation": {"images_per_class": 30}, "features": {}, "training": {"epochs": 2}}
        )
    )
    assert load_config(path)["simulation"]["images_per_class"] == 30
