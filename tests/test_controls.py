"""Shortcut controls: the radial profile, the logistic regressions on the split, their files."""

import numpy as np
import pytest
from darklens import CLASS_NAMES
from darklens.io.class_files import DataError, write_image_file
from darklens.io.fit_files import write_fit_file
from darklens.io.tables import read_metrics, read_predictions
from darklens.learning.controls import (
    annulus_weights,
    fit_control,
    radial_profile,
    total_flux,
    train_control,
)
from darklens.learning.split import write_stratified_split

SIZE = 32
N_PER_CLASS = 90
FRACTIONS = {"train": 0.5, "val": 0.25, "test": 0.25}
TRAINING_KEYS = {
    "n",
    "accuracy",
    "auc_macro_ovr",
    "auc_undefined_classes",
    "confusion_matrix",
    "cdm_to_axion",
    "axion_to_cdm",
    "class_names",
    *[f"auc_{c}" for c in CLASS_NAMES],
    *[f"recall_{c}" for c in CLASS_NAMES],
    "model",
    "channels",
    "seed",
    "best_epoch",
    "best_val_acc",
    "best_val_loss",
    "n_train",
    "n_val",
    "n_test",
    "n_parameters",
    "darklens_version",
}


def ring(radius: float, size: int = SIZE, width: float = 0.4) -> np.ndarray:
    y, x = np.indices((size, size), dtype=np.float64)
    r = np.hypot(y - (size - 1) / 2, x - (size - 1) / 2)
    return np.exp(-0.5 * ((r - radius) / width) ** 2)


def write_class(path, name, images, params=None):
    n = len(images)
    data = {
        "images": np.asarray(images, dtype=np.float32),
        "image_index": np.arange(n),
        "params": params or {"theta_E": np.ones(n)},
        "subhalos": {"mass": np.zeros(0)},
        "subhalo_offsets": np.zeros(n + 1, dtype=np.int64),
    }
    write_image_file(path, data, {"class_name": name, "seed": 0})


def write_fit(path, name, params, size=SIZE, chi2_reduced=None):
    n = len(next(iter(params.values())))
    fit = {
        "chi2": np.ones(n),
        "chi2_reduced": np.ones(n) if chi2_reduced is None else chi2_reduced,
        "model": np.zeros((n, size, size), dtype=np.float32),
        "converged": np.ones(n, dtype=bool),
        "reason": [""] * n,
        "iterations": np.ones(n, dtype=np.int64),
        "start": np.zeros(n, dtype=np.int64),
    }
    write_fit_file(path, params, fit, np.arange(n), {"class_name": name})


def data_set(tmp_path, radii, seed=0):
    """Class files whose images are noisy rings of the radius given per class (a radius drawn
    from the same range for every class when `radii` is None), fit files and a split."""
    rng = np.random.default_rng(seed)
    images, fits = [], []
    (tmp_path / "fits").mkdir(exist_ok=True)
    for k, name in enumerate(CLASS_NAMES):
        centre = (
            rng.uniform(6, 12, N_PER_CLASS) if radii is None else np.full(N_PER_CLASS, radii[k])
        )
        stack = [ring(r + rng.normal(0, 0.3)) + rng.normal(0, 0.2, (SIZE, SIZE)) for r in centre]
        write_class(tmp_path / f"{name}.h5", name, stack)
        params = {p: rng.normal(size=N_PER_CLASS) for p in ("theta_E", "e1", "gamma1")}
        write_fit(tmp_path / "fits" / f"{name}.h5", name, params)
        images.append(str(tmp_path / f"{name}.h5"))
        fits.append(str(tmp_path / "fits" / f"{name}.h5"))
    counts = dict.fromkeys(CLASS_NAMES, N_PER_CLASS)
    split = write_stratified_split(tmp_path / "split.json", counts, FRACTIONS, seed=3)
    return images, fits, tmp_path / "split.json", split


def test_annuli_are_one_pixel_wide_and_average():
    weights = annulus_weights(SIZE, SIZE)
    assert weights.shape == (SIZE * SIZE, SIZE // 2)
    np.testing.assert_allclose(weights.sum(axis=0), 1.0)
    profile = radial_profile(np.full((2, SIZE, SIZE), 3.0))
    np.testing.assert_allclose(profile, 3.0)  # a flat image: its value in every annulus
    assert radial_profile(np.zeros((1, 33, 40))).shape == (1, 16)


@pytest.mark.parametrize("radius", [3.5, 8.5, 12.5])
def test_a_ring_gives_a_profile_peaking_at_its_radius(radius):
    profile = radial_profile(ring(radius)[None] * 5.0)[0]
    assert np.argmax(profile) == int(radius)
    assert profile[int(radius)] > 0.7 * 5.0  # most of the annulus is on the ring
    assert profile[int(radius) - 2] < 0.01 * 5.0 and profile[int(radius) + 2] < 0.01 * 5.0


def test_total_flux_is_the_pixel_sum():
    images = np.random.default_rng(0).random((4, 8, 8))
    np.testing.assert_allclose(total_flux(images), images.sum(axis=(1, 2)))


def test_radial_profile_control_separates_rings_of_different_sizes(tmp_path):
    images, _, split_path, split = data_set(tmp_path, radii=(5.0, 8.0, 11.0))
    out = tmp_path / "controls" / "radial_profile"
    metrics = train_control("radial_profile", images, split_path, out, log=lambda _: None)
    assert metrics["auc_macro_ovr"] > 0.98
    index, labels, probs, names = read_predictions(out / "predictions.csv")
    assert names == list(CLASS_NAMES)
    np.testing.assert_array_equal(index, split["test"])
    np.testing.assert_array_equal(labels, np.asarray(split["test"]) // N_PER_CLASS)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    stored = read_metrics(out / "metrics.json")
    assert TRAINING_KEYS <= set(stored)
    assert stored["seed"] is None and stored["best_epoch"] is None
    assert stored["n_test"] == len(split["test"]) and stored["C"] in stored["C_grid"]


def test_nuisance_control_is_at_chance_on_identical_classes(tmp_path):
    images, fits, split_path, _ = data_set(tmp_path, radii=None)
    out = tmp_path / "controls" / "nuisance"
    metrics = train_control("nuisance", images, split_path, out, fits, log=lambda _: None)
    assert abs(metrics["auc_macro_ovr"] - 0.5) < 0.12
    assert metrics["features"] == ["e1", "gamma1", "theta_E", "total_flux"]
    assert read_predictions(out / "predictions.csv")[2].shape == (metrics["n_test"], 3)


def test_controls_are_deterministic(tmp_path):
    images, fits, split_path, _ = data_set(tmp_path, radii=None)
    for run in ("a", "b"):
        train_control("nuisance", images, split_path, tmp_path / run, fits, log=lambda _: None)
    for name in ("predictions.csv", "metrics.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_test_images_choose_nothing():
    """C comes from the validation split alone: changing the test images changes no choice."""
    rng = np.random.default_rng(1)
    labels = np.arange(300) % 3
    features = rng.normal(size=(300, 5)) + 0.4 * labels[:, None]
    split = {"train": np.arange(0, 150), "val": np.arange(150, 225), "test": np.arange(225, 300)}
    _, info = fit_control(features, labels, split, 3)
    changed = features.copy()
    changed[split["test"]] = rng.normal(size=(75, 5)) * 100
    _, info_changed = fit_control(changed, labels, split, 3)
    assert info_changed["C"] == info["C"]
    assert info_changed["val_log_loss_by_C"] == info["val_log_loss_by_C"]
    assert info["val_log_loss_by_C"][info["C_grid"].index(info["C"])] == min(
        info["val_log_loss_by_C"]
    )


def test_a_non_finite_fitted_value_takes_the_training_median():
    rng = np.random.default_rng(2)
    labels = np.arange(90) % 3
    features = rng.normal(size=(90, 2))
    features[0, 1] = np.nan
    split = {"train": np.arange(0, 45), "val": np.arange(45, 70), "test": np.arange(70, 90)}
    probs, info = fit_control(features, labels, split, 3)
    assert info["n_non_finite_features"] == 1 and np.isfinite(probs).all()


def test_a_fit_file_of_another_class_is_refused(tmp_path):
    images, fits, split_path, _ = data_set(tmp_path, radii=None)
    with pytest.raises(DataError, match="holds the fit of"):
        train_control("nuisance", images, split_path, tmp_path / "o", fits[::-1], log=print)


def test_fit_chi2_control_reads_the_fits_goodness_and_detects_a_worse_fit(tmp_path):
    """Classes whose smooth-lens fits leave more residual (cdm, axion) than no_sub's (chi2 ~ 1)."""
    images, fits, split_path, _ = data_set(tmp_path, radii=None)
    rng = np.random.default_rng(4)
    for k, (name, path) in enumerate(zip(CLASS_NAMES, fits, strict=True)):
        params = {p: rng.normal(size=N_PER_CLASS) for p in ("theta_E", "e1", "gamma1")}
        chi2 = np.exp(rng.normal(np.log(1.0 + 0.6 * k), 0.1, N_PER_CLASS))  # 1, 1.6, 2.2
        write_fit(path, name, params, chi2_reduced=chi2)
    out = tmp_path / "controls" / "fit_chi2"
    metrics = train_control("fit_chi2", images, split_path, out, fits, log=lambda _: None)
    assert metrics["features"] == ["log10_chi2_reduced"]
    assert metrics["auc_no_sub"] > 0.95 and metrics["auc_macro_ovr"] > 0.9
    with pytest.raises(ValueError, match="the fit_chi2 control needs one fit file per class"):
        train_control("fit_chi2", images, split_path, out, fits[:2], log=lambda _: None)
