"""darklens.features: the input channels (Gaussian residual, residuals against the fitted and the
true smooth model, source plane), the features file, and the same channels at prediction time."""

import json

import h5py
import numpy as np
import pytest
from darklens.cli import main
from darklens.config import simulation_common
from darklens.features.channels import (
    CHANNELS,
    build_channels,
    channels_for_new_images,
    compute_plane,
)
from darklens.features.files import write_features
from darklens.features.lens_model import MACRO_NAMES, LensModel, fit_residual, oracle_residual
from darklens.features.noise import NoiseModel, noise_model_of_class_file
from darklens.features.residual import residual
from darklens.features.source_plane import reconstruct, source_plane_coordinates, source_planes
from darklens.io.class_files import (
    DataError,
    feature_names,
    read_feature,
    read_feature_attrs,
    read_image_file,
    read_instrument_section,
    read_lens_model_settings,
    read_residual,
    write_image_file,
)
from darklens.io.fit_files import write_fit_file
from darklens.simulation.shards import write_shard

N_IMAGES = 6


# --- the Gaussian residual (the seed's recipe, moved from learning.channels) ---
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


def test_build_channels_takes_given_planes_first_and_loads_them_lazily():
    images = np.zeros((2, 4, 4))
    loaded = []
    plane = np.full((2, 4, 4), 7.0)
    planes = {"fit_residual": lambda: loaded.append(1) or plane}
    x = build_channels(images, ["image", "fit_residual"], planes=planes)
    assert loaded == [1] and np.all(x[:, 1] == 7.0) and np.all(x[:, 0] == 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="smoothing_sigma_px must be > 0"):
        residual(np.zeros((4, 4)), 0.0)
    with pytest.raises(ValueError, match="unknown channel"):
        build_channels(np.zeros((1, 4, 4)), ["colour"], 1.0)
    with pytest.raises(ValueError, match="needs smoothing_sigma_px"):
        build_channels(np.zeros((1, 4, 4)), ["residual"])
    with pytest.raises(ValueError, match="fitted lens model"):
        compute_plane("fit_residual", np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match="true smooth model"):
        compute_plane("oracle_residual", np.zeros((1, 4, 4)))


def test_every_channel_has_a_definition_and_a_unit():
    assert list(CHANNELS)[:2] == ["image", "residual"]
    for channel in CHANNELS.values():
        assert channel.definition and channel.unit
    assert "UPPER BOUND" in CHANNELS["oracle_residual"].definition


# --- residuals in units of the noise sigma ---
def test_fit_residual_of_a_noiseless_image_against_its_own_model_is_zero():
    model = np.random.default_rng(1).gamma(2.0, 0.05, (3, 16, 16))
    noise = NoiseModel(exposure_time_s=1000.0, background_rms=0.02)
    np.testing.assert_array_equal(fit_residual(model, model, noise), 0.0)


def test_fit_residual_of_pure_gaussian_noise_has_unit_std():
    """Noise drawn with the model's sigma: the residual is N(0, 1); 20,480 pixels give a std
    error of 0.5 %, the tolerance is 3 %."""
    rng = np.random.default_rng(2)
    model = rng.gamma(2.0, 0.2, (20, 32, 32))
    noise = NoiseModel(exposure_time_s=100.0, background_rms=0.05)
    images = model + rng.normal(0.0, 1.0, model.shape) * noise.sigma(model)
    res = fit_residual(images, model, noise)
    assert res.dtype == np.float32
    assert abs(res.std() - 1.0) < 0.03 and abs(res.mean()) < 0.03


def test_noise_model_refuses_nonsense():
    with pytest.raises(ValueError, match="exposure_time_s"):
        NoiseModel(0.0, 0.1)
    with pytest.raises(ValueError, match="background_rms"):
        NoiseModel(10.0, -1.0)
    with pytest.raises(ValueError, match="sigma is 0"):
        NoiseModel(10.0, 0.0).sigma(np.zeros((2, 2)))


# --- simulated class files with their true smooth models ---
def _simulate(folder, config, class_name, n=N_IMAGES, seed=5):
    common = simulation_common(config)
    common["images_per_class"] = common["images_per_shard"] = n
    path = folder / f"{class_name}.h5"
    write_shard(common, class_name, config["simulation"]["classes"][class_name], 0, seed, path)
    return path


def _truth_fit_file(class_path, out):
    """A fit file whose model is the TRUE smooth model and whose params are the true ones."""
    data = read_image_file(class_path)
    params = {name: data["params"][name] for name in MACRO_NAMES}
    n = len(data["images"])
    fit = {
        "chi2": np.zeros(n),
        "chi2_reduced": np.zeros(n),
        "model": data["smooth_model"],
        "converged": np.ones(n, bool),
        "reason": [""] * n,
        "iterations": np.zeros(n, np.int64),
        "start": np.zeros(n, np.int64),
    }
    attrs = {
        "class_name": data["attrs"]["class_name"],
        "instrument": read_instrument_section(class_path),
        "fitting": {"n_starts": 5, "device": "auto"},  # as `darklens fit` records them
        "lens_light": False,
    }
    write_fit_file(out, params, fit, data["image_index"], attrs)
    return out


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, default_config):
    """Default-config class files (64 x 64 px) and truth-valued fit files, by class."""
    folder = tmp_path_factory.mktemp("features")
    out = {}
    for name in ("no_sub", "cdm", "axion"):
        path = _simulate(folder, default_config, name)
        out[name] = (path, _truth_fit_file(path, folder / f"fit_{name}.h5"))
    return out


def test_class_files_store_the_true_smooth_model(simulated):
    path, _ = simulated["no_sub"]
    data = read_image_file(path)
    smooth = data["smooth_model"]
    assert smooth.dtype == np.float32 and smooth.shape == data["images"].shape
    # the noisy image scatters about its smooth model with the noise model's sigma
    res = oracle_residual(data["images"], smooth, noise_model_of_class_file(path))
    assert abs(res.std() - 1.0) < 0.05
    assert json.loads(data["attrs"]["units"])["smooth_model"] == "counts/s per pixel"


def test_features_file_round_trips_with_units_and_oracle_equals_fit_for_a_true_fit(
    simulated, tmp_path
):
    path, fit = simulated["cdm"]
    info = write_features(path, tmp_path / "cdm.h5", 2.0, fit)
    assert info["n_images"] == N_IMAGES
    assert info["planes"] == [
        "residual",
        "fit_residual",
        "source_plane",
        "source_residual",
        "oracle_residual",
    ]
    planes = {name: read_feature(tmp_path / "cdm.h5", name, N_IMAGES) for name in info["planes"]}
    images = read_image_file(path)["images"]
    np.testing.assert_array_equal(planes["residual"], residual(images, 2.0))
    np.testing.assert_array_equal(planes["residual"], read_residual(tmp_path / "cdm.h5"))
    np.testing.assert_array_equal(planes["oracle_residual"], planes["fit_residual"])
    for name, plane in planes.items():
        assert plane.dtype == np.float32 and np.isfinite(plane).all()
        attrs = read_feature_attrs(tmp_path / "cdm.h5", name)
        assert attrs["unit"] == CHANNELS[name].unit and attrs["definition"]
    with h5py.File(tmp_path / "cdm.h5") as handle:
        assert handle.attrs["source_file"] == str(path) and handle.attrs["fit_file"] == str(fit)
        assert json.loads(handle.attrs["config"]) == {"features": {"smoothing_sigma_px": 2.0}}


def test_without_a_fit_file_only_the_residual_and_oracle_are_written(simulated, tmp_path):
    path, _ = simulated["no_sub"]
    info = write_features(path, tmp_path / "f.h5", 1.5)
    assert info["planes"] == ["residual", "oracle_residual"]
    with pytest.raises(DataError, match="no 'fit_residual' plane"):
        read_feature(tmp_path / "f.h5", "fit_residual")


def test_source_plane_of_a_smooth_image_concentrates_on_the_true_source(simulated):
    """Noiseless smooth images back-traced through their true macro model: the plane's
    flux-weighted centroid lies within 1 source pixel of the true source centre, and re-lensing
    the plane reproduces the image to well below the noise (rms < 0.5 sigma, max < 0.25 of the
    peak signal-to-noise)."""
    path, _ = simulated["no_sub"]
    data = read_image_file(path)
    section = read_instrument_section(path)
    smooth, n = data["smooth_model"].astype(np.float64), data["images"].shape[1]
    lens = LensModel(
        {name: data["params"][name] for name in MACRO_NAMES},
        data["smooth_model"],
        NoiseModel.from_section(section),
        section,
    )
    planes, source_residuals = source_planes(smooth, lens)
    for k in range(N_IMAGES):
        plane, _, grid = reconstruct(smooth[k], lens.image_params(k), lens.pixel_scale_arcsec)
        np.testing.assert_allclose(planes[k], plane, rtol=1e-6, atol=1e-6)
        x, y = source_plane_coordinates(n, grid)
        weight = np.clip(plane, 0.0, None)
        centroid = np.array([(weight * x).sum(), (weight * y).sum()]) / weight.sum()
        true = [data["params"]["source_center_x"][k], data["params"]["source_center_y"][k]]
        assert np.hypot(*(centroid - true)) < 2.0 * grid["half_width"] / n
        peak_snr = (smooth[k] / lens.noise.sigma(smooth[k])).max()
        assert np.sqrt(np.mean(source_residuals[k] ** 2)) < 0.5
        assert np.abs(source_residuals[k]).max() < 0.25 * peak_snr


def test_the_oracle_needs_the_true_smooth_model(simulated, tmp_path):
    """An imported-like class file (no /smooth_model, no instrument) gets no oracle plane, and
    new images are refused the oracle with one clear line."""
    path, _ = simulated["no_sub"]
    data = read_image_file(path)
    imported = {
        "images": data["images"],
        "image_index": data["image_index"],
        "params": {"snr": data["params"]["snr"]},
        "subhalos": {},
        "subhalo_offsets": np.zeros(N_IMAGES + 1, dtype=np.int64),
    }
    write_image_file(tmp_path / "no_sub.h5", imported, {"class_name": "no_sub"})
    info = write_features(tmp_path / "no_sub.h5", tmp_path / "f.h5", 1.5)
    assert info["planes"] == ["residual"]
    with pytest.raises(DataError, match="noise model"):
        noise_model_of_class_file(tmp_path / "no_sub.h5")
    with pytest.raises(ValueError, match="oracle_residual needs the simulator's true smooth"):
        channels_for_new_images(data["images"], ["image", "oracle_residual"])
    with pytest.raises(ValueError, match="needs the images' instrument"):
        channels_for_new_images(data["images"], ["fit_residual"])


def test_features_command_bad_fit_file_is_one_line(simulated, tmp_path, capsys):
    path, fit = simulated["no_sub"]
    _, other_fit = simulated["cdm"]
    args = ["features", "--input", str(path), "--output", str(tmp_path / "f.h5")]
    assert main([*args, "--smoothing-sigma-px", "2", "--fit", str(tmp_path / "none.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "none.h5" in err and len(err.splitlines()) == 1
    short = tmp_path / "short.h5"  # the fit file of a class file of fewer images
    _truth_fit_file(_simulate(tmp_path, _config_of(path), "no_sub", n=3), short)
    assert main([*args, "--smoothing-sigma-px", "2", "--fit", str(short)]) == 2
    assert "fits 3 images" in capsys.readouterr().err
    assert not (tmp_path / "f.h5").exists()
    assert main([*args, "--smoothing-sigma-px", "2", "--fit", str(other_fit)]) == 0
    assert (tmp_path / "f.h5").exists()


def _config_of(path):
    """The config a simulated class file was written with, as load_config returns it."""
    with h5py.File(path) as handle:
        stored = json.loads(handle.attrs["config"])
    return {"simulation": {**stored["simulation"], "classes": {"no_sub": {}}}}


def test_a_fit_residual_model_trains_and_predicts_on_new_images(simulated, tmp_path):
    """Training reads fit_residual from the features files; prediction on new images fits the
    smooth lens model itself (the same channel code) and refuses an oracle model."""
    from darklens import CLASS_NAMES
    from darklens.learning.checkpoint import load_checkpoint
    from darklens.learning.dataset import load_training_set
    from darklens.learning.predict import predict_images
    from darklens.learning.train import TrainConfig, train

    images, features = {}, {}
    for name in CLASS_NAMES:
        images[name], fit = simulated[name]
        features[name] = tmp_path / f"features_{name}.h5"
        write_features(images[name], features[name], 2.0, fit)
    channels = ["image", "fit_residual"]
    x, y, counts = load_training_set(images, features, channels)
    assert x.shape == (3 * N_IMAGES, 2, 64, 64)
    np.testing.assert_array_equal(x[:N_IMAGES, 1], read_feature(features["no_sub"], "fit_residual"))
    index = np.arange(len(y))
    split = {
        "train": index[index % 3 == 0],
        "val": index[index % 3 == 1],
        "test": index[index % 3 == 2],
    }
    cfg = TrainConfig(
        architecture="plain_cnn", channels=channels, max_epochs=1, batch_size=4, device="cpu"
    )
    train(x, y, split, cfg, tmp_path / "run", log=lambda _: None)
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert checkpoint["channels"] == channels

    new = read_image_file(images["cdm"])["images"][:2]
    section = read_instrument_section(images["cdm"])
    with pytest.raises(ValueError, match="needs the images' instrument"):
        predict_images(checkpoint, new, device="cpu")
    fitting = {"device": "cpu", "n_starts": 2}
    probs = predict_images(checkpoint, new, device="cpu", instrument=section, fitting=fitting)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # the features file remembers how its fits were made; a checkpoint carrying that needs no
    # instrument on the command line (train_from_files stores it) and gives the same answer
    stored = read_lens_model_settings(features["cdm"])
    assert stored["instrument"] == section and "n_starts" in stored["fitting"]
    settings = {**stored, "fitting": {**stored["fitting"], **fitting}}
    remembered = {**checkpoint, "config": {**checkpoint["config"], "lens_model_settings": settings}}
    np.testing.assert_allclose(predict_images(remembered, new, device="cpu"), probs, atol=1e-6)
    oracle = {**checkpoint, "channels": ["image", "oracle_residual"]}
    with pytest.raises(ValueError, match="oracle_residual needs"):
        predict_images(oracle, new, device="cpu", instrument=section)


def test_a_features_file_of_one_kind_holds_only_its_planes(simulated, tmp_path):
    path, fit = simulated["cdm"]
    planes = {}
    for kind in ("residual", "lens_model", "oracle"):
        smoothing = 2.0 if kind == "residual" else None
        write_features(path, tmp_path / f"{kind}.h5", smoothing, fit, kind)
        planes[kind] = feature_names(tmp_path / f"{kind}.h5")
    assert planes == {
        "residual": ["residual"],
        "lens_model": ["fit_residual", "source_plane", "source_residual"],
        "oracle": ["oracle_residual"],
    }
    with pytest.raises(DataError, match="the lens_model features need its fit file"):
        write_features(path, tmp_path / "x.h5", None, None, "lens_model")
    with pytest.raises(DataError, match="the residual features need --smoothing-sigma-px"):
        write_features(path, tmp_path / "x.h5", None, fit, "residual")
