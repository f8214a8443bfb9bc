"""The split: seeded and stratified (learning.split), stored and checked (io.split_file)."""

import numpy as np
import pytest
from darklens.io.class_files import DataError
from darklens.io.split_file import read_split, write_split
from darklens.learning.split import stratified_split


def test_split_is_stratified_disjoint_and_seeded(tmp_path):
    counts = {"no_sub": 100, "cdm": 100, "axion": 100}
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    split = stratified_split(counts, fractions, seed=5)
    assert stratified_split(counts, fractions, seed=5) == split
    assert stratified_split(counts, fractions, seed=6)["test"] != split["test"]
    for name, expected in (("train", 70), ("val", 15), ("test", 15)):
        indices = np.asarray(split[name])
        per_class = np.bincount(indices // 100, minlength=3)
        assert per_class.tolist() == [expected] * 3
    path = tmp_path / "split.json"
    write_split(path, split)
    loaded = read_split(path, counts)
    assert sum(len(v) for v in loaded.values()) == 300
    with pytest.raises(DataError, match="class counts"):
        read_split(path, {"no_sub": 100, "cdm": 100, "axion": 99})


def test_overlapping_split_file_is_rejected(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"train": [0, 1], "val": [1], "test": [2], "counts": {"a": 3}}')
    with pytest.raises(DataError, match="more than one split"):
        read_split(path)
