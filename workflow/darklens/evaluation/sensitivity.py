"""The sensitivity table: test metrics of every sweep point, model and seed, with the swept
class's substructure signal."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from darklens.io.atomic import atomic_path


def read_chi(path) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as handle:
        return handle["params"]["substructure_chi"][()]


def collect_sensitivity(manifest: dict, output) -> list[dict]:
    """Write the sensitivity table: a row per point, model and seed with the test metrics, and the
    swept class's substructure signal (median chi, fraction of images with chi > 1).

    manifest: {"parameter", "class" (or null), "points": [{"point", "value", "class_file" (or
    null), "runs": [{"model", "seed", "metrics"}]}]}.
    """
    rows = []
    for point in manifest["points"]:
        chi = read_chi(point["class_file"]) if point.get("class_file") else None
        for run in point["runs"]:
            try:
                metrics = json.loads(Path(run["metrics"]).read_text())
            except FileNotFoundError:
                raise ValueError(f"{run['metrics']}: metrics file not found") from None
            row = {
                "parameter": manifest["parameter"],
                "class": manifest.get("class") or "",
                "point": point["point"],
                "value": point["value"],
                "model": run["model"],
                "seed": run["seed"],
                "chi_median": float(np.median(chi)) if chi is not None else "",
                "chi_above_1": float(np.mean(chi > 1.0)) if chi is not None else "",
            }
            for key in ("accuracy", "auc_macro_ovr", "cdm_to_axion", "axion_to_cdm"):
                row[key] = metrics.get(key)
            for name in metrics.get("class_names", []):
                row[f"auc_{name}"] = metrics.get(f"auc_{name}")
                row[f"recall_{name}"] = metrics.get(f"recall_{name}")
            row["run"] = str(Path(run["metrics"]).parent)
            rows.append({k: "" if v is None else v for k, v in row.items()})
    if not rows:
        raise ValueError("the sweep has no runs")
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with atomic_path(output) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return rows
