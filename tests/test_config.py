"""Config validation: defaults from the schema, one-line errors naming the key, the workflow's
checks beyond the schema and the config views rules pass to the command line."""

import copy

import pytest
import yaml
from darklens import CLASS_NAMES
from darklens.config import (
    FIT_CHANNELS,
    ConfigError,
    check_workflow_config,
    load_config,
    load_schema,
    simulation_common,
    training_settings,
    validate_config,
)

MINIMAL = {"simulation": {}, "features": {}, "training": {}}


def schema_properties(schema: dict, path: tuple = ()):
    """(dotted path, subschema) of every property the schema names, outer before inner."""
    for name, subschema in schema.get("properties", {}).items():
        yield (*path, name), subschema
        yield from schema_properties(subschema, (*path, name))


def lookup(config: dict, path: tuple):
    for key in path:
        config = config[key]
    return config


def leaves(config: dict, path: tuple = ()):
    for key, value in config.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, (*path, key))
        else:
            yield (*path, key), value


def test_config_yaml_validates_keeping_every_value(repo, default_config):
    raw = yaml.safe_load((repo / "config.yaml").read_text())
    assert validate_config(raw) == default_config
    assert validate_config(default_config) == default_config  # idempotent
    for path, value in leaves(raw):  # defaults are added, no value given is changed
        assert lookup(default_config, path) == value, ".".join(path)


def test_the_schema_fills_every_default():
    """Every property with a schema default takes it when absent (sections: their keys')."""
    config = validate_config(MINIMAL)
    filled = 0
    for path, subschema in schema_properties(load_schema()):
        if "default" not in subschema or "properties" in subschema:
            continue
        try:
            parent = lookup(config, path[:-1])
        except KeyError:
            continue  # an optional section without a default of its own
        assert parent[path[-1]] == subschema["default"], ".".join(path)
        filled += 1
    assert filled > 50


@pytest.mark.parametrize(
    "path",
    [
        path
        for path, subschema in schema_properties(load_schema())
        if "minimum" in subschema and subschema.get("type") in ("integer", "number")
    ],
    ids=lambda path: ".".join(path),
)
def test_values_below_the_minimum_are_rejected_naming_the_key(default_config, path):
    config = copy.deepcopy(default_config)
    subschema = dict(schema_properties(load_schema()))[path]
    lookup(config, path[:-1])[path[-1]] = subschema["minimum"] - 1
    with pytest.raises(ConfigError) as error:
        validate_config(config)
    message = str(error.value)
    assert message.startswith(f"config error at {'.'.join(path)}: ") and "\n" not in message


@pytest.mark.parametrize(
    "path, value, expected",
    [
        (("training", "max_epochs"), 0, "training.max_epochs"),
        (("training", "max_epochs"), "ten", "training.max_epochs"),
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
    path.write_text(yaml.safe_dump({**MINIMAL, "simulation": {"images_per_class": 30}}))
    assert load_config(path) == validate_config({**MINIMAL, "simulation": {"images_per_class": 30}})
    assert load_config(path)["simulation"]["images_per_class"] == 30


def test_workflow_check_requires_evaluated_models_to_be_trained(default_config):
    config = copy.deepcopy(default_config)
    check_workflow_config(config, CLASS_NAMES)
    del config["training"]["models"]["baseline"]  # evaluation.comparison names it
    with pytest.raises(ConfigError, match=r"^config error at evaluation: 'baseline' is not in"):
        check_workflow_config(config, CLASS_NAMES)


def test_workflow_check_of_own_images(default_config, tmp_path):
    config = copy.deepcopy(default_config)
    config["import"]["root"] = str(tmp_path)
    config["import"]["folders"] = {"no_sub": "none"}
    config["training"]["models"] = {"baseline": config["training"]["models"]["baseline"]}
    config["evaluation"].update(comparison=["baseline", "baseline"], attribution_model="baseline")
    config["evaluation"]["oracle"] = None
    for folder in ("none", "cdm"):
        (tmp_path / folder).mkdir()
    with pytest.raises(
        ConfigError, match=f"^config error at import.root: no folder {tmp_path}/axion"
    ):
        check_workflow_config(config, CLASS_NAMES)
    (tmp_path / "axion").mkdir()
    config["sweep"]["enabled"] = True  # config.yaml has it off
    with pytest.raises(ConfigError, match="^config error at sweep.enabled: imported images"):
        check_workflow_config(config, CLASS_NAMES)  # config.yaml sweeps a simulation key
    config["sweep"]["parameter"] = ["training.epochs", "simulation.classes.cdm.mass_max_msun"]
    with pytest.raises(ConfigError, match="^config error at sweep.enabled: imported images"):
        check_workflow_config(config, CLASS_NAMES)  # a list with one simulation key
    config["sweep"]["parameter"] = "training.max_epochs"
    check_workflow_config(config, CLASS_NAMES)


def test_config_views_hold_what_their_command_reads(default_config):
    common = simulation_common(default_config)
    assert "classes" not in common
    assert common == {k: v for k, v in default_config["simulation"].items() if k != "classes"}
    settings = training_settings(default_config)
    assert set(settings) < set(default_config["training"])
    assert not {"models", "seeds", "threads"} & set(settings)  # each is its own CLI option


def test_validate_config_reads_an_overlay_over_the_default(repo, tmp_path, capsys):
    """`darklens validate-config overlay.yaml` validates what the workflow would run: the overlay
    merged over config.yaml, naming the overlay's own error (not a missing top-level section)."""
    from darklens.cli import main

    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text("training:\n  max_epochs: 3\n")
    bad.write_text("training:\n  max_epochs: 0\n")
    base = str(repo / "config.yaml")
    assert main(["validate-config", str(good), "--base", base]) == 0
    assert "valid" in capsys.readouterr().out
    assert main(["validate-config", str(bad), "--base", base]) == 2
    error = capsys.readouterr().err.strip()
    assert "training.max_epochs" in error and "\n" not in error
    assert main(["validate-config", str(good), "--base", ""]) == 2  # alone it is incomplete
    assert "simulation" in capsys.readouterr().err
    assert main(["validate-config", base, "--base", base]) == 0


def test_overlay_merges_dicts_and_replaces_other_values():
    from darklens.config import overlay

    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    merged = overlay(base, {"a": {"c": [3]}, "e": {"f": 1}})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1, "e": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # the base is not changed


@pytest.mark.parametrize(
    ("text", "match"), [("[1, 2]", "not a mapping"), ("a: [", "not valid YAML")]
)
def test_bad_yaml_files_are_one_line_config_errors(tmp_path, text, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")


def test_lens_model_channels_need_fits_and_the_oracle_needs_simulated_truth(default_config):
    from darklens.config import CHANNEL_KINDS
    from darklens.features.channels import CHANNELS, LENS_MODEL_CHANNELS, feature_kind

    assert set(LENS_MODEL_CHANNELS) == set(FIT_CHANNELS)  # config.py's copy of the lists
    assert CHANNEL_KINDS == {name: feature_kind(name) for name in CHANNELS}
    config = copy.deepcopy(default_config)
    check_workflow_config(config, CLASS_NAMES)  # physics: fit_residual, fitting enabled
    config["fitting"]["enabled"] = False
    with pytest.raises(ConfigError, match=r"^config error at training.models.physics.channels: "):
        check_workflow_config(config, CLASS_NAMES)
    config["training"]["models"]["physics"]["channels"] = ["image", "residual"]
    check_workflow_config(config, CLASS_NAMES)  # the oracle needs no fit
    config["import"]["root"] = "/nonexistent"
    with pytest.raises(ConfigError, match="oracle_residual needs the true smooth model"):
        check_workflow_config(config, CLASS_NAMES)


def test_a_model_set_to_null_is_removed_so_an_overlay_can_take_it_away(default_config):
    config = copy.deepcopy(default_config)
    config["training"]["models"]["oracle"] = None
    config["evaluation"]["oracle"] = None
    validated = validate_config(config)
    assert "oracle" not in validated["training"]["models"]
    assert set(validated["training"]["models"]) == set(default_config["training"]["models"]) - {
        "oracle"
    }
    config["evaluation"]["oracle"] = "oracle"  # still named: one line, before any job
    with pytest.raises(ConfigError, match="^config error at evaluation: 'oracle' is not in"):
        check_workflow_config(validate_config(config), CLASS_NAMES)
