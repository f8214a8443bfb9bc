"""The sensitivity table: test metrics of every sweep point, model and seed, with the swept
class's substructure signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darklens.io.class_files import read_params
from darklens.io.fit_files import read_substructure_chi_refit
from darklens.io.tables import read_metrics, write_csv

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

    manifest: {"parameter", "class" (or null), "points": [{"point", "value", "class_file" (or
    null), "fit_file" (optional, or null), "runs": [{"model", "seed", "metrics"}]}]}.
    """
    rows = []
    for point in manifest["points"]:
        signal = signal_columns(point.get("class_file"), point.get("fit_file"))
        for run in point["runs"]:
            metrics = read_metrics(run["metrics"])
            row = {
                "parameter": manifest["parameter"],
                "class": manifest.get("class") or "",
                "point": point["point"],
                "value": point["value"],
                "model": run["model"],
                "seed": run["seed"],
                **signal,
                **metric_columns(metrics),
                "run": str(Path(run["metrics"]).parent),
            }
            rows.append(row)
    if not rows:
        raise ValueError("the sweep has no runs")
    write_csv(output, rows)
    return rows
