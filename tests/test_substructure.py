"""Substructure.ray_field: the fast path within its tolerance, other profiles exact."""

import numpy as np
from darklens.physics.instrument import Instrument
from darklens.physics.lensing import NFW, PointMass, population_deflection
from darklens.physics.lensing.grid import lagrange_upsample
from darklens.simulation.substructure import (
    GRID_TOLERANCE_ARCSEC,
    POPULATION_CHUNK,
    Substructure,
)

INSTRUMENT = Instrument(24, 0.1, 3, 1.0, 1.0)


def _ray_field_sum(substructure):
    far, add_near = substructure.ray_field(INSTRUMENT)
    n_rays = INSTRUMENT.n_pix * INSTRUMENT.supersampling
    alpha = np.zeros((2, n_rays, n_rays)) if far is None else lagrange_upsample(far, 3)
    add_near(alpha)
    return far, alpha


def _members(rng, **extra):
    return {"center_x": rng.uniform(-1, 1, 5), "center_y": rng.uniform(-1, 1, 5), **extra}


def test_profiles_without_a_fast_path_are_added_exactly():
    rng = np.random.default_rng(0)
    params = _members(rng, Rs=rng.uniform(0.1, 0.5, 5), alpha_Rs=rng.uniform(0.001, 0.01, 5))
    far, alpha = _ray_field_sum(Substructure(population=(NFW, params)))
    assert far is None
    exact = population_deflection(NFW, params, *INSTRUMENT.ray_grid(), chunk=POPULATION_CHUNK)
    np.testing.assert_array_equal(alpha, np.stack(exact))


def test_point_masses_are_within_the_grid_tolerance():
    rng = np.random.default_rng(1)
    params = _members(rng, theta_E=rng.uniform(0.01, 0.2, 5))
    far, alpha = _ray_field_sum(Substructure(population=(PointMass, params)))
    assert far is not None
    exact = np.stack(population_deflection(PointMass, params, *INSTRUMENT.ray_grid()))
    error = np.hypot(*(alpha - exact)).max()
    assert 0 < error < GRID_TOLERANCE_ARCSEC


def test_no_perturbers_add_nothing():
    far, alpha = _ray_field_sum(Substructure())
    assert far is None and not alpha.any()
