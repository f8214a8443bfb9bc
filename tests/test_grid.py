"""The fast ray-grid deflection of populations against the exact sum; the Lagrange upsampling."""

import numpy as np
import pytest
from darklens.physics.cosmology import DEFAULT_COSMOLOGY, concentration_subhalo
from darklens.physics.lensing import TNFW, PointMass, population_deflection
from darklens.physics.lensing.grid import MARGIN, PopulationGrid, lagrange_upsample
from darklens.physics.sampling import power_law_masses, uniform_in_disk

N, S, PIXEL = 48, 4, 0.08


def _rays():
    ray = (np.arange(N * S) - 0.5 * (N * S - 1)) * PIXEL / S
    return np.meshgrid(ray, ray)


def _grid_deflection(profile, params, tolerance):
    """The fast path: far field interpolated from the pixel centres, near fields added."""
    grid = PopulationGrid(profile, params, N, PIXEL, S, tolerance)
    alpha = lagrange_upsample(grid.far, S)
    grid.add_near(alpha)
    return alpha[0], alpha[1]


def _population(profile, n, mass_range, seed):
    rng = np.random.default_rng(seed)
    masses = power_law_masses(rng, n, *mass_range, -1.9)
    x, y = uniform_in_disk(rng, n, 2.2)
    ray = PIXEL / S
    x[0], y[0] = 7.5 * ray, -3.5 * ray  # exactly on a ray
    if n > 1:
        x[1], y[1] = 0.5 * PIXEL, 1.5 * PIXEL  # exactly on a pixel centre (a coarse node)
    if profile is TNFW:
        rs, alpha_rs = DEFAULT_COSMOLOGY.nfw_angles(masses, concentration_subhalo(masses), 0.5, 1)
        return {"Rs": rs, "alpha_Rs": alpha_rs, "r_trunc": 10 * rs, "center_x": x, "center_y": y}
    theta_e = DEFAULT_COSMOLOGY.theta_E_point_mass(masses, 0.5, 1.0)
    return {"theta_E": theta_e, "center_x": x, "center_y": y}


@pytest.mark.parametrize("profile", [TNFW, PointMass])
@pytest.mark.parametrize(
    "n, mass_range, seed",
    [(25, (1e8, 1e10), 0), (25, (1e6, 1e10), 1), (4, (1e10, 1e11), 2), (1, (1e9, 1e9), 3)],
)
def test_grid_deflection_within_tolerance_of_the_exact_sum(profile, n, mass_range, seed):
    params = _population(profile, n, mass_range, seed)
    x, y = _rays()
    for tolerance in (1e-6, 1e-5):
        ax, ay = _grid_deflection(profile, params, tolerance)
        ex, ey = population_deflection(profile, params, x, y)
        assert np.hypot(ax - ex, ay - ey).max() < tolerance


def test_empty_population_has_no_deflection():
    empty = {"theta_E": np.zeros(0), "center_x": np.zeros(0), "center_y": np.zeros(0)}
    ax, ay = _grid_deflection(PointMass, empty, 1e-5)
    assert ax.shape == (N * S, N * S) and not ax.any() and not ay.any()


def test_only_point_masses_and_one_tnfw_truncation_have_a_fast_path():
    from darklens.physics.lensing import NFW
    from darklens.physics.lensing.grid import RadialPopulation

    nfw = {"Rs": np.array([0.3]), "alpha_Rs": np.array([0.01])}
    assert not RadialPopulation.supports(NFW, nfw)
    with pytest.raises(ValueError, match="no fast path"):
        RadialPopulation(NFW, {**nfw, "center_x": 0.0, "center_y": 0.0})
    mixed = {"Rs": np.array([0.1, 0.2]), "alpha_Rs": np.array([0.01, 0.01])}
    mixed.update(r_trunc=np.array([1.0, 1.0]), center_x=np.zeros(2), center_y=np.zeros(2))
    assert not RadialPopulation.supports(TNFW, mixed)
    with pytest.raises(ValueError, match="one r_trunc / Rs"):
        RadialPopulation(TNFW, mixed)


@pytest.mark.parametrize("factor", [1, 2, 3, 4, 5])
def test_lagrange_upsample_is_exact_for_quintic_polynomials(factor):
    n = 10
    node = np.arange(n + 2 * MARGIN) - MARGIN - 0.5 * (n - 1)
    fine = (np.arange(n * factor) - 0.5 * (n * factor - 1)) / factor

    def poly(x, y):
        return 0.3 + x - 0.2 * x * y + 0.01 * x**5 - 0.02 * y**4 * x

    coarse = poly(node[None, :], node[:, None])
    out = lagrange_upsample(np.stack([coarse, 2 * coarse]), factor)
    expected = poly(fine[None, :], fine[:, None])
    np.testing.assert_allclose(out[0], expected, atol=1e-9)
    np.testing.assert_allclose(out[1], 2 * expected, atol=1e-9)


@pytest.mark.parametrize("tau", [2.0, 10.0, 50.0])
def test_tnfw_table_within_its_stated_error_of_the_closed_form(tau):
    """The bit-indexed table of the unit TNFW against the closed form, r / Rs from 1e-7 to 1e7
    (octave boundaries, where the cell width doubles, included)."""
    from darklens.physics.lensing.grid import TABLE_ERROR, RadialPopulation

    rs, alpha_rs = 0.3, 0.02
    params = {"Rs": rs, "alpha_Rs": alpha_rs, "r_trunc": tau * rs, "center_x": 0.0}
    pop = RadialPopulation(TNFW, {**params, "center_y": 0.0})
    x = np.concatenate([np.geomspace(1e-7, 1e7, 200_001), 2.0 ** np.arange(-23, 24) * 0.999999])
    u = (x * rs) ** 2
    exact = TNFW(**params).deflection_over_radius(u)
    alpha_error = np.abs(pop.f(u, 0) - exact) * x * rs
    assert alpha_error.max() <= TABLE_ERROR * alpha_rs
    assert alpha_error.max() > 0.05 * TABLE_ERROR * alpha_rs  # the bound is not vacuous
