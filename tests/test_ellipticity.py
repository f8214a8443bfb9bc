"""The one ellipticity convention (SIE and Sersic): lenstronomy's, with its clamp."""

import numpy as np
import pytest
from darklens.physics.ellipticity import E_MAX, ellipticity_to_phi_q
from darklens.physics.light import SersicEllipse


def test_phi_q_convention():
    phi, q = ellipticity_to_phi_q(0.0, 0.2)
    assert phi == pytest.approx(np.pi / 4)
    assert q == pytest.approx(0.8 / 1.2)


def test_matches_lenstronomy_including_the_clamp():
    param_util = pytest.importorskip("lenstronomy.Util.param_util")
    e1, e2 = np.random.default_rng(1).uniform(-1.0, 1.0, (2, 10_000))  # |e| up to 1.41
    phi, q = ellipticity_to_phi_q(e1, e2)
    ref_phi, ref_q = param_util.ellipticity2phi_q(e1, e2)
    np.testing.assert_allclose(phi, ref_phi, rtol=0, atol=1e-15)
    np.testing.assert_allclose(q, ref_q, rtol=1e-12, atol=0)
    assert np.all(q > 0) and q.min() == pytest.approx((1 - E_MAX) / (1 + E_MAX))


def test_sersic_beyond_the_clamp_is_the_clamped_profile():
    x, y = np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21))
    kw = {"amp": 3.0, "R_sersic": 0.3, "n_sersic": 2.0, "center_x": 0.05, "center_y": -0.1}
    angle = 0.7
    beyond = SersicEllipse(**kw, e1=1.2 * np.cos(angle), e2=1.2 * np.sin(angle))
    clamped = SersicEllipse(**kw, e1=E_MAX * np.cos(angle), e2=E_MAX * np.sin(angle))
    values = beyond.surface_brightness(x, y)
    assert np.isfinite(values).all() and values.max() > 0
    np.testing.assert_allclose(values, clamped.surface_brightness(x, y), rtol=1e-9)
