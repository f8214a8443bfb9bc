"""Comparisons of models over their runs: per-model means over seeds, the ablation grid, and
the plan and results of the paired comparisons (`statistics.paired_bootstrap` and
`statistics.seed_t_test`; a comparison is judged by the larger of their p-values,
`statistics.conservative_p`).

Inputs are the runs of `learning.train` (`runs/{model}/seed_{k}/predictions.csv` with its
`metrics.json` alongside). The ablation grid puts each model whose channel set is one of
`CHANNEL_COLUMNS` in a row named by its architecture and flips and a column named by its channels;
a channel effect is the paired difference between a column and the `image` column of the same row,
an architecture effect between a row and the row of the headline reference model in the same
column.

Shortcut controls (`learning.controls`, `controls/{control}/predictions.csv` with `metrics.json`)
are one deterministic run each; `control_intervals` gives their AUCs and the reference CNN's (mean
over its seeds) with a bootstrap interval over test images, and the paired difference CNN - control.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darklens.evaluation.statistics import (
    METRICS,
    Comparison,
    bootstrap_draws,
    conservative_p,
    paired_bootstrap,
    replicate_auc,
    replicate_metrics,
    seed_positions,
    seed_t_test,
)
from darklens.io.tables import read_metrics, read_predictions, run_identity

#: The ablation grid's columns: each channel set and its label, "image" (the reference column)
#: first. A model with another channel set is compared only against the headline reference.
CHANNEL_COLUMNS = {
    ("image",): "image",
    ("image", "residual"): "image + residual",
    ("image", "fit_residual"): "image + fit_residual",
    ("fit_residual",): "fit_residual",
    ("image", "source_plane"): "image + source_plane",
    ("image", "fit_residual", "source_plane"): "image + fit_residual + source_plane",
    ("image", "oracle_residual"): "image + oracle_residual (upper bound)",
}


@dataclass
class Run:
    """The test predictions and metrics of one model and seed."""

    model: str
    seed: int | None  # None: a deterministic control (one run, no seed)
    index: np.ndarray  # (n,) global image indices
    labels: np.ndarray  # (n,) integer labels
    probs: np.ndarray  # (n, K)
    class_names: list[str]
    metrics: dict


def load_runs(prediction_paths) -> dict[tuple[str, int], Run]:
    """Runs keyed by (model, seed) from `runs/{model}/seed_{k}/predictions.csv` paths;
    metrics.json is read from the predictions' directory."""
    runs = {}
    for path in prediction_paths:
        path = Path(path)
        model, seed = run_identity(path)
        index, labels, probs, names = read_predictions(path)
        metrics = read_metrics(path.parent / "metrics.json")
        runs[(model, seed)] = Run(model, seed, index, labels, probs, names, metrics)
    return runs


def _number(value) -> float:
    return float("nan") if value is None else float(value)


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN with one value), ignoring undefined (None)."""
    array = np.array([_number(v) for v in values], dtype=float)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return float("nan"), float("nan")
    std = float(np.std(array, ddof=1)) if array.size > 1 else float("nan")
    return float(np.mean(array)), std


def summary_keys(class_names) -> list[str]:
    return [
        "accuracy",
        "auc_macro_ovr",
        *[f"auc_{c}" for c in class_names],
        *[f"recall_{c}" for c in class_names],
        "cdm_to_axion",
        "axion_to_cdm",
        "best_epoch",
        "epochs_run",
    ]


def model_rows(runs: dict, specs: dict) -> list[dict]:
    """A summary.csv row per model (in the order of `specs`) that has runs: means and standard
    deviations over seeds of `summary_keys`, and `n_max_epochs`, the seeds whose training stopped
    at max_epochs rather than early (metrics.json `stop_reason`; runs without one do not count)."""
    rows = []
    for model, spec in specs.items():
        model_runs = sorted((r for (m, _), r in runs.items() if m == model), key=lambda r: r.seed)
        if not model_runs:
            continue
        names = model_runs[0].class_names
        row = {
            "model": model,
            "architecture": spec["architecture"],
            "channels": "+".join(spec["channels"]),
            "augment_flips": bool(spec.get("augment_flips", False)),
            "n_parameters": model_runs[0].metrics.get("n_parameters"),
            "n_seeds": len(model_runs),
            "seeds": " ".join(str(r.seed) for r in model_runs),
            "n_test": len(model_runs[0].labels),
            "n_max_epochs": sum(r.metrics.get("stop_reason") == "max_epochs" for r in model_runs),
        }
        for key in summary_keys(names):
            mean, std = mean_std(r.metrics.get(key) for r in model_runs)
            row[f"{key}_mean"], row[f"{key}_std"] = mean, std
        rows.append(row)
    return rows


def _check_paired(run_a: Run, run_b: Run) -> None:
    if not np.array_equal(run_a.index, run_b.index) or not np.array_equal(
        run_a.labels, run_b.labels
    ):
        raise ValueError(
            f"{run_a.model} and {run_b.model} (seed {run_a.seed}) were not scored on the same "
            "test images; a paired comparison needs the same split"
        )


def compare(
    runs: dict, pairs, n_bootstrap: int, confidence: float, seed: int
) -> list[tuple[str, Comparison]]:
    """Paired comparisons [(kind, Comparison)] for each (kind, model, reference) in `pairs` and
    each metric, on the seeds both models share. The bootstrap draws are the same for all."""
    pairs = [p for p in pairs if _seeds(runs, p[1]) and _seeds(runs, p[2])]
    if not pairs:
        return []
    any_run = next(iter(runs.values()))
    n_test = len(any_run.labels)
    all_seeds = sorted({s for (_, s) in runs})
    image_draws, uniforms = bootstrap_draws(n_test, len(all_seeds), n_bootstrap, seed)
    cache: dict[tuple[str, int], dict] = {}

    def replicates(model: str, run_seed: int) -> dict:
        if (model, run_seed) not in cache:
            run = runs[(model, run_seed)]
            cache[(model, run_seed)] = replicate_metrics(run.labels, run.probs, image_draws)
        return cache[(model, run_seed)]

    out = []
    for kind, model, reference in pairs:
        seeds = sorted(set(_seeds(runs, model)) & set(_seeds(runs, reference)))
        if not seeds:
            continue
        for s in seeds:
            _check_paired(runs[(model, s)], runs[(reference, s)])
        draws = seed_positions(uniforms, len(seeds))  # positions into `seeds`
        for metric in METRICS:
            per_a = [_number(runs[(model, s)].metrics[metric]) for s in seeds]
            per_b = [_number(runs[(reference, s)].metrics[metric]) for s in seeds]
            rep_a = np.stack([replicates(model, s)[metric] for s in seeds])
            rep_b = np.stack([replicates(reference, s)[metric] for s in seeds])
            effect, low, high, p = paired_bootstrap(per_a, per_b, rep_a, rep_b, draws, confidence)
            p_t = seed_t_test(per_a, per_b)
            p_value, p_source = conservative_p(p, p_t)
            comparison = Comparison(
                model=model,
                reference=reference,
                metric=metric,
                effect=effect,
                ci_low=low,
                ci_high=high,
                confidence=confidence,
                p_bootstrap=p,
                p_seed_t_test=p_t,
                p_value=p_value,
                p_source=p_source,
                seeds_better=int(sum(a > b for a, b in zip(per_a, per_b, strict=True))),
                n_seeds=len(seeds),
                n_test=n_test,
                n_bootstrap=n_bootstrap,
            )
            out.append((kind, comparison))
    return out


def _seeds(runs: dict, model: str) -> list[int]:
    return sorted(s for (m, s) in runs if m == model)


def ablation_grid(specs: dict) -> tuple[dict, list[str]]:
    """{row label: {column label: model}} and the column labels, from the model specs."""
    grid: dict[str, dict[str, str]] = {}
    for model, spec in specs.items():
        column = CHANNEL_COLUMNS.get(tuple(spec["channels"]))
        if column is None:
            continue
        row = spec["architecture"] + (" + flips" if spec.get("augment_flips") else "")
        grid.setdefault(row, {}).setdefault(column, model)
    used = {column for cells in grid.values() for column in cells}
    return grid, [column for column in CHANNEL_COLUMNS.values() if column in used]


def comparison_plan(specs: dict, headline) -> list[tuple[str, str, str]]:
    """(kind, model, reference) pairs: the headline, the ablation effects, and every other model
    against the headline reference."""
    model, reference = headline
    plan = [("headline", model, reference)]
    grid, columns = ablation_grid(specs)
    image = CHANNEL_COLUMNS[("image",)]
    for cells in grid.values():
        for column, cell_model in cells.items():
            if column != image and image in cells:
                plan.append(("channel effect", cell_model, cells[image]))
    ref_row = next((r for r, cells in grid.items() if reference in cells.values()), None)
    if ref_row is not None:
        for row, cells in grid.items():
            for column, cell_model in cells.items():
                ref_model = grid[ref_row].get(column)
                if row != ref_row and ref_model:
                    plan.append(("architecture effect", cell_model, ref_model))
    for other in specs:
        if other != reference:
            plan.append(("vs reference", other, reference))
    seen, unique = set(), []
    for kind, a, b in plan:
        if (a, b) not in seen and a != b:
            seen.add((a, b))
            unique.append((kind, a, b))
    return unique


def load_controls(prediction_paths) -> dict[str, Run]:
    """Control runs keyed by name from `controls/{control}/predictions.csv` paths (the name is
    the directory's); metrics.json is read from the predictions' directory."""
    controls = {}
    for path in prediction_paths:
        path = Path(path)
        index, labels, probs, names = read_predictions(path)
        metrics = read_metrics(path.parent / "metrics.json")
        name = path.parent.name
        controls[name] = Run(name, None, index, labels, probs, names, metrics)
    return controls


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def _auc_replicates(run: Run, image_draws: np.ndarray) -> dict[str, np.ndarray]:
    """Macro and per-class one-vs-rest AUC of a run on each bootstrap draw of test images."""
    labels = run.labels[image_draws]
    per_class = {
        f"auc_{name}": replicate_auc(labels == k, run.probs[image_draws, k])
        for k, name in enumerate(run.class_names)
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a draw with no defined class: NaN
        macro = np.nanmean(np.stack(list(per_class.values()), axis=1), axis=1)
    return {"auc_macro_ovr": macro, **per_class}


def control_intervals(
    controls: dict[str, Run],
    runs: dict,
    reference: str,
    n_bootstrap: int,
    confidence: float,
    seed: int,
    model: str | None = None,
) -> list[dict]:
    """A row per classifier: the reference CNN (its runs' mean over seeds) first, if it has runs,
    then each control. Each row: name, kind ("CNN" | "control"), n_runs, and for macro and every
    per-class AUC `<key>`, `<key>_low`, `<key>_high` (percentile interval of a bootstrap over test
    images: the same draws for every row, the CNN's seeds held fixed); control rows also hold
    `difference` = CNN - control macro AUC with `difference_low`, `difference_high` (paired, same
    draws). With `model` (the headline model), when both it and the reference have runs and
    differ: its row (kind "CNN (model)") after the reference's, and on each control row
    `model_difference` (model - control) with its interval, from the same draws. The bootstrap
    is seeded by `seed` (its image draws are those of `compare`)."""
    if not controls:
        return []

    def runs_of(name: str | None) -> list[Run]:
        return [r for (m, _), r in sorted(runs.items(), key=lambda kv: kv[0][1]) if m == name]

    cnn = runs_of(reference)
    headline = runs_of(model) if cnn and model != reference else []
    first = next(iter(controls.values()))
    for other in [*cnn, *headline, *controls.values()]:
        if not np.array_equal(other.index, first.index) or not np.array_equal(
            other.labels, first.labels
        ):
            raise ValueError(
                f"control {first.model} and {other.model} were not scored on the same test "
                "images; controls must be trained on the runs' split"
            )
    image_draws, _ = bootstrap_draws(len(first.labels), 1, n_bootstrap, seed)
    keys = ["auc_macro_ovr", *[f"auc_{c}" for c in first.class_names]]

    def row(name: str, kind: str, members: list[Run]) -> tuple[dict, dict]:
        reps = [_auc_replicates(r, image_draws) for r in members]
        out: dict = {"name": name, "kind": kind, "n_runs": len(members)}
        mean_reps = {}
        for key in keys:
            out[key] = float(np.mean([_number(r.metrics.get(key)) for r in members]))
            mean_reps[key] = np.mean([rep[key] for rep in reps], axis=0)
            out[f"{key}_low"], out[f"{key}_high"] = _interval(mean_reps[key], confidence)
        return out, mean_reps

    rows, compared = [], []  # compared: (prefix of the difference keys, CNN row, its replicates)
    if cnn:
        cnn_row, cnn_reps = row(reference, "CNN", cnn)
        rows.append(cnn_row)
        compared.append(("", cnn_row, cnn_reps))
    if headline:
        model_row, model_reps = row(model, "CNN (model)", headline)
        rows.append(model_row)
        compared.append(("model_", model_row, model_reps))
    for name, control in controls.items():
        control_row, reps = row(name, "control", [control])
        for prefix, cnn_row, cnn_reps in compared:
            diff = cnn_reps["auc_macro_ovr"] - reps["auc_macro_ovr"]
            key = f"{prefix}difference"
            control_row[key] = cnn_row["auc_macro_ovr"] - control_row["auc_macro_ovr"]
            control_row[f"{key}_low"], control_row[f"{key}_high"] = _interval(diff, confidence)
        rows.append(control_row)
    return rows
