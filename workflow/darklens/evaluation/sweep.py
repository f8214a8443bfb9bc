"""Sensitivity sweeps: one setting (or several set together) varied over a list of values,
everything else as configured.

`sweep.parameter` is a dotted config key with one value per point, or a list of keys with a list of
as many values per point (all keys set together, e.g. a subhalo mass scale: [mass_max_msun,
mass_min_msun] over [[1.0e+8, 3.3e+6], ...]); the first key is the x axis of the curve.
Each value ("point") is a complete configuration: the validated config with the setting replaced.
The workflow compares a point's config with the main one section by section and reuses every
main file whose inputs did not change (for a CDM setting: the no_sub and axion images, their
residuals and the split), so a point costs only what it changes. A point equal to the main
configuration reuses the main runs outright.

A point is named by its value (`point_id`): 25 -> "25", 1e10 -> "1e+10", [1e-24, 1e-23] ->
"1e-24_1e-23" (so a point of several keys: [1e8, 3.3e6] -> "1e+08_3.3e+06"); its files live
under `data/sweep/{point}/` and `results/sweep/{point}/`.

`SweepPlan` is the workflow's view of a sweep (workflow/rules/inputs.smk and sweep.smk): for each
point, the file it reads for each input (its own or the main one), its runs and the manifest of
`darklens sweep-collect`. It is a pure function of the validated config: no file is read.
"""

from __future__ import annotations

import copy

from darklens.config import ConfigError, feature_kinds, simulation_common, validate_config

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


def parameters(sweep: dict) -> list[str]:
    """The swept keys: `sweep.parameter` as a list (one key, or the keys set together)."""
    parameter = sweep["parameter"]
    return [parameter] if isinstance(parameter, str) else list(parameter)


def point_settings(sweep: dict, value) -> dict:
    """{key: value} a point sets; for several keys `value` holds one value per key, in order.

    Raises ConfigError when a point of several keys does not have one value per key."""
    keys = parameters(sweep)
    if isinstance(sweep["parameter"], str):
        return {keys[0]: value}
    if not isinstance(value, list | tuple) or len(value) != len(keys):
        raise ConfigError(
            f"config error at sweep.values: {value!r} is not a list of {len(keys)} values, one "
            f"per key of sweep.parameter ({', '.join(keys)})"
        )
    return dict(zip(keys, value, strict=True))


def axis_value(sweep: dict, value):
    """A point's value on the curve's x axis: the value of the first swept key."""
    return next(iter(point_settings(sweep, value).values()))


def swept_class(parameter) -> str | None:
    """The class a `simulation.classes.<class>.*` parameter (or the first key of a list of them)
    belongs to, else None; None too when the keys name different classes."""
    keys = [parameter] if isinstance(parameter, str) else list(parameter)
    classes = set()
    for key in keys:
        parts = key.split(".")
        if len(parts) > 2 and parts[:2] == ["simulation", "classes"]:
            classes.add(parts[2])
    first = keys[0].split(".")
    if len(first) > 2 and first[:2] == ["simulation", "classes"] and len(classes) == 1:
        return first[2]
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
    keys = parameters(sweep)
    if len(set(keys)) != len(keys):
        raise ConfigError(f"config error at sweep.parameter: a key is named twice in {keys}")
    for parameter in keys:
        if not parameter.startswith(SWEEPABLE_PREFIXES) or parameter.startswith(NOT_SWEEPABLE):
            raise ConfigError(
                f"config error at sweep.parameter: {parameter!r} cannot be swept (use a key "
                f"under {', '.join(SWEEPABLE_PREFIXES)} other than {', '.join(NOT_SWEEPABLE)})"
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
        settings = point_settings(sweep, value)
        name = point_id(value)
        if name in points:
            raise ConfigError(f"config error at sweep.values: two values are named {name!r}")
        modified = config
        for key, setting in settings.items():
            modified = set_path(modified, key, setting)
        try:
            points[name] = validate_config(modified)
        except ConfigError as error:
            what = " + ".join(keys)
            raise ConfigError(f"sweep value {value!r} of {what}: {error}") from None
    return points


# The main workflow's files (workflow/rules/*.smk), which a point reuses when it changes nothing
# they depend on; and a point's own files (workflow/rules/sweep.smk).
MAIN_CLASS_FILE = "data/{cls}.h5"
MAIN_FEATURES_FILE = "data/features/{kind}/{cls}.h5"
MAIN_SPLIT_FILE = "data/split.json"
MAIN_FIT_FILE = "data/fits/{cls}.h5"
MAIN_RUN_DIR = "results/runs/{model}/seed_{seed}"
POINT_SHARD_FILE = "data/sweep/{point}/shards/{cls}/{shard}.h5"
POINT_CLASS_FILE = "data/sweep/{point}/{cls}.h5"
POINT_FEATURES_FILE = "data/sweep/{point}/features/{kind}/{cls}.h5"
POINT_SPLIT_FILE = "data/sweep/{point}/split.json"
POINT_FIT_FILE = "data/sweep/{point}/fits/{cls}.h5"
POINT_RUN_DIR = "results/sweep/{point}/runs/{model}/seed_{seed}"
SENSITIVITY_FILE = "results/sweep/sensitivity.csv"
SENSITIVITY_THRESHOLD_FILE = "results/sweep/sensitivity_threshold.csv"

# What a training run depends on: a point equal to the main config in these reuses its runs.
TRAINING_SECTIONS = ("seed", "simulation", "features", "split", "training")


def split_keys(config: dict) -> tuple:
    """What the split file depends on."""
    return config["seed"], config["simulation"]["images_per_class"], config["split"]


def sections(config: dict, names) -> dict:
    return {name: config[name] for name in names}


class SweepPlan:
    """The files of a sweep, from the main validated config (`points` as of `sweep_points`).

    Raises ConfigError as `sweep_points` does when the sweep cannot run.
    """

    def __init__(self, config: dict, class_names):
        self.config = config
        self.class_names = tuple(class_names)
        self.points = sweep_points(config)
        sweep = config["sweep"]
        self.parameters = parameters(sweep)
        self.parameter = self.parameters[0]  # the x axis of the curve
        self.models = list(sweep["models"])
        self.seeds = list(sweep.get("seeds") or config["training"]["seeds"])
        self.swept_class = swept_class(self.parameters)
        # fit files (substructure_chi_refit) exist for simulated data with fitting enabled
        fitting = bool(config.get("fitting", {}).get("enabled", False))
        self.with_fits = fitting and not config.get("import", {}).get("root")

    def __bool__(self) -> bool:
        return bool(self.points)

    def same_class_data(self, point: str, cls: str) -> bool:
        """Whether the point's images of a class equal the main ones (same draws, settings)."""
        other, main = self.points[point], self.config
        return (
            other["seed"] == main["seed"]
            and simulation_common(other) == simulation_common(main)
            and other["simulation"]["classes"][cls] == main["simulation"]["classes"][cls]
        )

    def class_file(self, point: str, cls: str) -> str:
        """A point's images of a class: the main file unless the point changes them."""
        if self.same_class_data(point, cls):
            return MAIN_CLASS_FILE.format(cls=cls)
        return POINT_CLASS_FILE.format(point=point, cls=cls)

    def features_file(self, point: str, cls: str, kind: str = "residual") -> str:
        """A point's features file of a class and kind: the main file unless the images change,
        or, for the residual kind, the features settings."""
        same_features = kind != "residual" or (
            self.points[point]["features"] == self.config["features"]
        )
        if self.same_class_data(point, cls) and same_features:
            return MAIN_FEATURES_FILE.format(kind=kind, cls=cls)
        return POINT_FEATURES_FILE.format(point=point, kind=kind, cls=cls)

    def fit_file(self, point: str, cls: str) -> str:
        """A point's smooth-lens fits of a class: the main file unless its images change (the
        fitting settings cannot be swept)."""
        if self.same_class_data(point, cls):
            return MAIN_FIT_FILE.format(cls=cls)
        return POINT_FIT_FILE.format(point=point, cls=cls)

    def features_inputs(self, point: str, cls: str, kind: str) -> dict:
        """Inputs of a point's features job: its images and, for the lens_model kind, its fit
        file."""
        inputs = {"images": self.class_file(point, cls)}
        if kind == "lens_model":
            inputs["fit"] = self.fit_file(point, cls)
        return inputs

    def split_file(self, point: str) -> str:
        if split_keys(self.points[point]) == split_keys(self.config):
            return MAIN_SPLIT_FILE
        return POINT_SPLIT_FILE.format(point=point)

    def run_dir(self, point: str, model: str, seed: int) -> str:
        """A point's run directory: the main run when the point changes nothing training sees."""
        if sections(self.points[point], TRAINING_SECTIONS) == sections(
            self.config, TRAINING_SECTIONS
        ):
            return MAIN_RUN_DIR.format(model=model, seed=seed)
        return POINT_RUN_DIR.format(point=point, model=model, seed=seed)

    def shard_files(self, point: str, cls: str, n_shards: int) -> list[str]:
        """The shards of a point's class file (`n_shards` of the point's simulation settings)."""
        return [
            POINT_SHARD_FILE.format(point=point, cls=cls, shard=shard) for shard in range(n_shards)
        ]

    def training_inputs(self, point: str, model: str) -> dict:
        """Inputs of a point's training run: images, split and, for a model with any channel
        besides `image`, the features files."""
        inputs = {
            "images": [self.class_file(point, cls) for cls in self.class_names],
            "split": self.split_file(point),
        }
        kinds = feature_kinds(self.config["training"]["models"][model]["channels"])
        if kinds:
            inputs["features"] = [
                self.features_file(point, cls, kind) for kind in kinds for cls in self.class_names
            ]
        return inputs

    def runs(self, point: str) -> list[dict]:
        return [
            {
                "model": model,
                "seed": seed,
                "metrics": f"{self.run_dir(point, model, seed)}/metrics.json",
            }
            for model in self.models
            for seed in self.seeds
        ]

    def metrics_files(self) -> list[str]:
        """Every run's metrics.json, point by point (inputs of the sensitivity table)."""
        return [run["metrics"] for point in self.points for run in self.runs(point)]

    def swept_class_files(self) -> list[str]:
        """Each point's file of the swept class (its substructure signal), if one is swept."""
        if not self.swept_class:
            return []
        return [self.class_file(point, self.swept_class) for point in self.points]

    def swept_fit_files(self) -> list[str]:
        """Each point's fit file of the swept class (its substructure_chi_refit), where fits
        exist and a class is swept."""
        if not (self.swept_class and self.with_fits):
            return []
        return [self.fit_file(point, self.swept_class) for point in self.points]

    def threshold_files(self) -> list[str]:
        """The sensitivity threshold table where there is a sweep (an input of the summary)."""
        return [SENSITIVITY_THRESHOLD_FILE] if self.points else []

    def manifest(self) -> dict:
        """What `darklens sweep-collect` needs: the x-axis key (`parameter`, the first swept key)
        and all swept keys, points (each with its x value and every key's setting), the swept
        class's file, runs."""
        cls = self.swept_class
        sweep = self.config["sweep"]
        values = sweep["values"] if self.points else []
        points = [
            {
                "point": point,
                "value": axis_value(sweep, value),
                "settings": point_settings(sweep, value),
                "class_file": self.class_file(point, cls) if cls else None,
                "fit_file": self.fit_file(point, cls) if cls and self.with_fits else None,
                "runs": self.runs(point),
            }
            for point, value in zip(self.points, values, strict=True)
        ]
        return {
            "parameter": self.parameter,
            "parameters": self.parameters,
            "class": cls,
            "points": points,
        }
