import h5py
import numpy as np
import pytest
from darklens.io.class_files import (
    DataError,
    merge_shards,
    read_image_file,
    read_images,
    read_residual,
    write_features_file,
    write_image_file,
)
from darklens.io.split_file import read_split, write_split
from darklens.learning.dataset import load_training_set
from darklens.learning.split import stratified_split


def fake_shard(start, n, size=8, n_sub=2):
    rng = np.random.default_rng(start)
    return {
        "images": rng.normal(size=(n, size, size)).astype(np.float32),
        "image_index": np.arange(start, start + n),
        "params": {"theta_E": rng.random(n), "snr": rng.random(n)},
        "subhalos": {k: rng.random(n * n_sub) for k in ("mass_msun", "x_arcsec", "y_arcsec")},
        "subhalo_offsets": np.arange(n + 1) * n_sub,
    }


def test_round_trip_keeps_dtype_layout_and_provenance(tmp_path):
    shard = fake_shard(0, 5)
    path = tmp_path / "s.h5"
    write_image_file(path, shard, {"class_name": "cdm", "seed": 3, "config": {"a": 1}})
    data = read_image_file(path, expected_class="cdm")
    np.testing.assert_array_equal(data["images"], shard["images"])
    assert data["images"].dtype == np.float32
    assert data["attrs"]["seed"] == 3 and data["attrs"]["config"] == '{"a": 1}'
    assert "darklens_version" in data["attrs"]
    with h5py.File(path) as handle:
        assert handle["images"].compression == "gzip"
        assert handle["images"].chunks is not None


def test_merge_concatenates_and_reindexes_subhalos(tmp_path):
    paths = []
    for k, start in enumerate((0, 4)):
        paths.append(tmp_path / f"{k}.h5")
        write_image_file(paths[-1], fake_shard(start, 4), {"class_name": "axion", "shard": k})
    out = tmp_path / "axion.h5"
    assert merge_shards(paths, out, "axion") == 8
    merged = read_image_file(out, "axion")
    np.testing.assert_array_equal(merged["image_index"], np.arange(8))
    np.testing.assert_array_equal(merged["subhalos"]["offset"], np.arange(9) * 2)
    second = read_image_file(paths[1])
    np.testing.assert_array_equal(merged["images"][4:], second["images"])


def test_merge_refuses_gaps(tmp_path):
    paths = [tmp_path / "0.h5", tmp_path / "1.h5"]
    write_image_file(paths[0], fake_shard(0, 4), {"class_name": "cdm"})
    write_image_file(paths[1], fake_shard(5, 4), {"class_name": "cdm"})
    with pytest.raises(DataError, match="0..N-1"):
        merge_shards(paths, tmp_path / "m.h5", "cdm")
    assert not (tmp_path / "m.h5").exists()


def test_nan_images_are_rejected_with_one_line(tmp_path):
    shard = fake_shard(0, 4)
    shard["images"][2, 1, 1] = np.nan
    path = tmp_path / "nan.h5"
    write_image_file(path, shard, {"class_name": "cdm"})
    with pytest.raises(DataError, match=r"1 image\(s\).*NaN or inf \(first at index 2\)"):
        read_images(path)


def test_corrupt_missing_and_misshaped_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_images(tmp_path / "missing.h5")
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        read_images(corrupt)
    flat = tmp_path / "flat.h5"
    with h5py.File(flat, "w") as handle:
        handle["images"] = np.zeros((4, 8), dtype=np.float32)
    with pytest.raises(DataError, match=r"shape \(4, 8\)"):
        read_images(flat)
    wrong_class = tmp_path / "w.h5"
    write_image_file(wrong_class, fake_shard(0, 2), {"class_name": "cdm"})
    with pytest.raises(DataError, match="expected 'axion'"):
        read_images(wrong_class, expected_class="axion")


def test_features_file_checks_length(tmp_path):
    path = tmp_path / "f.h5"
    write_features_file(path, np.zeros((3, 8, 8), np.float32), {"config": {"s": 1}})
    assert read_residual(path, 3).shape == (3, 8, 8)
    with pytest.raises(DataError, match="3 residual images for 4 images"):
        read_residual(path, 4)


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


def test_load_dataset_stacks_channels_and_labels(tmp_path):
    images, residuals = {}, {}
    for k, name in enumerate(("no_sub", "cdm", "axion")):
        images[name] = tmp_path / f"{name}.h5"
        shard = fake_shard(0, 3)
        shard["images"][:] = k
        write_image_file(images[name], shard, {"class_name": name})
        residuals[name] = tmp_path / f"res_{name}.h5"
        write_features_file(residuals[name], np.full((3, 8, 8), -k, np.float32), {})
    x, y, counts = load_training_set(images, residuals, ["image", "residual"])
    assert x.shape == (9, 2, 8, 8) and x.dtype == np.float32
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.all(x[y == 2, 0] == 2) and np.all(x[y == 2, 1] == -2)
    assert counts == {"no_sub": 3, "cdm": 3, "axion": 3}


def test_load_dataset_checks_class_names_even_without_the_image_channel(tmp_path):
    images = {"no_sub": tmp_path / "no_sub.h5", "cdm": tmp_path / "cdm.h5"}
    residuals = {name: tmp_path / f"res_{name}.h5" for name in images}
    for name in images:
        write_image_file(images[name], fake_shard(0, 3), {"class_name": "no_sub"})
        write_features_file(residuals[name], np.zeros((3, 8, 8), np.float32), {})
    with pytest.raises(DataError, match="expected 'cdm'"):
        load_training_set(images, residuals, ["residual"])
