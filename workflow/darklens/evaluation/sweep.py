"""Sensitivity sweeps: one setting varied over a list of values, everything else as configured.

Each value ("point") is a complete configuration: the validated config with the setting replaced.
The workflow compares a point's config with the main one section by section and reuses every
main file whose inputs did not change (for a CDM setting: the no_sub and axion images, their
residuals and the split), so a point costs only what it changes. A point equal to the main
configuration reuses the main runs outright.

A point is named by its value (`point_id`): 25 -> "25", 1e10 -> "1e+10", [1e-24, 1e-23] ->
"1e-24_1e-23"; its files live under `data/sweep/{point}/` and `results/sweep/{point}/`.
"""

from __future__ import annotations

import copy

from darklens.config import ConfigError, validate_config

SWEEPABLE_PREFIXES = ("simulation.", "features.", "training.")
NOT_SWEEPABLE = ("training.models", "training.seeds", "training.threads", "training.device")


def point_id(value) -> str:
    """A file-name-safe name of a swept value."""
    if isinstance(value, list | tuple):
        return "_".join(point_id(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, int) or float(value).is_integer() and abs(value) < 1e6:
        text = str(int(value))
    else:
        text = f"{value:g}"
    if not text or any(not (ch.isalnum() or ch in "+-._") for ch in text):
        raise ConfigError(f"config error at sweep.values: cannot name a point after {value!r}")
    return text


def get_path(config: dict, dotted: str):
    node = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise ConfigError(f"config error at sweep.parameter: {dotted!r} is not a config key")
        node = node[key]
    return node


def set_path(config: dict, dotted: str, value) -> dict:
    """A deep copy of config with the dotted key set to value."""
    out = copy.deepcopy(config)
    keys = dotted.split(".")
    node = out
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = copy.deepcopy(value)
    return out


def swept_class(parameter: str) -> str | None:
    """The class a `simulation.classes.<class>.*` parameter belongs to, else None."""
    parts = parameter.split(".")
    if len(parts) > 2 and parts[:2] == ["simulation", "classes"]:
        return parts[2]
    return None


def sweep_points(config: dict) -> dict[str, dict]:
    """{point id: config of that point} for an enabled sweep ({} when disabled).

    Raises ConfigError naming the parameter or the value when the sweep cannot run: unknown or
    unsweepable key, duplicate point names, a value the schema rejects, or models / seeds that
    are not among the configured ones.
    """
    sweep = config.get("sweep", {})
    if not sweep.get("enabled", False):
        return {}
    parameter = sweep["parameter"]
    if not parameter.startswith(SWEEPABLE_PREFIXES) or parameter.startswith(NOT_SWEEPABLE):
        raise ConfigError(
            f"config error at sweep.parameter: {parameter!r} cannot be swept (use a key under "
            f"{', '.join(SWEEPABLE_PREFIXES)} other than {', '.join(NOT_SWEEPABLE)})"
        )
    get_path(config, parameter)
    for model in sweep["models"]:
        if model not in config["training"]["models"]:
            raise ConfigError(
                f"config error at sweep.models: {model!r} is not in training.models "
                f"({', '.join(config['training']['models'])})"
            )
    unknown = set(sweep.get("seeds") or []) - set(config["training"]["seeds"])
    if unknown:
        raise ConfigError(f"config error at sweep.seeds: {sorted(unknown)} not in training.seeds")
    points = {}
    for value in sweep["values"]:
        name = point_id(value)
        if name in points:
            raise ConfigError(f"config error at sweep.values: two values are named {name!r}")
        modified = set_path(config, parameter, value)
        try:
            points[name] = validate_config(modified)
        except ConfigError as error:
            raise ConfigError(f"sweep value {value!r} of {parameter}: {error}") from None
    return points
