"""The labelled data set: a seeded, stratified train/validation/test split and channel assembly.

Images are indexed globally in class order: image k of class c has index offset[c] + k, with
offsets from the per-class counts. The split is a JSON file that every model reads, so every model
and seed sees exactly the same test images.
"""

from __future__ import annotations

import json

import numpy as np

from darklens.atomic import atomic_path
from darklens.data import DataError
from darklens.loading import load_training_set

SPLITS = ("train", "val", "test")


def class_offsets(counts: dict[str, int]) -> dict[str, int]:
    """Global index of each class's first image (classes in the order of `counts`)."""
    offsets, start = {}, 0
    for name, n in counts.items():
        offsets[name] = start
        start += n
    return offsets


def stratified_split(counts: dict[str, int], fractions: dict[str, float], seed: int) -> dict:
    """Shuffle each class with a generator derived from `seed` and cut it by `fractions`.

    Per class: n_test = round(f_test n), n_val = round(f_val n), the rest is training.
    Returns {"train"|"val"|"test": sorted global index lists, "counts", "fractions", "seed"}.
    """
    split = {name: [] for name in SPLITS}
    offsets = class_offsets(counts)
    for class_index, (name, n) in enumerate(counts.items()):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1000, class_index)))
        order = rng.permutation(n) + offsets[name]
        n_test = int(round(fractions["test"] * n))
        n_val = int(round(fractions["val"] * n))
        if min(n_test, n_val, n - n_test - n_val) < 1:
            raise ValueError(
                f"class {name}: {n} images are too few for split fractions {fractions}"
            )
        split["test"] += order[:n_test].tolist()
        split["val"] += order[n_test : n_test + n_val].tolist()
        split["train"] += order[n_test + n_val :].tolist()
    for name in SPLITS:
        split[name] = sorted(int(i) for i in split[name])
    return {**split, "counts": dict(counts), "fractions": dict(fractions), "seed": int(seed)}


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


def load_dataset(
    image_paths: dict[str, str],
    residual_paths: dict[str, str] | None,
    channels: list[str],
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """x (N, C, H, W) float32, labels y (N,) and {class: count}: `loading.load_training_set`.

    Kept under this name for its callers (attribution); the lean loader fills one preallocated
    array instead of stacking copies, so both give the same arrays at a third of the peak memory.
    """
    return load_training_set(image_paths, residual_paths, channels)
