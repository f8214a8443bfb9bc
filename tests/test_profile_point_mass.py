"""Point mass: lenstronomy agreement and the centre."""

import numpy as np
import pytest
from darklens.physics.lensing import PointMass

lens_model = pytest.importorskip("lenstronomy.LensModel.lens_model")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"theta_E": 1.6647, "center_x": 0.0, "center_y": 0.0},
        {"theta_E": 0.0016647, "center_x": -0.4, "center_y": 0.9},
    ],
)
def test_deflection_matches_lenstronomy(kwargs):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-3, 3, 500), kwargs["center_x"] + np.logspace(-9, 0, 50)])
    y = np.concatenate([rng.uniform(-3, 3, 500), kwargs["center_y"] + np.logspace(-9, 0, 50)])
    ax, ay = PointMass(**kwargs).deflection(x, y)
    lx, ly = lens_model.LensModel(["POINT_MASS"]).alpha(x, y, [kwargs])
    err = np.hypot(ax - lx, ay - ly) / np.hypot(lx, ly)
    assert err.max() < 1e-12


def test_einstein_ring_and_centre():
    pm = PointMass(theta_E=0.5, center_x=0.1, center_y=0.1)
    ax, ay = pm.deflection(0.1 + 0.5 * np.cos(1.0), 0.1 + 0.5 * np.sin(1.0))
    assert np.hypot(ax, ay) == pytest.approx(0.5, rel=1e-14)
    ax, ay = pm.deflection(0.1, 0.1)
    assert ax == 0.0 and ay == 0.0
    assert pm.convergence(np.zeros(3), np.zeros(3)).tolist() == [0.0, 0.0, 0.0]
