"""The split file (JSON): the train/validation/test image indices that every model reads.

{"train"|"val"|"test": sorted global image indices, "counts": {class: N}, "fractions", "seed"};
image k of class c has global index (images of the classes before c) + k.
"""

from __future__ import annotations

import json

import numpy as np

from darklens.io.atomic import atomic_path
from darklens.io.class_files import DataError

SPLITS = ("train", "val", "test")


def write_split(path, split: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(split, indent=1) + "\n")


def read_split(path, counts: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Read a split file; check disjointness, coverage and (optionally) the class counts."""
    try:
        with open(path) as handle:
            raw = json.load(handle)
        split = {name: np.asarray(raw[name], dtype=np.int64) for name in SPLITS}
        stored_counts = raw["counts"]
    except FileNotFoundError:
        raise DataError(f"{path}: split file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a darklens split file ({exc})") from None
    if counts is not None and dict(stored_counts) != dict(counts):
        raise DataError(f"{path}: split made for class counts {stored_counts}, data has {counts}")
    everything = np.concatenate([split[name] for name in SPLITS])
    total = sum(stored_counts.values())
    if len(np.unique(everything)) != len(everything):
        raise DataError(f"{path}: an image index appears in more than one split")
    if everything.min() < 0 or everything.max() >= total or len(everything) != total:
        raise DataError(f"{path}: indices do not cover 0..{total - 1} exactly once")
    return split
