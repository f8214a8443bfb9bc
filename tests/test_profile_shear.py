"""External shear: lenstronomy agreement and the formula of docs/physics.md."""

import numpy as np
import pytest
from darklens.physics.lensing import Shear

lens_model = pytest.importorskip("lenstronomy.LensModel.lens_model")


@pytest.mark.parametrize("gamma1, gamma2", [(0.05, 0.0), (-0.03, 0.07), (0.0, 0.0)])
def test_deflection_matches_lenstronomy_and_formula(gamma1, gamma2):
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-3, 3, (2, 300))
    ax, ay = Shear(gamma1=gamma1, gamma2=gamma2).deflection(x, y)
    kwargs = {"gamma1": gamma1, "gamma2": gamma2, "ra_0": 0.0, "dec_0": 0.0}
    lx, ly = lens_model.LensModel(["SHEAR"]).alpha(x, y, [kwargs])
    np.testing.assert_allclose(ax, lx, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ay, ly, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ax, gamma1 * x + gamma2 * y, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ay, gamma2 * x - gamma1 * y, rtol=0, atol=1e-15)
    assert not Shear(gamma1=gamma1, gamma2=gamma2).convergence(x, y).any()
