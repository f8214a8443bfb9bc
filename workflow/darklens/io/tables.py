"""The tables and small JSON files of a run: CSV tables, `metrics.json`, `predictions.csv`, and
the `runs/{model}/seed_{k}` directory names that identify a run.

Every CSV that darklens writes goes through `write_csv`; every reader of a run's predictions or
metrics goes through `read_predictions` / `read_metrics`. Readers raise `DataError` with one line
naming the file and the problem.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from darklens.io.atomic import atomic_path
from darklens.io.class_files import DataError

RUN_SEED_PREFIX = "seed_"


def _cell(value):
    """CSV cell of a value: None and non-finite floats are written as empty cells."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return value


def union_columns(rows: list[dict], leading=()) -> list[str]:
    """`leading`, then every other key of the rows in first-seen order."""
    columns = list(leading)
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def write_csv(path, rows: list[dict], columns=None) -> None:
    """Write `rows` atomically; columns default to the union of the rows' keys in first-seen
    order. A key missing from a row is an empty cell."""
    if columns is None:
        columns = union_columns(rows)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(value) for key, value in row.items()})


def read_csv(path) -> list[dict]:
    """The rows of a CSV file as dicts of strings."""
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None


def run_identity(path) -> tuple[str, int]:
    """(model, seed) of a file in, or the directory, `.../runs/{model}/seed_{seed}`."""
    path = Path(path)
    run_dir = path if path.name.startswith(RUN_SEED_PREFIX) else path.parent
    seed_text = run_dir.name.removeprefix(RUN_SEED_PREFIX)
    if not run_dir.name.startswith(RUN_SEED_PREFIX) or not seed_text.isdigit():
        raise DataError(f"{path}: expected a path like runs/<model>/seed_<k>/<file>")
    return run_dir.parent.name, int(seed_text)


def group_by_model(paths) -> dict[str, list]:
    """Files of runs (`runs/{model}/seed_{k}/...`) grouped by model, in first-seen order."""
    by_model: dict[str, list] = {}
    for path in paths:
        by_model.setdefault(run_identity(path)[0], []).append(path)
    return by_model


def read_metrics(path) -> dict:
    """A run's metrics.json."""
    try:
        metrics = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: metrics file not found") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(metrics, dict):
        raise DataError(f"{path}: holds a JSON {type(metrics).__name__}, not a metrics object")
    return metrics


def write_metrics(path, metrics: dict) -> None:
    """A run's metrics.json (indented; NaN or inf are refused, not written as invalid JSON)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")


def prediction_columns(class_names) -> list[str]:
    """Columns of predictions.csv."""
    return [
        "index",
        "label",
        "label_name",
        *[f"prob_{c}" for c in class_names],
        "pred",
        "pred_name",
    ]


def write_predictions(path, index, labels, probs, class_names) -> None:
    """predictions.csv: a row per test image with its label, class probabilities and argmax."""
    pred = probs.argmax(axis=1)
    rows = [
        {
            "index": int(i),
            "label": int(t),
            "label_name": class_names[t],
            **{f"prob_{c}": f"{p[k]:.9g}" for k, c in enumerate(class_names)},
            "pred": int(q),
            "pred_name": class_names[q],
        }
        for i, t, p, q in zip(index, labels, probs, pred, strict=True)
    ]
    write_csv(path, rows, prediction_columns(class_names))


def read_predictions(path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(index, labels, probs, class names) of a predictions.csv, sorted by image index."""
    rows = read_csv(path)
    if not rows:
        raise DataError(f"{path}: no predictions")
    names = [key.removeprefix("prob_") for key in rows[0] if key.startswith("prob_")]
    try:
        index = np.array([int(r["index"]) for r in rows])
        labels = np.array([int(r["label"]) for r in rows])
        probs = np.array([[float(r[f"prob_{c}"]) for c in names] for r in rows])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a darklens predictions file ({exc})") from None
    order = np.argsort(index)
    return index[order], labels[order], probs[order], names
