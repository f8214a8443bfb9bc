"""The smooth-lens fitter (darklens.fitting): its model against the simulator and lenstronomy,
its Jacobian against forward-mode autodiff, fits of simulated images, and the fit command."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
from darklens.config import simulation_common
from darklens.fitting.files import fit_class_file, instrument_of, substructure_chi_refit
from darklens.fitting.model import SmoothLensModel, parameter_names
from darklens.fitting.solver import FitSettings, fit_images, initial_guesses, refit_images
from darklens.io.class_files import DataError, read_image_file, write_image_file
from darklens.io.fit_files import read_fit_file
from darklens.physics.instrument import Instrument, gaussian_psf_kernel
from darklens.simulation.presets import resolve
from darklens.simulation.render import (
    build_instrument,
    draw_macro_model,
    image_rng,
    render_models,
)
from darklens.simulation.shards import resimulate_image, write_shard
from darklens.simulation.substructure import Substructure


def _common(config, lens_light=False):
    common = resolve(simulation_common(config))[0]
    common["lens_light"] = {**common["lens_light"], "enabled": lens_light}
    return common


def _vectors(params):
    """(parameter vector, amplitudes) of the fitter for the simulator's drawn parameters."""
    record = params.record
    vector = [record[name] for name in parameter_names(False)]
    amplitudes = [record["source_amp"]]
    if params.lens_light is not None:
        light = params.lens_light
        vector += [light[k] for k in ("R_sersic", "n_sersic", "e1", "e2")]
        amplitudes.append(light["amp"])
    return torch.tensor([vector], dtype=torch.float64), torch.tensor([amplitudes])


def _fit_instrument(instrument) -> Instrument:
    return Instrument(
        instrument.n_pix,
        instrument.pixel_scale_arcsec,
        instrument.supersampling,
        instrument.exposure_time_s,
        instrument.background_rms,
        instrument.psf_kernel,
    )


@pytest.mark.parametrize("lens_light", [False, True])
@pytest.mark.parametrize("which", ["tiny", "default"])
def test_model_at_the_true_parameters_is_the_simulators_smooth_image(
    which, lens_light, tiny_config, default_config
):
    config = tiny_config if which == "tiny" else default_config
    common = _common(config, lens_light)
    instrument = build_instrument(common["instrument"])
    model = SmoothLensModel(_fit_instrument(instrument), lens_light)
    for k in range(3):
        rng = image_rng(11, "no_sub", k)
        params = draw_macro_model(rng, common["lens"], common["source"], common["lens_light"])
        _, smooth = render_models(instrument, params, Substructure(), instrument.ray_grid())
        vector, amplitudes = _vectors(params)
        image = model.image(vector, amplitudes.double(), instrument.supersampling)[0].numpy()
        assert np.abs(image - smooth).max() <= 1.5e-6 * smooth.max()


@pytest.mark.parametrize("lens_light", [False, True])
def test_jacobian_equals_forward_mode_autodiff(lens_light):
    instrument = Instrument(16, 0.15, 2, 1000.0, 0.02, gaussian_psf_kernel(0.2, 0.15))
    model = SmoothLensModel(instrument, lens_light)
    rng = np.random.default_rng(3)
    b = 3
    columns = [
        rng.uniform(0.8, 1.0, b),
        *rng.uniform(-0.2, 0.2, (2, b)),
        *rng.uniform(-0.1, 0.1, (2, b)),
        *rng.uniform(-0.05, 0.05, (2, b)),
        rng.uniform(0.15, 0.3, b),
        rng.uniform(0.8, 2.0, b),
        *rng.uniform(-0.3, 0.3, (4, b)),
    ]
    amplitudes = [rng.uniform(10, 40, b)]
    if lens_light:
        columns += [rng.uniform(0.4, 1.0, b), rng.uniform(2, 4, b), *rng.uniform(-0.2, 0.2, (2, b))]
        amplitudes.append(rng.uniform(5, 10, b))
    params = torch.tensor(np.stack(columns, axis=1))
    amps = torch.tensor(np.stack(amplitudes, axis=1))
    basis, jacobian = model.basis_and_jacobian(params, amps, 2)
    reference = torch.func.jacfwd(lambda p: model.image(p, amps, 2))(params)
    reference = torch.stack([reference[k, :, :, k, :] for k in range(b)]).permute(0, 3, 1, 2)
    scale = reference.abs().amax(dim=(0, 2, 3), keepdim=True)
    assert ((jacobian - reference).abs() / scale).max() < 1e-10
    torch.testing.assert_close(basis, model.basis(params, 2), rtol=0, atol=0)


def _simulate(tmp_path, config, class_name="no_sub", n=12, seed=5, lens_light=False):
    common = simulation_common(config)
    common["images_per_class"] = common["images_per_shard"] = n
    common["lens_light"] = {**common["lens_light"], "enabled": lens_light}
    settings = config["simulation"]["classes"][class_name]
    path = tmp_path / f"{class_name}.h5"
    write_shard(common, class_name, settings, 0, seed, path)
    return path


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory, tiny_config):
    """A fitted tiny no_sub class file: (class file, fit file)."""
    folder = tmp_path_factory.mktemp("fit")
    path = _simulate(folder, tiny_config, n=16)
    out = folder / "fits" / "no_sub.h5"
    fit_class_file(path, out, {**tiny_config["fitting"], "device": "cpu"})
    return path, out


def test_fits_of_tiny_no_sub_images_reach_the_noise(tiny_fit):
    path, out = tiny_fit
    fit, truth = read_fit_file(out), read_image_file(path)["params"]
    assert np.all(fit["converged"]) and all(r == "" for r in fit["reason"])
    assert 0.9 < np.median(fit["chi2_reduced"]) < 1.1
    assert np.median(np.abs(fit["params"]["theta_E"] - truth["theta_E"])) < 0.005
    assert fit["model"].dtype == np.float32 and fit["model"].shape == (16, 32, 32)
    assert fit["attrs"]["class_name"] == "no_sub"
    assert "theta_E" in json.loads(fit["attrs"]["units"])
    np.testing.assert_array_equal(fit["image_index"], np.arange(16))


def test_substructure_chi_refit_is_zero_without_substructure(tiny_fit):
    fit = read_fit_file(tiny_fit[1])
    assert fit["substructure_chi_refit"].dtype == np.float64
    np.testing.assert_array_equal(fit["substructure_chi_refit"], np.zeros(16))
    assert json.loads(fit["attrs"]["units"])["substructure_chi_refit"] == "dimensionless"
    assert "best_smooth_fit" in fit["attrs"]["substructure_chi_refit_definition"]


@pytest.fixture(scope="module")
def tiny_cdm_fit(tmp_path_factory, tiny_config):
    """A fitted tiny cdm class file: (class file, fit file, summary)."""
    folder = tmp_path_factory.mktemp("cdm_fit")
    path = _simulate(folder, tiny_config, class_name="cdm", n=8)
    out = folder / "fits" / "cdm.h5"
    summary = fit_class_file(path, out, {**tiny_config["fitting"], "device": "cpu"})
    return path, out, summary


def test_substructure_chi_refit_of_cdm_is_stored_and_below_the_true_smooth_chi(tiny_cdm_fit):
    path, out, summary = tiny_cdm_fit
    chi = read_image_file(path)["params"]["substructure_chi"]
    refit = read_fit_file(out)["substructure_chi_refit"]
    assert refit.shape == (8,) and np.all(chi > 0) and np.all(refit > 0)
    # the true smooth image is one smooth model: the best smooth fit is at least as close
    assert np.all(refit <= chi * (1 + 1e-3))
    assert np.median(refit) < np.median(chi)  # a refit absorbs part of the signal
    assert summary["n_refitted"] == 8 and summary["n_refit_converged"] == 8
    assert summary["median_substructure_chi_refit"] == pytest.approx(np.median(refit))


def test_a_smooth_refit_absorbs_a_smooth_image(tiny_cdm_fit):
    """The refit from the noisy fit reproduces the noiseless *smooth* image to far below the
    noise: what it leaves of an image with substructure is the substructure's."""
    path, out, _ = tiny_cdm_fit
    data, fit = read_image_file(path), read_fit_file(out)
    instrument, lens_light, _ = instrument_of(path, data["attrs"])
    model = SmoothLensModel(instrument, lens_light)
    images = [resimulate_image(data["attrs"], k) for k in range(3)]
    smooth = np.stack([image.smooth for image in images])
    start = np.stack([fit["params"][name][:3] for name in model.names], axis=1)
    refit = refit_images(model, smooth, FitSettings(), start)
    chi = np.sqrt(((smooth - refit["model"]) ** 2 / instrument.variance(smooth)).sum(axis=(1, 2)))
    assert np.all(chi < 0.05)
    np.testing.assert_allclose(refit["params"][:, 0], data["params"]["theta_E"][:3], atol=1e-3)


def test_a_class_file_that_does_not_resimulate_is_refused(tiny_cdm_fit):
    path, out, _ = tiny_cdm_fit
    data = read_image_file(path)
    data["params"]["substructure_chi"] = data["params"]["substructure_chi"] * 1.01
    instrument, lens_light, _ = instrument_of(path, data["attrs"])
    start = np.stack([read_fit_file(out)["params"][name] for name in parameter_names(False)], 1)
    with pytest.raises(DataError, match="does not re-simulate"):
        substructure_chi_refit(
            path, SmoothLensModel(instrument, lens_light), data, FitSettings(), start
        )


def test_lenstronomy_likelihood_of_the_fit_equals_darklens_chi2(tiny_fit):
    pytest.importorskip("lenstronomy")
    from darklens.simulation import reference

    path, out = tiny_fit
    data, fit = read_image_file(path), read_fit_file(out)
    _, _, section = instrument_of(path, data["attrs"])
    p = fit["params"]
    k = 0
    model = reference.image_model(
        section["n_pix"],
        section["pixel_scale_arcsec"],
        section["supersampling"],
        section["psf_fwhm_arcsec"],
        section["exposure_time_s"],
        section["background_rms"],
        ["SIE", "SHEAR"],
    )
    lens = [
        {
            "theta_E": p["theta_E"][k],
            "e1": p["e1"][k],
            "e2": p["e2"][k],
            "center_x": p["lens_center_x"][k],
            "center_y": p["lens_center_y"][k],
        },
        {"gamma1": p["gamma1"][k], "gamma2": p["gamma2"][k], "ra_0": 0.0, "dec_0": 0.0},
    ]
    source = [{name: p[f"source_{name}"][k] for name in ("amp", "R_sersic", "n_sersic", "e1")}]
    source[0].update(
        e2=p["source_e2"][k], center_x=p["source_center_x"][k], center_y=p["source_center_y"][k]
    )
    image = data["images"][k].astype(np.float64)
    model.Data.update_data(image)
    lenstronomy_image = model.image(lens, source)
    log_l = model.Data.log_likelihood(lenstronomy_image, np.ones_like(image))
    assert -2.0 * log_l == pytest.approx(fit["chi2"][k], rel=1e-6)


def test_initial_guesses_are_data_driven_and_near_the_ring(tiny_config, tmp_path):
    path = _simulate(tmp_path, tiny_config, n=8)
    data = read_image_file(path)
    starts = initial_guesses(data["images"], 0.12, False, 5)
    assert starts.shape == (8, 5, 13)
    theta = starts[:, 0, 0]
    assert np.median(np.abs(theta - data["params"]["theta_E"])) < 0.1
    assert np.all(np.hypot(starts[:, :, 1], starts[:, :, 2]) > 0)  # never exactly e = 0


def test_a_fit_that_does_not_converge_is_recorded(tiny_config, tmp_path):
    path = _simulate(tmp_path, tiny_config, n=3)
    settings = {**tiny_config["fitting"], "max_iterations": 1, "device": "cpu"}
    out = tmp_path / "fit.h5"
    fit_class_file(path, out, settings)
    fit = read_fit_file(out)
    assert not fit["converged"].any()
    assert all("not converged after 1 iterations" in reason for reason in fit["reason"])
    assert np.all(np.isfinite(fit["chi2"]))


def test_fit_command_writes_the_file_and_refuses_nan(tiny_config, tmp_path):
    path = _simulate(tmp_path, tiny_config, n=2)
    fitting = json.dumps({**tiny_config["fitting"], "n_starts": 1})
    out = tmp_path / "fits" / "no_sub.h5"
    command = [sys.executable, "-m", "darklens", "fit", "--input", str(path), "--output"]
    result = subprocess.run(
        [*command, str(out), "--fitting", fitting], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    with h5py.File(out) as handle:
        assert set(handle) >= {"params", "chi2_reduced", "model", "converged", "reason"}
        assert handle["params/theta_E"].shape == (2,)
    data = read_image_file(path)
    data["images"][1, 3, 4] = np.nan
    data["subhalo_offsets"] = data["subhalos"].pop("offset")
    if "compensation_disks" in data:  # read back as a group with its offsets, written apart
        data["compensation_offsets"] = data["compensation_disks"].pop("offset")
    bad = tmp_path / "bad.h5"
    attrs = {k: v for k, v in data["attrs"].items() if k not in ("darklens_version", "n_images")}
    write_image_file(bad, data, attrs)
    result = subprocess.run(
        [*command, str(tmp_path / "bad_fit.h5"), "--fitting", fitting, "--input", str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "NaN" in result.stderr
    assert not (tmp_path / "bad_fit.h5").exists()


def test_an_imported_class_file_without_instrument_is_refused(tmp_path):
    with pytest.raises(DataError, match="resolved_config"):
        instrument_of(tmp_path / "x.h5", {"class_name": "cdm"})


def test_settings_come_from_the_config(default_config):
    settings = FitSettings.from_config(default_config["fitting"])
    assert settings.n_starts == default_config["fitting"]["n_starts"]


@pytest.mark.slow
def test_default_no_sub_fits_meet_the_quality_targets(default_config, tmp_path):
    """The targets of docs/fitting.md on 64 default no_sub images (~1 min on one core)."""
    path = _simulate(tmp_path, default_config, n=64, seed=20261127)
    data = read_image_file(path)
    common = _common(default_config)
    model = SmoothLensModel(_fit_instrument(build_instrument(common["instrument"])), False)
    fit = fit_images(model, data["images"], FitSettings.from_config(default_config["fitting"]))
    chi2 = fit["chi2_reduced"]
    assert 0.95 <= np.median(chi2) <= 1.10
    assert np.mean(chi2 < 1.3) >= 0.95
    assert np.median(np.abs(fit["params"][:, 0] - data["params"]["theta_E"])) < 0.005
