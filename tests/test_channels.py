import numpy as np
import pytest
from darklens.learning.channels import build_channels, residual, write_features


def test_residual_of_flat_image_is_zero_and_keeps_point_sources():
    flat = np.full((2, 16, 16), 3.0)
    np.testing.assert_allclose(residual(flat, 2.0), 0.0, atol=1e-6)
    spike = np.zeros((16, 16))
    spike[8, 8] = 1.0
    res = residual(spike, 2.0)
    assert res[8, 8] > 0.9  # a point survives smoothing subtraction almost unchanged
    assert abs(res.sum()) < 1e-6  # the smoothing conserves flux, so the residual sums to zero


def test_build_channels_orders_planes():
    images = np.random.default_rng(0).normal(size=(4, 8, 8))
    x = build_channels(images, ["residual", "image"], 1.0)
    assert x.shape == (4, 2, 8, 8) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 1], images.astype(np.float32))
    np.testing.assert_allclose(x[:, 0], residual(images.astype(np.float32), 1.0))


def test_bad_arguments():
    with pytest.raises(ValueError, match="smoothing_sigma_px must be > 0"):
        residual(np.zeros((4, 4)), 0.0)
    with pytest.raises(ValueError, match="unknown channel"):
        build_channels(np.zeros((1, 4, 4)), ["colour"], 1.0)


def test_write_features_stores_the_residual_and_its_provenance(tmp_path):
    import h5py
    from darklens.io.class_files import read_residual, write_image_file

    images = np.random.default_rng(1).normal(size=(3, 16, 16)).astype(np.float32)
    data = {
        "images": images,
        "image_index": np.arange(3),
        "params": {"snr": np.ones(3)},
        "subhalos": {},
        "subhalo_offsets": np.zeros(4, dtype=np.int64),
    }
    write_image_file(tmp_path / "cdm.h5", data, {"class_name": "cdm"})
    n = write_features(tmp_path / "cdm.h5", tmp_path / "features.h5", 1.5)
    assert n == 3
    np.testing.assert_array_equal(read_residual(tmp_path / "features.h5", 3), residual(images, 1.5))
    with h5py.File(tmp_path / "features.h5") as handle:
        assert handle.attrs["source_file"] == str(tmp_path / "cdm.h5")
        assert handle.attrs["config"] == '{"features": {"smoothing_sigma_px": 1.5}}'
