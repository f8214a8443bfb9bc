"""Load and validate a darklens configuration against `workflow/schemas/config.schema.yaml`.

Validation fills in the schema's defaults and raises `ConfigError` with one line that names the
offending key, e.g. `config error at training.max_epochs: 0 is less than the minimum of 1`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, mistyped or out of range."""


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path) as handle:
        return yaml.safe_load(handle)


def key_path(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Return a validated copy of `config` with defaults filled in; raise `ConfigError`."""
    schema = schema if schema is not None else load_schema()
    config = copy.deepcopy(dict(config))
    drop_removed_models(config)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(f"config error at {key_path(error.absolute_path)}: {error.message}")
    check_consistency(config)
    return config


def drop_removed_models(config: dict) -> None:
    """Delete the models set to null (`training.models.<name>: null`): the way an overlay, which
    Snakemake merges key by key into config.yaml's, takes one of its models away."""
    models = config.get("training", {}).get("models")
    if isinstance(models, dict):
        for name in [name for name, spec in models.items() if spec is None]:
            del models[name]


def _check_range(config: dict, path: tuple[str, ...]):
    node = config
    for key in path:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    if isinstance(node, list) and len(node) == 2 and node[0] > node[1]:
        raise ConfigError(
            f"config error at simulation.{key_path(path)}: low {node[0]} > high {node[1]}"
        )


def check_consistency(config: dict) -> None:
    """Relations between keys that JSON schema cannot express."""
    sim = config["simulation"]
    for path in (
        ("lens", "theta_E_arcsec"),
        ("source", "amp"),
        ("source", "R_sersic_arcsec"),
        ("source", "n_sersic"),
        ("lens_light", "amp"),
        ("lens_light", "R_sersic_arcsec"),
        ("lens_light", "n_sersic"),
        ("classes", "axion", "axion_mass_ev"),
    ):
        _check_range(sim, path)
    if sim["lens"]["z_source"] <= sim["lens"]["z_lens"]:
        raise ConfigError(
            "config error at simulation.lens.z_source: must be greater than z_lens "
            f"({sim['lens']['z_source']} <= {sim['lens']['z_lens']})"
        )
    cdm = sim["classes"]["cdm"]
    if cdm["mass_min_msun"] > cdm["mass_max_msun"]:
        raise ConfigError(
            "config error at simulation.classes.cdm.mass_min_msun: greater than mass_max_msun"
        )
    fractions = config["split"]["fractions"]
    if abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ConfigError(
            f"config error at split.fractions: they sum to {sum(fractions.values())}, not 1"
        )
    smallest = min(fractions.values()) * sim["images_per_class"]
    if smallest < 1:
        raise ConfigError(
            "config error at simulation.images_per_class: too few images for every split to "
            f"hold at least one image per class ({sim['images_per_class']})"
        )


def check_workflow_config(config: dict, class_names) -> None:
    """What the workflow needs beyond `validate_config`: the evaluated models are trained, and
    with `import.root` set, every class has its folder and no simulation setting is swept."""
    models = list(config["training"]["models"])
    evaluation = config["evaluation"]
    evaluated = [*evaluation["comparison"], evaluation["attribution_model"]]
    for model in evaluated + ([evaluation["oracle"]] if evaluation.get("oracle") else []):
        if model not in models:
            raise ConfigError(
                f"config error at evaluation: {model!r} is not in training.models ({models})"
            )
    _check_channel_sources(config)
    if not config["import"]["root"]:
        return
    for cls in class_names:
        folder = import_folder(config, cls)
        if not Path(folder).is_dir():
            raise ConfigError(f"config error at import.root: no folder {folder} for class {cls}")
    sweep = config.get("sweep", {})
    keys = sweep.get("parameter", "")
    keys = [keys] if isinstance(keys, str) else keys  # one key, or several set together
    if sweep.get("enabled") and any(key.startswith("simulation") for key in keys):
        raise ConfigError(
            "config error at sweep.enabled: imported images have no simulation settings to "
            "sweep; set sweep.enabled: false (or sweep a features./training. key)"
        )


#: The kind of features file (`data/features/{kind}/{class}.h5`) that holds each channel's plane,
#: as darklens.features.channels defines it (a test keeps the two equal); here so that the
#: workflow plans its files without importing the features code.
CHANNEL_KINDS = {
    "image": None,
    "residual": "residual",
    "fit_residual": "lens_model",
    "source_plane": "lens_model",
    "source_residual": "lens_model",
    "oracle_residual": "oracle",
}
KIND_ORDER = ("residual", "lens_model", "oracle")
#: The channels made from the smooth-lens fit and the one made from the simulator's truth.
FIT_CHANNELS = tuple(c for c, kind in CHANNEL_KINDS.items() if kind == "lens_model")
TRUTH_CHANNELS = tuple(c for c, kind in CHANNEL_KINDS.items() if kind == "oracle")


def feature_kinds(channels) -> list[str]:
    """The kinds of features file a list of channels reads, in KIND_ORDER."""
    wanted = {CHANNEL_KINDS.get(channel) for channel in channels}
    return [kind for kind in KIND_ORDER if kind in wanted]


def _check_channel_sources(config: dict) -> None:
    """Models whose channels need the smooth-lens fits need `fitting.enabled`; the oracle's
    channel needs simulated images (imported ones have no true smooth model)."""
    imported = bool(config["import"]["root"])
    fitting = bool(config.get("fitting", {}).get("enabled", False)) and not imported
    for model, spec in config["training"]["models"].items():
        for channel in spec["channels"]:
            if channel in FIT_CHANNELS and not fitting:
                why = "imported images are not fitted" if imported else "fitting.enabled is false"
                raise ConfigError(
                    f"config error at training.models.{model}.channels: {channel} needs the "
                    f"smooth-lens fits and {why}; train it on image or residual channels"
                )
            if channel in TRUTH_CHANNELS and imported:
                raise ConfigError(
                    f"config error at training.models.{model}.channels: {channel} needs the "
                    "true smooth model, which imported images do not have"
                )


def import_folder(config: dict, cls: str) -> str:
    """The folder of a class's own .npy images: {import.root}/{import.folders[cls] or cls}."""
    section = config["import"]
    return str(Path(section["root"]) / section["folders"].get(cls, cls))


def simulation_common(config: dict) -> dict:
    """The simulation settings shared by all classes (everything but `classes`)."""
    return {k: v for k, v in config["simulation"].items() if k != "classes"}


TRAINING_KEYS = ("max_epochs", "min_epochs", "early_stopping", "batch_size", "learning_rate")
TRAINING_KEYS += ("lr_schedule", "weight_decay", "device", "mixed_precision")


def training_settings(config: dict) -> dict:
    """The `training` keys a training run reads (`darklens train --training`)."""
    return {key: config["training"][key] for key in TRAINING_KEYS}


def read_yaml(path: str | Path) -> dict:
    """A YAML config file as a dict (an empty file is {}); ConfigError names a bad file."""
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config error: {path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config error: {path}: not valid YAML ({' '.join(str(exc).split())})"
        ) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config error: {path}: holds a {type(data).__name__}, not a mapping")
    return data or {}


def overlay(base: dict, extra: dict) -> dict:
    """`extra` merged into a copy of `base`, dict by dict, as Snakemake merges a `--configfile`
    over the Snakefile's `configfile:` (a value that is not a dict replaces the base's)."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = overlay(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(path: str | Path, base: str | Path | None = None) -> dict:
    """Read a YAML config file and validate it; with `base`, the file is an overlay (as
    `snakemake --configfile FILE` takes it) validated merged over the base config."""
    config = read_yaml(path)
    if base is not None:
        config = overlay(read_yaml(base), config)
    return validate_config(config)


def canonical_json(section) -> str:
    """Deterministic JSON of a config section (for provenance attributes and rule params)."""
    return json.dumps(section, sort_keys=True, separators=(",", ":"))
