"""Properties shared by every lens profile: finiteness, derivative identities, populations."""

import numpy as np
import pytest
from darklens.physics import lensing
from darklens.physics.lensing import PointMass, population_deflection, total_deflection

EXAMPLES = [
    lensing.SIS(theta_E=1.1, center_x=0.1, center_y=-0.2),
    lensing.SIE(theta_E=1.1, e1=0.2, e2=-0.13, center_x=0.1, center_y=-0.2),
    lensing.SIE(theta_E=0.9, e1=0.0, e2=0.0, center_x=0.0, center_y=0.0),
    lensing.Shear(gamma1=0.05, gamma2=-0.03),
    lensing.PointMass(theta_E=0.3, center_x=-0.4, center_y=0.5),
    lensing.NFW(Rs=0.7, alpha_Rs=0.0087, center_x=0.2, center_y=0.1),
    lensing.TNFW(Rs=0.11, alpha_Rs=4.7e-4, r_trunc=0.5, center_x=-0.3, center_y=0.2),
]
IDS = [f"{type(p).__name__}{i}" for i, p in enumerate(EXAMPLES)]
STEP_ARCSEC = 1e-5  # central finite-difference step


def _centre(profile):
    kw = profile.kwargs()
    return float(kw.get("center_x", kw.get("ra_0"))), float(kw.get("center_y", kw.get("dec_0")))


def _points_off_centre(profile, n=400, r_min=0.1, seed=0):
    rng = np.random.default_rng(seed)
    cx, cy = _centre(profile)
    r = rng.uniform(r_min, 3.0, n)
    t = rng.uniform(0, 2 * np.pi, n)
    return cx + r * np.cos(t), cy + r * np.sin(t), r


@pytest.mark.parametrize("profile", EXAMPLES, ids=IDS)
def test_finite_at_exact_centre(profile):
    cx, cy = _centre(profile)
    values = [*profile.deflection(cx, cy), profile.convergence(cx, cy)]
    if hasattr(profile, "potential"):
        values.append(profile.potential(cx, cy))
    assert np.all(np.isfinite(values))
    assert np.all(np.asarray(profile.deflection(cx, cy)) == 0.0)


@pytest.mark.parametrize(
    "profile_cls", sorted({type(p) for p in EXAMPLES}, key=lambda c: c.__name__)
)
def test_finite_for_1e5_random_parameter_draws(profile_cls):
    n = 100_000
    rng = np.random.default_rng(7)
    params = {
        name: rng.uniform(
            profile_cls.lower_limit.get(name, -1.0), profile_cls.upper_limit.get(name, 1.0), n
        )
        for name in profile_cls.param_names()
    }
    for name in profile_cls.lower_limit:  # the bounds themselves
        params[name][:2] = profile_cls.lower_limit[name], profile_cls.upper_limit[name]
    profile = profile_cls(**params)
    cx = params.get("center_x", params.get("ra_0", np.zeros(n)))
    cy = params.get("center_y", params.get("dec_0", np.zeros(n)))
    x = np.where(np.arange(n) % 3 == 0, cx, rng.uniform(-3, 3, n))  # every third at the centre
    y = np.where(np.arange(n) % 3 == 0, cy, rng.uniform(-3, 3, n))
    with np.errstate(all="raise"):
        ax, ay = profile.deflection(x, y)
        kappa = profile.convergence(x, y)
    assert ax.shape == ay.shape == kappa.shape == (n,)
    assert np.isfinite(ax).all() and np.isfinite(ay).all() and np.isfinite(kappa).all()


@pytest.mark.parametrize("profile", EXAMPLES, ids=IDS)
def test_convergence_is_half_the_divergence_of_the_deflection(profile):
    x, y, r = _points_off_centre(profile)
    h = STEP_ARCSEC
    dax_dx = (profile.deflection(x + h, y)[0] - profile.deflection(x - h, y)[0]) / (2 * h)
    day_dy = (profile.deflection(x, y + h)[1] - profile.deflection(x, y - h)[1]) / (2 * h)
    kappa = profile.convergence(x, y)
    scale = kappa + np.hypot(*profile.deflection(x, y)) / r
    assert np.all(np.abs(0.5 * (dax_dx + day_dy) - kappa) < 1e-7 * scale)


@pytest.mark.parametrize("profile", [p for p in EXAMPLES if hasattr(p, "potential")])
def test_deflection_is_the_gradient_of_the_potential(profile):
    x, y, r = _points_off_centre(profile, seed=1)
    h = STEP_ARCSEC
    dpsi_dx = (profile.potential(x + h, y) - profile.potential(x - h, y)) / (2 * h)
    dpsi_dy = (profile.potential(x, y + h) - profile.potential(x, y - h)) / (2 * h)
    ax, ay = profile.deflection(x, y)
    scale = np.hypot(ax, ay) + np.abs(profile.potential(x, y)) / r
    assert np.all(np.hypot(dpsi_dx - ax, dpsi_dy - ay) < 1e-8 * scale)


def test_total_deflection_is_the_sum():
    x, y = np.meshgrid(np.linspace(-2, 2, 7), np.linspace(-2, 2, 5))
    ax, ay = total_deflection(EXAMPLES, x, y)
    assert ax.shape == (5, 7)
    np.testing.assert_allclose(ax, sum(p.deflection(x, y)[0] for p in EXAMPLES), rtol=1e-14)
    np.testing.assert_allclose(ay, sum(p.deflection(x, y)[1] for p in EXAMPLES), rtol=1e-14)


@pytest.mark.parametrize("chunk", [None, 1, 3, 100])
def test_population_deflection_equals_loop(chunk):
    rng = np.random.default_rng(8)
    k = 10
    params = {
        "theta_E": rng.uniform(0.001, 0.1, k),
        "center_x": rng.uniform(-1, 1, k),
        "center_y": rng.uniform(-1, 1, k),
    }
    x, y = np.meshgrid(np.linspace(-2, 2, 9), np.linspace(-2, 2, 8))
    ax, ay = population_deflection(PointMass, params, x, y, chunk=chunk)
    assert ax.shape == (8, 9)
    members = [PointMass(**{n: v[i] for n, v in params.items()}) for i in range(k)]
    rx, ry = total_deflection(members, x, y)
    np.testing.assert_allclose(ax, rx, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(ay, ry, rtol=1e-13, atol=1e-16)
    # broadcasting by hand: (K, 1) parameters against (P,) rays give (K, P)
    bx, _ = PointMass(**{n: v[:, None] for n, v in params.items()}).deflection(x.ravel(), y.ravel())
    assert bx.shape == (k, x.size)
    np.testing.assert_allclose(bx.sum(axis=0), rx.ravel(), rtol=1e-13, atol=1e-16)


def test_population_deflection_rejects_ragged_parameters():
    with pytest.raises(ValueError, match="different lengths"):
        population_deflection(PointMass, {"theta_E": np.ones(3), "center_x": np.ones(4)}, 0.0, 0.0)
