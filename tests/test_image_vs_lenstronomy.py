"""Full noiseless images of darklens against lenstronomy's ImageModel, pixel by pixel.

darklens renders as it does in production (fast ray-grid substructure deflection, float32
surface brightness); lenstronomy 1.14.2 evaluates every profile at every ray. Same rays
(supersampling 4), same Gaussian PSF kernel (5 sigma), same Sersic convention.
Required: |darklens - lenstronomy| <= 1e-4 of the image peak at every pixel.
"""

import numpy as np
import pytest
from darklens.physics.cosmology import DEFAULT_COSMOLOGY, concentration_subhalo
from darklens.physics.instrument import Instrument, gaussian_psf_kernel
from darklens.simulation.render import ImageParameters, render_models
from darklens.simulation.substructure import Substructure

pytest.importorskip("lenstronomy")
from darklens.simulation import reference  # noqa: E402

TOLERANCE = 1e-4  # of the image peak
N_PIX, PIXEL, SUPERSAMPLING, FWHM = 64, 0.08, 4, 0.16


def _params(rng, lens_light=False):
    lens = {
        "theta_E": rng.uniform(1.0, 1.4),
        "e1": rng.uniform(-0.2, 0.2),
        "e2": rng.uniform(-0.2, 0.2),
        "center_x": rng.uniform(-0.05, 0.05),
        "center_y": rng.uniform(-0.05, 0.05),
    }
    source = {
        "amp": rng.uniform(15, 40),
        "R_sersic": rng.uniform(0.15, 0.35),
        "n_sersic": rng.uniform(0.8, 2.0),
        "e1": rng.uniform(-0.3, 0.3),
        "e2": rng.uniform(-0.3, 0.3),
        "center_x": rng.uniform(-0.3, 0.3),
        "center_y": rng.uniform(-0.3, 0.3),
    }
    light = None
    if lens_light:
        light = {
            "amp": 8.0,
            "R_sersic": 0.7,
            "n_sersic": 3.5,
            "e1": 0.05,
            "e2": -0.1,
            "center_x": lens["center_x"],
            "center_y": lens["center_y"],
        }
    shear = {"gamma1": rng.uniform(-0.05, 0.05), "gamma2": rng.uniform(-0.05, 0.05)}
    return ImageParameters(lens, shear, source, light)


def _subhalos(rng, profile, n, mass_range=(1e8, 1e10), radius=2.0):
    from darklens.physics.lensing import TNFW, PointMass
    from darklens.physics.sampling import power_law_masses, uniform_in_disk

    masses = power_law_masses(rng, n, *mass_range, -1.9)
    x, y = uniform_in_disk(rng, n, radius)
    x[3], y[3] = 0.5 * PIXEL, -0.5 * PIXEL  # exactly on a pixel centre
    if profile == "tnfw":
        # exactly on rays (regular there; a point mass on a ray is a measure-zero singular
        # case whose value hangs on the last bit of the ray coordinates, which the two codes
        # compute differently: see test_simulate_finite.py for those)
        ray = PIXEL / SUPERSAMPLING
        x[:3] = np.round(x[:3] / ray - 0.5) * ray + 0.5 * ray
        y[:3] = np.round(y[:3] / ray - 0.5) * ray + 0.5 * ray
        rs, alpha_rs = DEFAULT_COSMOLOGY.nfw_angles(masses, concentration_subhalo(masses), 0.5, 1)
        params = {"Rs": rs, "alpha_Rs": alpha_rs, "r_trunc": 10 * rs, "center_x": x, "center_y": y}
        return TNFW, params
    theta_e = DEFAULT_COSMOLOGY.theta_E_point_mass(masses, 0.5, 1.0)
    return PointMass, {"theta_E": theta_e, "center_x": x, "center_y": y}


def _lenstronomy_image(params, population, compensation=None):
    names = reference.lens_names(population, compensation)
    model = reference.image_model(
        N_PIX, PIXEL, SUPERSAMPLING, FWHM, 1000.0, 0.02, names, params.lens_light is not None
    )
    return reference.render(model, params, population, compensation)


def _darklens_image(params, population, compensation=None):
    instrument = Instrument(
        N_PIX, PIXEL, SUPERSAMPLING, 1000.0, 0.02, gaussian_psf_kernel(FWHM, PIXEL)
    )
    substructure = Substructure(population=population, compensation=compensation)
    model, smooth = render_models(instrument, params, substructure, instrument.ray_grid())
    return model, smooth


@pytest.mark.parametrize(
    "case, seed",
    [("none", 0), ("none_lens_light", 1), ("tnfw", 2), ("tnfw", 3), ("point_mass", 4)],
)
def test_noiseless_image_matches_lenstronomy(case, seed):
    rng = np.random.default_rng(seed)
    params = _params(rng, lens_light=case == "none_lens_light")
    population = None
    if case in ("tnfw", "point_mass"):
        population = _subhalos(rng, case, 25)
    model, smooth = _darklens_image(params, population)
    reference = _lenstronomy_image(params, population)
    error = np.abs(model - reference).max() / reference.max()
    assert error < TOLERANCE, error
    if population is not None:  # the smooth companion image is the no-substructure image
        smooth_reference = _lenstronomy_image(params, None)
        assert np.abs(smooth - smooth_reference).max() < TOLERANCE * smooth_reference.max()


def test_vortex_with_its_profile_matched_disks_matches_lenstronomy():
    """A default-like vortex (100 point masses, 3e10 Msun, 1.5" long) with its 16 compensating
    disks (darklens.simulation.substructure) against lenstronomy's POINT_MASSes and ElliSLICEs."""
    from darklens.physics.lensing import PointMass
    from darklens.physics.sampling import line_of_points
    from darklens.simulation.substructure import (
        mass_compensation,
        vortex_compensation_radii,
        vortex_enclosed_fraction,
        vortex_offsets,
    )

    rng = np.random.default_rng(5)
    params = _params(rng)
    length, n, mass = 1.5, 100, 3e10
    x, y = line_of_points(0.3, -0.2, length, 0.7, n)
    theta_e = DEFAULT_COSMOLOGY.theta_E_point_mass(np.full(n, mass / n), 0.5, 1.0)
    population = (PointMass, {"theta_E": theta_e, "center_x": x, "center_y": y})
    offsets = vortex_offsets(length, n)
    radii = vortex_compensation_radii(1.0, offsets)
    enclosed = mass * vortex_enclosed_fraction(radii, 1.0, offsets)
    macro = type("Macro", (), {"lens": params.lens})()
    lens = {"z_lens": 0.5, "z_source": 1.0}
    disks, _ = mass_compensation({}, lens, mass, float(radii[-1]), macro, (radii, enclosed))
    assert len(disks.disks) == 16
    model, _ = _darklens_image(params, population, disks)
    expected = _lenstronomy_image(params, population, disks)
    assert np.abs(model - expected).max() / expected.max() < TOLERANCE
