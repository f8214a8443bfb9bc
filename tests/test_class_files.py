"""io.class_files: the HDF5 class, shard and features files, their readers' checks."""

import h5py
import numpy as np
import pytest
from darklens import __version__
from darklens.io.class_files import (
    DataError,
    class_counts,
    merge_shards,
    read_class_name,
    read_image_file,
    read_images,
    read_params,
    read_residual,
    write_features_file,
    write_image_file,
)


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
    assert data["attrs"]["darklens_version"] == __version__ and data["attrs"]["n_images"] == 5
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


def test_first_images_only(tmp_path):
    shard = fake_shard(0, 5)
    path = tmp_path / "s.h5"
    write_image_file(path, shard, {"class_name": "cdm"})
    np.testing.assert_array_equal(read_images(path, count=2), shard["images"][:2])
    write_features_file(tmp_path / "f.h5", shard["images"], {})
    np.testing.assert_array_equal(read_residual(tmp_path / "f.h5", 5, count=3), shard["images"][:3])


def test_params_without_images(tmp_path):
    shard = fake_shard(0, 5)
    path = tmp_path / "s.h5"
    write_image_file(path, shard, {"class_name": "axion"})
    params = read_params(path)
    assert sorted(params) == ["snr", "theta_E"]
    np.testing.assert_array_equal(params["snr"], shard["params"]["snr"])
    assert list(read_params(path, ["theta_E"])) == ["theta_E"]
    np.testing.assert_array_equal(read_params(path, count=2)["snr"], shard["params"]["snr"][:2])
    assert read_class_name(path) == "axion"
    with pytest.raises(DataError, match=r"no parameter\(s\) substructure_chi"):
        read_params(path, ["substructure_chi"])
    with pytest.raises(DataError, match="file not found"):
        read_params(tmp_path / "missing.h5")


def test_params_must_be_one_value_per_image(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as handle:
        handle["images"] = np.zeros((3, 4, 4), np.float32)
        handle["params/snr"] = np.zeros(2)
    with pytest.raises(DataError, match=r"not one value for each of 3 images"):
        read_params(path)
    with h5py.File(path, "w") as handle:
        handle["images"] = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(DataError, match="no '/params' group"):
        read_params(path)
    with pytest.raises(DataError, match="no class_name"):
        read_class_name(path)


def test_class_counts_read_the_image_shapes(tmp_path):
    paths = {}
    for name, n in (("no_sub", 3), ("cdm", 5)):
        paths[name] = tmp_path / f"{name}.h5"
        write_image_file(paths[name], fake_shard(0, n), {"class_name": name})
    assert class_counts(paths) == {"no_sub": 3, "cdm": 5}
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a darklens class file"):
        class_counts({"axion": tmp_path / "junk.h5"})
