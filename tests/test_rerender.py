"""Re-rendering a class file with another code (lenstronomy 1.14.2) from what the file stores.

Small shards of every class (32 x 32, supersampling 2, lens light on, mass compensation on) are
written and read back with `read_image_file`; each image's noiseless model is rebuilt with
lenstronomy from /params, /subhalos, /compensation_disks (one disk for cdm, 16 for a vortex) and
the `conventions` / `resolved_config` attributes only: the lenstronomy keyword lists are written
here, not taken from darklens's simulation code. The
stored noisy image must be consistent with that model under the simulator's noise model
(mean chi^2 per pixel 1 +- 0.15), and the model must equal darklens's own noiseless image
(re-simulated from the image's seed: the truth here) to 3e-5 of the peak. A granule field is not
stored: its recipe (`resimulate_image`) must reproduce the stored image and its rms.
"""

import json

import numpy as np
import pytest
from darklens.config import load_config
from darklens.io.class_files import merge_shards, read_image_file
from darklens.simulation.conventions import MAX_STORED_KERNEL_ENTRIES, file_conventions
from darklens.simulation.presets import resolve
from darklens.simulation.shards import resimulate_image, write_shard
from darklens.simulation.substructure import VORTEX_COMPENSATION_DISKS

pytest.importorskip("lenstronomy")

N_IMAGES = 3
# of the image peak: darklens evaluates subhalo fields within GRID_TOLERANCE_ARCSEC (1e-5") of the
# exact sum; on a steep part of a compact source that reached 1.1e-5 of the peak (a 0.15" vortex)
MODEL_TOLERANCE = 3e-5
CHI2_TOLERANCE = 0.15  # on the mean (noisy - model)^2 / var over the 32 x 32 pixels
LENS_LIGHT = {
    "enabled": True,
    "amp": [5.0, 10.0],
    "R_sersic_arcsec": [0.5, 1.0],
    "n_sersic": [3.0, 4.0],
    "ellipticity_max": 0.2,
}


@pytest.fixture(scope="module")
def sim(repo):
    config = load_config(repo / "config.yaml")["simulation"]
    common = {k: v for k, v in config.items() if k not in ("classes",)}
    common = {**common, "images_per_class": N_IMAGES, "images_per_shard": N_IMAGES}
    common["instrument"] = {**common["instrument"], "n_pix": 32, "supersampling": 2}
    common["lens_light"] = LENS_LIGHT
    classes = config["classes"]
    variants = {
        "no_sub": ("no_sub", classes["no_sub"]),
        "cdm_point_mass": ("cdm", {**classes["cdm"], "mass_compensation": "sheet"}),
        "cdm_tnfw": (
            "cdm",
            {
                **classes["cdm"],
                "profile": "tnfw",
                "truncation_factor": 10.0,
                "n_subhalos": {"distribution": "poisson", "mean": 10},
                "mass_compensation": "sheet",
            },
        ),  # fmt: skip
        "axion_vortex": ("axion", {**classes["axion"], "mass_compensation": "sheet"}),
        "axion_granules": (
            "axion",
            {
                **classes["axion"],
                "variant": "granules",
                "correlation_length_factor": 1.0,
                "sigma_kappa": 0.02,
            },
        ),  # fmt: skip
    }
    return common, variants


@pytest.fixture(scope="module")
def files(sim, tmp_path_factory):
    common, variants = sim
    folder = tmp_path_factory.mktemp("rerender")
    written = {}
    for name, (class_name, settings) in variants.items():
        path = folder / f"{name}.h5"
        write_shard(common, class_name, settings, 0, 31, path)
        written[name] = path
    return written


def _lenstronomy_model(data, row):
    """The noiseless image of row `row` from the file's stored numbers, with lenstronomy."""
    from astropy.cosmology import FlatLambdaCDM
    from lenstronomy.Cosmo.lens_cosmo import LensCosmo
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    conv = json.loads(data["attrs"]["conventions"])
    settings = json.loads(data["attrs"]["resolved_config"])["class_settings"]
    p = {key: float(values[row]) for key, values in data["params"].items()}
    n, pixel, s = conv["n_pix"], conv["pixel_scale_arcsec"], conv["supersampling"]
    cosmo = conv["cosmology"]
    lens_cosmo = LensCosmo(
        cosmo["z_lens"],
        cosmo["z_source"],
        FlatLambdaCDM(H0=cosmo["H0_km_s_mpc"], Om0=cosmo["Om0"], Tcmb0=0.0),
    )
    sigma_crit = lens_cosmo.sigma_crit_angle  # Msun / arcsec^2
    assert sigma_crit == pytest.approx(cosmo["sigma_crit_msun_per_arcsec2"], rel=1e-9)

    names = ["SIE", "SHEAR"]
    kwargs = [
        {
            "theta_E": p["theta_E"],
            "e1": p["e1"],
            "e2": p["e2"],
            "center_x": p["lens_center_x"],
            "center_y": p["lens_center_y"],
        },
        {"gamma1": p["gamma1"], "gamma2": p["gamma2"], "ra_0": 0.0, "dec_0": 0.0},
    ]
    offset = data["subhalos"]["offset"]
    members = slice(offset[row], offset[row + 1])
    mass = data["subhalos"]["mass_msun"][members]
    x, y = data["subhalos"]["x_arcsec"][members], data["subhalos"]["y_arcsec"][members]
    sub = conv["substructure"]
    if sub["model"].startswith("cdm truncated NFW"):
        assert sub["c200"] == "12 (M200 / 1e8 Msun)^-0.08"
        for m, cx, cy in zip(mass, x, y, strict=True):
            rs, alpha_rs = lens_cosmo.nfw_physical2angle(M=m, c=12.0 * (m / 1e8) ** -0.08)
            names.append("TNFW")
            kwargs.append(
                {
                    "Rs": rs,
                    "alpha_Rs": alpha_rs,
                    "r_trunc": settings["truncation_factor"] * rs,
                    "center_x": cx,
                    "center_y": cy,
                }
            )
    elif len(mass):  # point masses: cdm or the vortex's points; absolute positions
        assert "POINT_MASS" in sub["lenstronomy"]
        for m, cx, cy in zip(mass, x, y, strict=True):
            names.append("POINT_MASS")
            theta_e = np.sqrt(m / (np.pi * sigma_crit))
            kwargs.append({"theta_E": theta_e, "center_x": cx, "center_y": cy})
    disks = data["compensation_disks"]  # uniform disks: lenstronomy's (nearly) circular slices
    rows = slice(disks["offset"][row], disks["offset"][row + 1])
    for kappa, radius in zip(disks["kappa"][rows], disks["radius_arcsec"][rows], strict=True):
        names.append("ElliSLICE")
        kwargs.append(
            {
                "a": radius * (1 + 1e-7),
                "b": radius,
                "psi": 0.0,
                "sigma_0": kappa,
                "center_x": p["compensation_center_x_arcsec"],
                "center_y": p["compensation_center_y_arcsec"],
            }
        )

    def sersic(prefix):
        keys = ("amp", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")
        return {key: p[f"{prefix}{key}"] for key in keys}

    corner = -0.5 * (n - 1) * pixel  # img[i, j] at x_j = (j - (N-1)/2) pixel, y_i likewise
    image_data = ImageData(
        image_data=np.zeros((n, n)),
        exposure_time=conv["exposure_time_s"],
        background_rms=conv["background_rms"],
        ra_at_xy_0=corner,
        dec_at_xy_0=corner,
        transform_pix2angle=np.diag([pixel, pixel]),
    )
    assert conv["psf"]["type"].startswith("gaussian")
    psf = PSF(psf_type="GAUSSIAN", fwhm=conv["psf"]["fwhm_arcsec"], pixel_size=pixel, truncation=5)
    lens_light = isinstance(conv["lens_light"], dict)
    model = ImageModel(
        image_data,
        psf,
        lens_model_class=LensModel(names),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        lens_light_model_class=LightModel(["SERSIC_ELLIPSE"]) if lens_light else None,
        kwargs_numerics={"supersampling_factor": s},
    )
    light = [sersic("lens_light_")] if lens_light else None
    return model.image(kwargs, [sersic("source_")], kwargs_lens_light=light)


@pytest.mark.parametrize("variant", ["no_sub", "cdm_point_mass", "cdm_tnfw", "axion_vortex"])
def test_stored_parameters_rerender_the_images_with_lenstronomy(files, variant):
    data = read_image_file(files[variant])
    conv = json.loads(data["attrs"]["conventions"])
    params = data["params"]
    assert isinstance(conv["lens_light"], dict)
    if variant != "no_sub":
        assert np.all(params["compensation_kappa"] < 0)
    disks = data["compensation_disks"]
    expected = {"no_sub": 0, "axion_vortex": VORTEX_COMPENSATION_DISKS}.get(variant, 1)
    np.testing.assert_array_equal(np.diff(disks["offset"]), expected)
    for row, index in enumerate(data["image_index"]):
        model = _lenstronomy_model(data, row)
        truth = resimulate_image(data["attrs"], index)
        np.testing.assert_array_equal(truth.noisy.astype(np.float32), data["images"][row])
        error = np.abs(model - truth.model).max() / truth.model.max()
        assert error < MODEL_TOLERANCE, (variant, row, error)
        var = model / conv["exposure_time_s"] + conv["background_rms"] ** 2
        chi2 = np.mean((data["images"][row] - model) ** 2 / var)
        assert abs(chi2 - 1.0) < CHI2_TOLERANCE, (variant, row, chi2)


def test_lens_light_parameters_are_stored_with_units(files):
    data = read_image_file(files["no_sub"])
    units = json.loads(data["attrs"]["units"])
    for key in ("amp", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y"):
        assert f"lens_light_{key}" in data["params"] and f"lens_light_{key}" in units
    params = data["params"]
    np.testing.assert_array_equal(params["lens_light_center_x"], params["lens_center_x"])
    assert np.all((params["lens_light_amp"] >= 5.0) & (params["lens_light_amp"] <= 10.0))


def test_granule_fields_are_regenerated_by_their_recipe(files):
    data = read_image_file(files["axion_granules"])
    conv = json.loads(data["attrs"]["conventions"])
    assert "resimulate_image" in conv["substructure"]["regenerate"]
    assert "kappa_rms" in conv["substructure"]["stored"]
    for row, index in enumerate(data["image_index"]):
        image = resimulate_image(data["attrs"], index)
        np.testing.assert_array_equal(image.noisy.astype(np.float32), data["images"][row])
        kappa = image.substructure.field_convergence
        assert np.sqrt(np.mean(kappa**2)) == data["params"]["kappa_rms"][row]
        assert image.record["granule_length_arcsec"] == data["params"]["granule_length_arcsec"][row]


def test_conventions_are_written_with_every_class_file_and_kept_by_merging(files, tmp_path):
    data = read_image_file(files["cdm_point_mass"])
    stored = json.loads(data["attrs"]["conventions"])
    resolved = json.loads(data["attrs"]["resolved_config"])
    expected = file_conventions(resolved["simulation"], "cdm", resolved["class_settings"])
    assert stored == json.loads(json.dumps(expected))
    for key in ("grid", "lens", "source", "lens_light", "substructure", "compensation", "psf"):
        assert key in stored
    assert "absolute" in stored["substructure"]["positions"]
    assert [entry["lenstronomy"] for entry in stored["lens"]] == ["SIE", "SHEAR"]
    merged = tmp_path / "cdm.h5"
    merge_shards([files["cdm_point_mass"]], merged, "cdm")
    assert read_image_file(merged)["attrs"]["conventions"] == data["attrs"]["conventions"]


def test_a_pixel_psf_kernel_travels_in_the_conventions(sim, tmp_path):
    """A kernel file's (normalised) values are stored, so the file re-renders without it; a
    kernel too large for an attribute is named by its file and hash only."""
    common, variants = sim
    rng = np.random.default_rng(3)
    kernel = rng.uniform(0.1, 1.0, (5, 5))
    np.save(tmp_path / "psf.npy", kernel)
    path = tmp_path / "no_sub.h5"
    write_shard(common, "no_sub", {}, 0, 8, path, psf_kernel_path=tmp_path / "psf.npy")
    (tmp_path / "psf.npy").unlink()
    data = read_image_file(path)
    psf = json.loads(data["attrs"]["conventions"])["psf"]
    assert psf["type"].startswith("pixel") and psf["shape"] == [5, 5]
    np.testing.assert_allclose(psf["kernel_values"], kernel / kernel.sum(), rtol=1e-15)
    for row, index in enumerate(data["image_index"]):
        image = resimulate_image(data["attrs"], index)
        np.testing.assert_array_equal(image.noisy.astype(np.float32), data["images"][row])
    side = int(np.sqrt(MAX_STORED_KERNEL_ENTRIES)) + 2
    big = np.ones((side + 1 - side % 2,) * 2)
    resolved, _ = resolve(common, "no_sub", {})
    large = file_conventions(resolved, "no_sub", {}, big, "big.npy")["psf"]
    assert "kernel_values" not in large and large["kernel_file"] == "big.npy"
    assert len(json.dumps(file_conventions(resolved, "no_sub", {}, kernel))) < 60_000
