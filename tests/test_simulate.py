"""Simulator: physical identities, finiteness over 1e5 draws, granules, counts, PSF files
(presets: test_presets.py).

The finiteness test draws the parameters of 100,000 images of every class (macro model, source,
substructure) and evaluates them at rays: the lens centre, the source centre, every subhalo
centre exactly, a pixel centre and random rays (not 100,000 full images; full images of every
class with subhalos snapped onto rays are rendered separately).
"""

import json

import numpy as np
import pytest
from darklens.config import load_config
from darklens.physics.instrument import Instrument, load_psf_kernel
from darklens.physics.lensing import SIE
from darklens.physics.light import SersicEllipse
from darklens.simulation.render import (
    ImageParameters,
    build_instrument,
    draw_macro_model,
    render_models,
)
from darklens.simulation.shards import simulate_shard
from darklens.simulation.substructure import SUBSTRUCTURE_MODELS, Substructure


@pytest.fixture(scope="module")
def sim(repo):
    config = load_config(repo / "config.yaml")["simulation"]
    common = {k: v for k, v in config.items() if k != "classes"}
    return common, config["classes"]


def _small(common, n_pix=32, images=4):
    common = {**common, "images_per_class": images, "images_per_shard": images}
    common["instrument"] = {**common["instrument"], "n_pix": n_pix}
    return common


def test_mean_convergence_inside_the_einstein_radius_of_an_sis_is_one():
    from darklens.physics.lensing import SIS

    theta_e = 1.3
    r = (np.arange(4000) + 0.5) / 4000 * theta_e  # midpoint rule in r, exact in angle
    kappa = SIS(theta_E=theta_e, center_x=0.2, center_y=-0.1).convergence(0.2 + r, -0.1 + 0 * r)
    mean = np.sum(kappa * 2 * np.pi * r) * (theta_e / 4000) / (np.pi * theta_e**2)
    assert mean == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("beta", [0.2, 0.5, 0.8])
def test_total_magnification_of_a_small_source_behind_an_sis(beta):
    """mu = 2 theta_E / beta for beta < theta_E, measured as lensed / unlensed flux."""
    theta_e = 1.0
    instrument = Instrument(160, 0.025, 4, 1.0, 1.0)
    source = {"amp": 1.0, "R_sersic": 0.02, "n_sersic": 1.0, "center_x": beta, "center_y": 0.0}
    lens = {"theta_E": theta_e, "e1": 0.0, "e2": 0.0, "center_x": 0.0, "center_y": 0.0}
    params = ImageParameters(lens, {"gamma1": 0.0, "gamma2": 0.0}, source)
    lensed, _ = render_models(instrument, params, Substructure(), instrument.ray_grid())
    x, y = instrument.ray_grid()
    unlensed = instrument.bin(SersicEllipse(**source).surface_brightness(x, y)).sum()
    assert lensed.sum() / unlensed == pytest.approx(2 * theta_e / beta, rel=0.01)


def _macro_arrays(macros):
    """The SIE and shear of many drawn images as one profile each, members along axis 0."""
    from darklens.physics.lensing import SIE, Shear

    def stack(part):
        return {
            k: np.array([getattr(p, part)[k] for p in macros]) for k in getattr(macros[0], part)
        }

    return SIE(**stack("lens")), Shear(**stack("shear"))


def _assert_finite_at_rays(lens, shear, image, rng, members=None):
    """The macro lens (SIE + shear) of images `image` plus, if given, one perturber per entry
    (profile class, parameter arrays), at the perturber's centre (exactly), the lens centre, a
    pixel centre and a random ray: all finite."""
    sie = type(lens)(**{k: v[image] for k, v in lens.kwargs().items()})
    shear = type(shear)(gamma1=shear.gamma1[image], gamma2=shear.gamma2[image])
    size = len(image)
    rays = [
        (sie.center_x, sie.center_y),
        (np.full(size, 0.04), np.full(size, -0.04)),
        (rng.uniform(-3, 3, size), rng.uniform(-3, 3, size)),
    ]
    member = None
    if members is not None:
        profile_cls, params = members
        member = profile_cls(**params)
        rays.append((params["center_x"], params["center_y"]))
    for x, y in rays:
        ax, ay = sie.deflection(x, y)
        sx, sy = shear.deflection(x, y)
        mx, my = member.deflection(x, y) if member is not None else (0.0, 0.0)
        assert np.isfinite(ax + sx + mx).all() and np.isfinite(ay + sy + my).all(), members


def test_no_nan_or_inf_in_1e5_draws_of_every_class(sim):
    """The simulator's own samplers (`draw_macro_model`, the class's `SUBSTRUCTURE_MODELS`
    entry) with the config: 1e5 macro models (every class draws them alike; `no_sub` is
    nothing more) at their lens centre, a pixel centre and random rays; 1e5 perturbers of
    every population (CDM point masses and TNFW halos, vortex points) also at their own
    centres, with their image's macro lens; the source at the lensed rays of 2,000 draws; the
    granule field's deflection and convergence of 200 draws."""
    common, classes = sim
    rng = np.random.default_rng(2026)
    instrument = build_instrument(_small(common, n_pix=16)["instrument"])
    macros = [
        draw_macro_model(rng, common["lens"], common["source"], common["lens_light"])
        for _ in range(100_000)
    ]
    lens, shear = _macro_arrays(macros)
    _assert_finite_at_rays(lens, shear, np.arange(len(macros)), rng)
    for class_name, key, variant, target in [
        ("cdm", "profile", "point_mass", len(macros)),
        ("cdm", "profile", "tnfw", len(macros)),
        ("axion", "variant", "vortex", len(macros)),
        ("axion", "variant", "granules", 200),
    ]:
        settings = {**classes[class_name], key: variant}
        drawn, image, n_members = [], [], 0
        for index, params in enumerate(macros[:target]):
            sub = SUBSTRUCTURE_MODELS[class_name](rng, settings, params, common, instrument)
            if sub.population is not None:
                drawn.append(sub.population[1])
                image.append(np.full(len(sub.population[1]["center_x"]), index))
                n_members += len(image[-1])
                profile_cls = sub.population[0]
            if sub.field_deflection is not None:
                alpha = sub.field_deflection(*instrument.ray_grid())
                assert np.isfinite(alpha).all() and np.isfinite(sub.field_convergence).all()
            if n_members >= target:
                break
        if variant != "granules":
            members = {k: np.concatenate([d[k] for d in drawn]) for k in drawn[0]}
            assert n_members >= target, variant
            _assert_finite_at_rays(lens, shear, np.concatenate(image), rng, (profile_cls, members))
    for params in macros[:2000]:
        x = np.array([params.lens["center_x"], params.source["center_x"], 0.04])
        y = np.array([params.lens["center_y"], params.source["center_y"], -0.04])
        bx, by = SIE(**params.lens).deflection(x, y)
        assert np.isfinite(SersicEllipse(**params.source).surface_brightness(x - bx, y - by)).all()


@pytest.mark.parametrize("profile", ["point_mass", "tnfw"])
def test_full_images_with_subhalos_on_rays_and_pixel_centres_are_finite(sim, profile):
    common, classes = sim
    common = _small(common)
    instrument = build_instrument(common["instrument"])
    rng = np.random.default_rng(5)
    ray = instrument.pixel_scale_arcsec / instrument.supersampling
    for _ in range(20):
        params = draw_macro_model(rng, common["lens"], common["source"], {})
        settings = {**classes["cdm"], "profile": profile}
        sub = SUBSTRUCTURE_MODELS["cdm"](rng, settings, params, common, instrument)
        members = sub.population[1]
        half = len(members["center_x"]) // 2
        for key in ("center_x", "center_y"):  # half on rays, half on pixel centres
            members[key][:half] = (np.round(members[key][:half] / ray - 0.5) + 0.5) * ray
            members[key][half:] = (
                np.round(members[key][half:] / instrument.pixel_scale_arcsec - 0.5) + 0.5
            ) * instrument.pixel_scale_arcsec
        members["center_x"][0], members["center_y"][0] = params.lens["center_x"], 0.5 * ray
        model, smooth = render_models(instrument, params, sub, instrument.ray_grid())
        assert np.isfinite(model).all() and np.isfinite(smooth).all()


def test_shards_do_not_change_images_and_store_the_resolved_preset(sim):
    common, classes = sim
    common = _small(common, images=6)
    whole = simulate_shard({**common, "images_per_shard": 6}, "cdm", classes["cdm"], 0, 3)
    part = simulate_shard({**common, "images_per_shard": 4}, "cdm", classes["cdm"], 1, 3)
    assert whole["images"][4:].tobytes() == part["images"].tobytes()
    assert whole["resolved"]["simulation"]["preset"] == "default"
    assert np.all(whole["params"]["substructure_chi"] > 0)


def test_mass_fraction_sets_the_mean_subhalo_mass(sim):
    from darklens.physics.cosmology import DEFAULT_COSMOLOGY

    common, classes = sim
    settings = {
        **classes["cdm"],
        "n_subhalos": {"distribution": "mass_fraction", "mean": 0, "mass_fraction": 0.01},
    }
    rng = np.random.default_rng(0)
    instrument = build_instrument(_small(common)["instrument"])
    totals = []
    for _ in range(400):
        params = draw_macro_model(rng, common["lens"], common["source"], {})
        sub = SUBSTRUCTURE_MODELS["cdm"](rng, settings, params, common, instrument)
        sigma = DEFAULT_COSMOLOGY.sigma_crit(common["lens"]["z_lens"], common["lens"]["z_source"])
        lens_mass = np.pi * sigma * params.lens["theta_E"] * settings["radius_arcsec"]
        totals.append(sub.record["substructure_mass_msun"] / lens_mass)
    assert np.mean(totals) == pytest.approx(0.01, rel=0.15)


def test_granules_deflection_matches_the_analytic_gaussian_blob():
    """The granule path (coarse grid, FFT solve, Lagrange interpolation to rays) on a blob."""
    from darklens.physics.lensing.fft_poisson import deflection_from_convergence
    from darklens.physics.lensing.grid import MARGIN, lagrange_upsample

    n, factor, ray = 32, 4, 0.02
    pixel = factor * ray
    node = (np.arange(n + 2 * MARGIN) - MARGIN - 0.5 * (n - 1)) * pixel
    k0, s = 0.05, 0.4
    r2 = node[None, :] ** 2 + node[:, None] ** 2
    ax, _ = deflection_from_convergence(k0 * np.exp(-r2 / (2 * s * s)), pixel)
    fine = (np.arange(n * factor) - 0.5 * (n * factor - 1)) * ray
    x, y = np.meshgrid(fine, fine)
    r = np.hypot(x, y)
    expected = 2 * k0 * s * s * -np.expm1(-(r**2) / (2 * s * s)) / r**2 * x
    assert np.abs(lagrange_upsample(ax, factor) - expected).max() < 1e-3 * np.abs(expected).max()


def test_granule_images_and_psf_kernel_file(sim, tmp_path):
    common, classes = sim
    kernel = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0])
    np.save(tmp_path / "psf.npy", kernel)
    np.savetxt(tmp_path / "psf.txt", kernel)
    np.testing.assert_allclose(load_psf_kernel(tmp_path / "psf.txt"), kernel / 16)
    common = _small(common)
    common["instrument"]["psf_kernel_file"] = str(tmp_path / "psf.npy")
    assert build_instrument(common["instrument"]).psf_kernel.shape == (3, 3)
    settings = {**classes["axion"], "variant": "granules"}
    data = simulate_shard(common, "axion", settings, 0, 2)
    assert np.isfinite(data["images"]).all()
    # rms over the field of view (the field has rms sigma_kappa over its slightly larger grid)
    assert np.all((data["params"]["kappa_rms"] > 0) & (data["params"]["kappa_rms"] < 0.1))
    np.save(tmp_path / "bad.npy", np.ones((2, 2)))
    with pytest.raises(ValueError, match="odd square"):
        load_psf_kernel(tmp_path / "bad.npy")


def test_mass_compensation_is_in_the_image_and_not_in_the_smooth_companion(sim):
    """sheet vs none: same draws and the same image without substructure (the smooth
    companion has neither the subhalos nor the disk), different images; chi compares the image
    with both against the image with neither."""
    from darklens.simulation.render import image_rng, simulate_image_details

    common, classes = sim
    instrument = build_instrument(_small(common)["instrument"])
    rays = instrument.ray_grid()
    for name in ("cdm", "axion"):
        images = {}
        for mode in ("sheet", "none"):
            settings = {**classes[name], "mass_compensation": mode}
            rng = image_rng(5, name, 0)
            images[mode] = simulate_image_details(instrument, common, name, settings, rng, rays)
        sheet, none = images["sheet"], images["none"]
        assert sheet.smooth.tobytes() == none.smooth.tobytes()
        assert not np.array_equal(sheet.model, none.model)
        assert sheet.record["compensation_kappa"] < 0 == none.record["compensation_kappa"]
        chi = instrument.signal_chi(sheet.model, sheet.smooth)
        assert sheet.record["substructure_chi"] == chi


def test_shards_store_the_compensating_disk_with_units(sim, tmp_path):
    from darklens.io.class_files import read_image_file
    from darklens.simulation.shards import write_shard
    from darklens.simulation.substructure import compensation_from_record

    common, classes = sim
    common = _small(common, images=3)
    write_shard(common, "cdm", classes["cdm"], 0, 4, tmp_path / "cdm.h5")
    data = read_image_file(tmp_path / "cdm.h5")
    units = data["attrs"]["units"]
    units = json.loads(units) if isinstance(units, str) else units
    keys = ("kappa", "radius_arcsec", "center_x_arcsec", "center_y_arcsec", "mass_msun")
    for key in keys:
        assert f"compensation_{key}" in data["params"] and f"compensation_{key}" in units
    params = data["params"]
    assert np.all(params["compensation_kappa"] < 0)
    assert np.all(params["compensation_radius_arcsec"] == classes["cdm"]["radius_arcsec"])
    np.testing.assert_array_equal(params["compensation_center_x_arcsec"], params["lens_center_x"])
    row = {key: params[key][0] for key in params}
    assert float(compensation_from_record(row).kappa) == params["compensation_kappa"][0]
