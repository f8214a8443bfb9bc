"""Collect per-run test metrics into one table."""

from __future__ import annotations

import math

from darklens.io.tables import read_metrics, run_identity, union_columns, write_csv

LEADING_COLUMNS = ["model", "seed", "accuracy", "auc_macro_ovr", "cdm_to_axion", "axion_to_cdm"]


def metrics_row(metrics_path) -> dict:
    """One flat row (scalars only) of a run's `runs/{model}/seed_{seed}/metrics.json`."""
    metrics = read_metrics(metrics_path)
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
    write_csv(output, rows, union_columns(rows, LEADING_COLUMNS))
    return rows
