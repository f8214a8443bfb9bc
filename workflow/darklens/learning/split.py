"""The labelled data set: a seeded, stratified train/validation/test split and channel assembly.

Images are indexed globally in class order: image k of class c has index offset[c] + k, with
offsets from the per-class counts. The split is a JSON file that every model reads, so every model
and seed sees exactly the same test images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darklens.io.class_files import class_counts
from darklens.io.split_file import SPLITS, write_split


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


def class_file_counts(paths: list) -> dict[str, int]:
    """{class: number of images} of class files named {class}.h5, in the order given."""
    return class_counts({Path(p).stem: p for p in paths})


def write_stratified_split(output_path, counts: dict[str, int], fractions: dict, seed: int) -> dict:
    """`stratified_split`, written as the split file `output_path`; returns the split."""
    split = stratified_split(counts, fractions, seed)
    write_split(output_path, split)
    return split
