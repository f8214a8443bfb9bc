"""Uniform disk (the mass-compensation sheet): lenstronomy agreement and analytic identities.

lenstronomy 1.14.2 has no circular uniform disk: inside it the deflection is its
``CONVERGENCE`` (a mass sheet about ra_0, dec_0), outside a ``POINT_MASS`` of the same (here
negative) mass, and its ``ElliSLICE`` (uniform ellipse) with a = r_trunc (1 + 1e-7), b = r_trunc
is the same disk to ~1e-7 (a = b divides by zero there).
"""

import numpy as np
import pytest
from darklens.physics.lensing import TNFW, UniformDisk, population_mass_in_disk

lens_model = pytest.importorskip("lenstronomy.LensModel.lens_model")

KWARGS = [
    {"kappa": -0.0668, "r_trunc": 2.0, "center_x": 0.03, "center_y": -0.04},
    {"kappa": 0.3, "r_trunc": 0.45, "center_x": -0.7, "center_y": 0.2},
]


def _rays(kwargs, seed=0, n=600):
    rng = np.random.default_rng(seed)
    r = kwargs["r_trunc"] * np.concatenate([rng.uniform(0, 3, n), [0.0, 1e-9, 1.0, 1 + 1e-12]])
    phi = rng.uniform(0, 2 * np.pi, r.size)
    return kwargs["center_x"] + r * np.cos(phi), kwargs["center_y"] + r * np.sin(phi), r


@pytest.mark.parametrize("kwargs", KWARGS)
def test_inside_is_lenstronomy_convergence_and_outside_a_point_mass(kwargs):
    x, y, r = _rays(kwargs)
    ax, ay = UniformDisk(**kwargs).deflection(x, y)
    sheet = {"kappa": kwargs["kappa"], "ra_0": kwargs["center_x"], "dec_0": kwargs["center_y"]}
    sx, sy = lens_model.LensModel(["CONVERGENCE"]).alpha(x, y, [sheet])
    theta_e = np.sqrt(abs(kwargs["kappa"])) * kwargs["r_trunc"]  # pi theta_E^2 = |mass|
    point = {"theta_E": theta_e, "center_x": kwargs["center_x"], "center_y": kwargs["center_y"]}
    px, py = lens_model.LensModel(["POINT_MASS"]).alpha(x, y, [point])
    px, py = np.sign(kwargs["kappa"]) * px, np.sign(kwargs["kappa"]) * py
    inside = r <= kwargs["r_trunc"]
    scale = abs(kwargs["kappa"]) * kwargs["r_trunc"]  # the largest deflection (at the edge)
    assert np.hypot(ax - sx, ay - sy)[inside].max() < 1e-12 * scale
    assert np.hypot(ax - px, ay - py)[~inside].max() < 1e-12 * scale
    kappa = UniformDisk(**kwargs).convergence(x, y)
    r2 = (x - kwargs["center_x"]) ** 2 + (y - kwargs["center_y"]) ** 2  # as the profile rounds
    expected = np.where(r2 <= kwargs["r_trunc"] ** 2, kwargs["kappa"], 0.0)
    np.testing.assert_array_equal(kappa, expected)


@pytest.mark.parametrize("kwargs", KWARGS)
def test_matches_a_nearly_circular_lenstronomy_elliptical_slice(kwargs):
    x, y, _ = _rays(kwargs, seed=1, n=150)
    slice_kwargs = {
        "a": kwargs["r_trunc"] * (1 + 1e-7),
        "b": kwargs["r_trunc"],
        "psi": 0.0,
        "sigma_0": abs(kwargs["kappa"]),  # ElliSLICE wants sigma_0 > 0; the map is linear in it
        "center_x": kwargs["center_x"],
        "center_y": kwargs["center_y"],
    }
    lx, ly = lens_model.LensModel(["ElliSLICE"]).alpha(x, y, [slice_kwargs])
    ax, ay = UniformDisk(**kwargs).deflection(x, y)
    sign = np.sign(kwargs["kappa"])
    scale = abs(kwargs["kappa"]) * kwargs["r_trunc"]
    assert np.hypot(ax - sign * lx, ay - sign * ly).max() < 1e-6 * scale


@pytest.mark.parametrize("kwargs", KWARGS)
def test_divergence_is_twice_kappa_and_the_potential_is_its_integral(kwargs):
    disk = UniformDisk(**kwargs)
    x, y, r = _rays(kwargs, seed=2, n=400)
    away = np.abs(r - kwargs["r_trunc"]) > 1e-2 * kwargs["r_trunc"]
    x, y = x[away], y[away]
    h = 1e-5 * kwargs["r_trunc"]
    div = (disk.deflection(x + h, y)[0] - disk.deflection(x - h, y)[0]) / (2 * h)
    div += (disk.deflection(x, y + h)[1] - disk.deflection(x, y - h)[1]) / (2 * h)
    kappa = disk.convergence(x, y)
    assert np.abs(div - 2 * kappa).max() < 1e-7 * abs(kwargs["kappa"])
    gx = (disk.potential(x + h, y) - disk.potential(x - h, y)) / (2 * h)
    gy = (disk.potential(x, y + h) - disk.potential(x, y - h)) / (2 * h)
    ax, ay = disk.deflection(x, y)
    assert np.hypot(gx - ax, gy - ay).max() < 1e-7 * abs(kwargs["kappa"]) * kwargs["r_trunc"]
    # continuous at the edge, 0 at the exact centre
    edge = kwargs["center_x"] + kwargs["r_trunc"] * np.array([1 - 1e-12, 1 + 1e-12])
    inner, outer = disk.deflection(edge, kwargs["center_y"])[0]
    assert inner == pytest.approx(outer, rel=1e-10)
    assert disk.deflection(kwargs["center_x"], kwargs["center_y"]) == (0.0, 0.0)


@pytest.mark.parametrize("kwargs", KWARGS)
def test_enclosed_mass_by_gauss_law(kwargs):
    """(1/2) the flux of alpha through a circle = the convergence mass inside it."""
    params = {k: np.array([v]) for k, v in kwargs.items()}
    for factor in (0.3, 0.99, 1.01, 4.0):
        radius = factor * kwargs["r_trunc"]
        centre = (kwargs["center_x"], kwargs["center_y"])
        mass = population_mass_in_disk(UniformDisk, params, radius, *centre)
        expected = np.pi * kwargs["kappa"] * min(radius, kwargs["r_trunc"]) ** 2
        assert mass == pytest.approx(expected, rel=1e-12)
    assert float(UniformDisk(**kwargs).mass()) == pytest.approx(
        np.pi * kwargs["kappa"] * kwargs["r_trunc"] ** 2, rel=1e-15
    )


def test_gauss_law_mass_of_a_tnfw_matches_lenstronomy():
    from lenstronomy.LensModel.Profiles.tnfw import TNFW as LenstronomyTNFW

    reference = LenstronomyTNFW()
    rs, alpha_rs, r_trunc = 0.3, 0.004, 3.0
    rho0 = reference.alpha2rho0(alpha_rs, rs)
    params = {"Rs": [rs], "alpha_Rs": [alpha_rs], "r_trunc": [r_trunc]}
    params = {**{k: np.array(v) for k, v in params.items()}, "center_x": 0.1, "center_y": 0.2}
    for radius in (0.05, 0.3, 1.0, 2.0, 10.0):
        mass = population_mass_in_disk(TNFW, params, radius, 0.1, 0.2)
        assert mass == pytest.approx(reference.mass_2d(radius, rs, rho0, r_trunc), rel=1e-9)


def test_concentric_disks_are_the_sum_of_lenstronomy_slices():
    """A stepwise profile (the vortex compensation's form: disks of either sign about one
    centre) against lenstronomy's sum of nearly circular ElliSLICEs, to 1e-6 of its largest
    deflection; its mass and convergence are the disks' sums."""
    from darklens.physics.lensing.uniform_disk import ConcentricDisks

    center = {"center_x": 0.05, "center_y": -0.02}
    kappas, radii = [-0.004, -0.01, 0.003, -0.002], [0.3, 0.9, 1.4, 2.5]
    disks = ConcentricDisks(
        tuple(UniformDisk(kappa=k, r_trunc=r, **center) for k, r in zip(kappas, radii, strict=True))
    )
    x, y, _ = _rays({"r_trunc": 2.5, **center}, seed=4, n=300)
    slices = [
        {"a": r * (1 + 1e-7), "b": r, "psi": 0.0, "sigma_0": k, **center}
        for k, r in zip(kappas, radii, strict=True)
    ]
    lx, ly = lens_model.LensModel(["ElliSLICE"] * len(slices)).alpha(x, y, slices)
    ax, ay = disks.deflection(x, y)
    scale = np.abs(ax).max() + np.abs(ay).max()
    assert np.hypot(ax - lx, ay - ly).max() < 1e-6 * scale
    assert float(disks.mass()) == pytest.approx(np.pi * np.dot(kappas, np.square(radii)), rel=1e-14)
    assert disks.kappa == pytest.approx(sum(kappas), rel=1e-15) and disks.r_trunc == 2.5
    np.testing.assert_allclose(
        disks.convergence(x, y),
        sum(
            UniformDisk(k, r, **center).convergence(x, y)
            for k, r in zip(kappas, radii, strict=True)
        ),
        rtol=0,
        atol=0,
    )
