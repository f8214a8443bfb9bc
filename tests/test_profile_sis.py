"""SIS: lenstronomy agreement, centre, mean convergence inside theta_E."""

import numpy as np
import pytest
from darklens.physics.lensing import SIS
from scipy import integrate

lens_model = pytest.importorskip("lenstronomy.LensModel.lens_model")

RTOL = 1e-12  # relative to |alpha|, which is theta_E everywhere off the exact centre


@pytest.mark.parametrize(
    "kwargs",
    [
        {"theta_E": 1.2, "center_x": 0.0, "center_y": 0.0},
        {"theta_E": 0.01, "center_x": 0.3, "center_y": -0.7},
    ],
)
def test_deflection_matches_lenstronomy(kwargs):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-3, 3, 500), kwargs["center_x"] + np.logspace(-9, 0, 50)])
    y = np.concatenate([rng.uniform(-3, 3, 500), kwargs["center_y"] - np.logspace(-9, 0, 50)])
    ax, ay = SIS(**kwargs).deflection(x, y)
    lx, ly = lens_model.LensModel(["SIS"]).alpha(x, y, [kwargs])
    err = np.hypot(ax - lx, ay - ly) / kwargs["theta_E"]
    assert err.max() < RTOL
    kappa = SIS(**kwargs).convergence(x, y)
    kappa_ref = lens_model.LensModel(["SIS"]).kappa(x, y, [kwargs])
    np.testing.assert_allclose(kappa, kappa_ref, rtol=1e-12)


def test_exact_centre_is_zero_and_finite():
    sis = SIS(theta_E=1.0, center_x=0.25, center_y=-0.5)
    ax, ay = sis.deflection(0.25, -0.5)
    assert ax == 0.0 and ay == 0.0
    assert np.isfinite(sis.convergence(0.25, -0.5))
    assert np.isfinite(sis.potential(0.25, -0.5))


def test_mean_convergence_inside_einstein_radius_is_one():
    theta_E = 0.8
    sis = SIS(theta_E=theta_E, center_x=0.1, center_y=0.2)

    def ring(r):
        return 2.0 * np.pi * r * sis.convergence(0.1 + r, 0.2)

    mass, _ = integrate.quad(ring, 0.0, theta_E, epsabs=0, epsrel=1e-12)
    assert mass / (np.pi * theta_E**2) == pytest.approx(1.0, rel=1e-10)
