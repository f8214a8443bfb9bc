"""Collect per-run test metrics into one table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from darklens.io.atomic import atomic_path

LEADING_COLUMNS = ["model", "seed", "accuracy", "auc_macro_ovr", "cdm_to_axion", "axion_to_cdm"]


def run_identity(metrics_path: str | Path) -> tuple[str, int]:
    """(model, seed) of `results/runs/{model}/seed_{seed}/metrics.json`."""
    path = Path(metrics_path)
    seed_dir, model_dir = path.parent.name, path.parent.parent.name
    if not seed_dir.startswith("seed_"):
        raise ValueError(f"{path}: expected a path like runs/<model>/seed_<k>/metrics.json")
    return model_dir, int(seed_dir.removeprefix("seed_"))


def metrics_row(metrics_path: str | Path) -> dict:
    """One flat row (scalars only) of a run's metrics.json."""
    try:
        metrics = json.loads(Path(metrics_path).read_text())
    except FileNotFoundError:
        raise ValueError(f"{metrics_path}: metrics file not found") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{metrics_path}: not valid JSON ({exc})") from None
    model, seed = run_identity(metrics_path)
    row = {"model": model, "seed": seed}
    for key, value in metrics.items():
        if key in row or isinstance(value, dict | list):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{metrics_path}: {key} is not finite")
        row[key] = value
    return row


def collect_metrics(metrics_paths, output) -> list[dict]:
    """Write `results/metrics.csv`: a row per model and seed, sorted by model then seed."""
    rows = sorted((metrics_row(p) for p in metrics_paths), key=lambda r: (r["model"], r["seed"]))
    columns = list(LEADING_COLUMNS)
    for row in rows:
        columns += [key for key in row if key not in columns]
    with atomic_path(output) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return rows
