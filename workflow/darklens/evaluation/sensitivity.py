"""The sensitivity table: test metrics of every sweep point, model and seed, with the swept
class's substructure signal; and the sensitivity threshold read off it: for each model the lowest
swept value (x, e.g. the subhalo mass scale) at which the seed-mean one-vs-rest AUC of the swept
class reaches a level (sweep.threshold_auc, 0.75), by log-linear interpolation between the
bracketing points, with a percentile interval of a bootstrap over seeds (docs/evaluation.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darklens.evaluation.metrics import binary_auc
from darklens.io.class_files import read_params
from darklens.io.fit_files import read_substructure_chi_refit
from darklens.io.tables import read_csv, read_metrics, read_predictions, write_csv

HEADLINE_METRICS = ("accuracy", "auc_macro_ovr", "cdm_to_axion", "axion_to_cdm")


def signal_columns(class_file, fit_file=None) -> dict:
    """The swept class's substructure signal: chi_median and chi_above_1 (fraction of images with
    chi > 1) of the class file's `substructure_chi`, and chi_refit_median and chi_refit_above_1
    of the fit file's `substructure_chi_refit` (what a smooth refit leaves); empty cells where
    there is no class file or no fit file."""
    columns = dict.fromkeys(
        ("chi_median", "chi_above_1", "chi_refit_median", "chi_refit_above_1"), ""
    )
    if class_file:
        chi = read_params(class_file, ["substructure_chi"])["substructure_chi"]
        columns |= {"chi_median": float(np.median(chi)), "chi_above_1": float(np.mean(chi > 1.0))}
    if fit_file:
        _, refit = read_substructure_chi_refit(fit_file)
        columns |= {
            "chi_refit_median": float(np.median(refit)),
            "chi_refit_above_1": float(np.mean(refit > 1.0)),
        }
    return columns


def metric_columns(metrics: dict) -> dict:
    """The headline metrics, then each class's one-vs-rest AUC and recall (None: undefined)."""
    columns = {key: metrics.get(key) for key in HEADLINE_METRICS}
    for name in metrics.get("class_names", []):
        columns[f"auc_{name}"] = metrics.get(f"auc_{name}")
        columns[f"recall_{name}"] = metrics.get(f"recall_{name}")
    return columns


def collect_sensitivity(manifest: dict, output) -> list[dict]:
    """Write the sensitivity table: a row per point, model and seed with the test metrics, and the
    swept class's substructure signal (median chi, fraction of images with chi > 1; the same of
    substructure_chi_refit where the point has a fit file).

    manifest: {"parameter" (the x-axis key), "class" (or null), "points": [{"point", "value" (its
    x), "settings" (optional: {key: value} of every swept key), "class_file" (or null),
    "fit_file" (optional, or null), "runs": [{"model", "seed", "metrics"}]}]}.
    """
    rows = []
    for point in manifest["points"]:
        signal = signal_columns(point.get("class_file"), point.get("fit_file"))
        for run in point["runs"]:
            metrics = read_metrics(run["metrics"])
            pairwise = {}
            cls = manifest.get("class")
            predictions = Path(run["metrics"]).parent / "predictions.csv"
            if cls and cls != "no_sub" and predictions.exists():
                pairwise[f"auc_{cls}_vs_no_sub"] = pairwise_auc(predictions, cls, "no_sub")
            row = {
                "parameter": manifest["parameter"],
                "class": manifest.get("class") or "",
                "point": point["point"],
                "value": point["value"],
                "settings": settings_text(point.get("settings") or {}),
                "model": run["model"],
                "seed": run["seed"],
                **signal,
                **metric_columns(metrics),
                **pairwise,
                "run": str(Path(run["metrics"]).parent),
            }
            rows.append(row)
    if not rows:
        raise ValueError("the sweep has no runs")
    write_csv(output, rows)
    return rows


def settings_text(settings: dict) -> str:
    """`key=value; key=value` of a point's swept keys (numbers as %g)."""

    def text(value):
        if isinstance(value, float | int) and not isinstance(value, bool):
            return f"{value:g}"
        return str(value)

    return "; ".join(f"{key}={text(value)}" for key, value in settings.items())


# --- the sensitivity threshold ---

CROSSED = "crossed"
BELOW_GRID = "below the grid"
NOT_REACHED = "not reached within the grid"

#: Units of a swept key, from the end of its name.
UNITS = {"_msun": "M_sun", "_arcsec": "arcsec", "_ev": "eV", "_px": "px", "_deg": "deg"}


def axis_unit(parameter: str) -> str:
    """The unit of a swept key from its name (`..._msun`: M_sun), "" when it has none."""
    return next((unit for end, unit in UNITS.items() if parameter.endswith(end)), "")


def crossings(x, auc, level: float, log_x: bool = True) -> np.ndarray:
    """The lowest x at which each row of `auc` (rows x points, the points in increasing x)
    reaches `level`: interpolated linearly in log10(x) (in x when `log_x` is False) between the
    first point at or above the level and the point before it. -inf where the first point
    already reaches it (below the grid), +inf where no point does (not reached within the grid).
    A NaN AUC (undefined) never reaches the level."""
    x = np.asarray(x, float)
    auc = np.atleast_2d(np.asarray(auc, float))
    if x.ndim != 1 or auc.shape[1] != len(x) or len(x) < 1:
        raise ValueError("crossings: auc must hold one column per x")
    if np.any(np.diff(x) <= 0):
        raise ValueError("crossings: x must increase strictly")
    if log_x and np.any(x <= 0):
        raise ValueError("crossings: log-linear interpolation needs x > 0")
    t = np.log10(x) if log_x else x
    reached = auc >= level  # NaN compares False
    first = np.argmax(reached, axis=1)
    out = np.full(len(auc), np.inf)
    out[reached.any(axis=1) & (first == 0)] = -np.inf
    inner = np.flatnonzero(reached.any(axis=1) & (first > 0))
    if len(inner):
        hi = first[inner]
        lo = hi - 1
        a_lo, a_hi = auc[inner, lo], auc[inner, hi]
        frac = (level - a_lo) / (a_hi - a_lo)  # a_lo < level <= a_hi: frac in (0, 1]
        value = t[lo] + frac * (t[hi] - t[lo])
        out[inner] = 10.0**value if log_x else value
    return out


def crossing(x, auc, level: float, log_x: bool = True) -> float:
    """`crossings` of a single curve."""
    return float(crossings(x, np.asarray(auc, float)[None, :], level, log_x)[0])


def status_of(value: float) -> str:
    """The status of a crossing: crossed, below the grid (-inf), not reached (+inf) or undefined
    (NaN: an undefined AUC just below the crossing)."""
    if np.isnan(value):
        return "undefined"
    if value == -np.inf:
        return BELOW_GRID
    if value == np.inf:
        return NOT_REACHED
    return CROSSED


def threshold_with_interval(
    x, seed_aucs, level: float, n_bootstrap: int, confidence: float, rng, log_x: bool = True
) -> dict:
    """The crossing of the seed-mean AUC curve and its percentile interval at `confidence` from
    `n_bootstrap` replicates that resample each point's seeds with replacement (independently
    per point). `seed_aucs`: one array of per-seed AUCs per point (NaN: undefined, ignored).
    Censored ends stay censored: an interval end is -inf (below the grid) or +inf (not reached
    within the grid) where that share of the replicates is; the interval of a single seed per
    point is the estimate itself."""
    x = np.asarray(x, float)
    seeds = [np.asarray(a, float)[np.isfinite(np.asarray(a, float))] for a in seed_aucs]
    means = np.array([a.mean() if len(a) else np.nan for a in seeds])
    estimate = crossing(x, means, level, log_x)
    replicates = np.empty((n_bootstrap, len(x)))
    for k, a in enumerate(seeds):
        if not len(a):
            replicates[:, k] = np.nan
            continue
        draws = rng.integers(0, len(a), size=(n_bootstrap, len(a)))
        replicates[:, k] = a[draws].mean(axis=1)
    values = np.sort(crossings(x, replicates, level, log_x))
    alpha = 1.0 - confidence
    # order statistics (no interpolation between a finite and an infinite replicate)
    low = float(np.quantile(values, alpha / 2, method="lower"))
    high = float(np.quantile(values, 1 - alpha / 2, method="higher"))
    return {
        "threshold": estimate,
        "ci_low": low,
        "ci_high": high,
        "status": status_of(estimate),
        "ci_low_status": status_of(low),
        "ci_high_status": status_of(high),
    }


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def pairwise_auc(predictions_csv, positive: str, negative: str) -> float | None:
    """ROC AUC of class `positive` against class `negative` alone (Hand & Till's pairwise AUC):
    the test images of those two classes, scored by P(positive) / (P(positive) + P(negative)).

    Why not the one-vs-rest AUC: a sweep changes one class (cdm) and keeps the others; when the
    third class (axion) is easy, "cdm vs rest" reaches 0.75 by setting axion apart even where
    cdm and no_sub cannot be told apart at all (measured: physics 0.70..0.78 at a mass scale of
    1e8 Msun, where 1.8 % of cdm images have substructure chi > 1)."""
    _, labels, probs, names = read_predictions(predictions_csv)
    i, j = names.index(positive), names.index(negative)
    keep = (labels == i) | (labels == j)
    total = probs[keep, i] + probs[keep, j]
    score = np.divide(probs[keep, i], total, out=np.full(int(keep.sum()), 0.5), where=total > 0)
    return binary_auc(labels[keep] == i, score)


def auc_metric(rows) -> str:
    """The AUC of the curve: the swept class against no_sub (`pairwise_auc`) where the table has
    it, else the swept class's one-vs-rest AUC, else the macro AUC."""
    cls = rows[0].get("class") or ""
    for key in (f"auc_{cls}_vs_no_sub", f"auc_{cls}"):
        if cls and key in rows[0]:
            return key
    return "auc_macro_ovr"


def point_aucs(rows, model: str, metric: str) -> tuple[list[str], list[np.ndarray]]:
    """A model's points in table order and each point's per-seed AUCs (NaN where undefined)."""
    points = list(dict.fromkeys(r["point"] for r in rows))
    aucs = []
    for point in points:
        values = [_number(r[metric]) for r in rows if r["point"] == point and r["model"] == model]
        aucs.append(np.array([np.nan if v is None else v for v in values], float))
    return points, aucs


def fmt_x(value: float) -> str:
    return f"{value:.3g}"


def threshold_reading(row: dict) -> str:
    """One line on a model's threshold, e.g. `1.6e+09 M_sun [8.2e+08, 3.1e+09]` or `below the
    grid (AUC >= 0.75 already at 1e+08 M_sun)`."""
    unit = f" {row['unit']}" if row.get("unit") else ""
    level = f"{float(row['level']):.2f}"
    low_x, high_x = fmt_x(float(row["grid_min"])), fmt_x(float(row["grid_max"]))
    if row["status"] == BELOW_GRID:
        estimate = f"below the grid (AUC ≥ {level} already at {low_x}{unit})"
    elif row["status"] == NOT_REACHED:
        estimate = f"not reached within the grid (AUC < {level} up to {high_x}{unit})"
    else:
        estimate = f"{fmt_x(float(row['threshold']))}{unit}"
    low = {BELOW_GRID: f"< {low_x}", NOT_REACHED: f"> {high_x}"}.get(row["ci_low_status"])
    high = {BELOW_GRID: f"< {low_x}", NOT_REACHED: f"> {high_x}"}.get(row["ci_high_status"])
    low = low or fmt_x(float(row["ci_low"]))
    high = high or fmt_x(float(row["ci_high"]))
    return f"{estimate} [{low}, {high}]"


def sensitivity_thresholds(
    rows, level: float, n_bootstrap: int, confidence: float, seed: int
) -> list[dict]:
    """A row per model of the sensitivity table `rows` (as read from sensitivity.csv): the lowest
    x at which the seed-mean AUC (`auc_metric`) reaches `level` and its interval
    (`threshold_with_interval`; interpolation in log10(x) when every x is positive, else in x).
    Where the x values are not distinct numbers the threshold is not defined (status says so)."""
    if not rows:
        raise ValueError("the sensitivity table has no rows")
    metric = auc_metric(rows)
    parameter = rows[0]["parameter"]
    points = list(dict.fromkeys(r["point"] for r in rows))
    x_of = {r["point"]: _number(r["value"]) for r in rows}
    x = np.array([np.nan if x_of[p] is None else x_of[p] for p in points], float)
    defined = bool(np.isfinite(x).all()) and len(set(x.tolist())) == len(x)
    log_x = defined and bool(np.all(x > 0))
    order = np.argsort(x) if defined else np.arange(len(points))
    out = []
    rng = np.random.default_rng(seed)
    for model in dict.fromkeys(r["model"] for r in rows):
        _, aucs = point_aucs(rows, model, metric)
        row = {
            "model": model,
            "class": rows[0].get("class") or "",
            "metric": metric,
            "parameter": parameter,
            "unit": axis_unit(parameter),
            "level": level,
            "interpolation": "log-linear" if log_x else "linear",
            "n_points": len(points),
            "seeds_per_point": min(int(np.isfinite(a).sum()) for a in aucs),
            "grid_min": float(np.nanmin(x)) if defined else None,
            "grid_max": float(np.nanmax(x)) if defined else None,
            "confidence": confidence,
            "n_bootstrap": n_bootstrap,
        }
        if not defined:
            row |= {"status": "not defined (the swept values are not distinct numbers)"}
            row |= {"reading": row["status"]}
            out.append(row)
            continue
        result = threshold_with_interval(
            x[order], [aucs[k] for k in order], level, n_bootstrap, confidence, rng, log_x
        )
        row |= result
        row["reading"] = threshold_reading(row)
        out.append(row)
    return out


def write_thresholds(sensitivity_csv, output, level, n_bootstrap, confidence, seed) -> list:
    """`sensitivity_thresholds` of a sensitivity table, written to `output` (CSV)."""
    rows = sensitivity_thresholds(read_csv(sensitivity_csv), level, n_bootstrap, confidence, seed)
    write_csv(output, rows)
    return rows
