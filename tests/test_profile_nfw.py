"""NFW and TNFW: lenstronomy, a 50-digit reference, limits, mass consistency."""

import numpy as np
import pytest
from darklens.physics.lensing import NFW, TNFW, population_deflection
from scipy import integrate

lens_model = pytest.importorskip("lenstronomy.LensModel.lens_model")

RTOL = 1e-8  # vector-relative deflection tolerance against lenstronomy
# lenstronomy's closed forms cancel at small x = R/Rs (TNFW also clamps R >= 1e-3 Rs), so it
# is the reference only at x >= X_REF; below, a 50-digit evaluation of the same formulas is.
X_REF = 0.01

NFW_CASES = [
    {"Rs": 0.7, "alpha_Rs": 0.0087, "center_x": 0.1, "center_y": -0.2},
    {"Rs": 0.0163, "alpha_Rs": 2.66e-5, "center_x": -1.0, "center_y": 0.5},
]
TNFW_CASES = [
    {"Rs": 0.7, "alpha_Rs": 0.0087, "r_trunc": 2.1, "center_x": 0.1, "center_y": -0.2},
    {"Rs": 0.11, "alpha_Rs": 4.7e-4, "r_trunc": 0.05, "center_x": 0.3, "center_y": 0.3},
    {"Rs": 0.0163, "alpha_Rs": 2.66e-5, "r_trunc": 0.5, "center_x": -1.0, "center_y": 0.5},
]


def _vector_error(ax, ay, lx, ly):
    return np.hypot(ax - lx, ay - ly) / np.hypot(lx, ly)


def _ring_points(kw, x_over_rs, seed=0):
    t = np.random.default_rng(seed).uniform(0, 2 * np.pi, x_over_rs.size)
    r = x_over_rs * kw["Rs"]
    return kw["center_x"] + r * np.cos(t), kw["center_y"] + r * np.sin(t)


def _radii_over_rs(closest_to_rs=1e-15):
    rng = np.random.default_rng(11)
    offsets = np.logspace(np.log10(closest_to_rs), -2, 14)
    near_rs = 1.0 + np.concatenate([-offsets, [0.0], offsets])
    return np.concatenate([10 ** rng.uniform(np.log10(X_REF), 2.5, 1500), near_rs])


@pytest.mark.parametrize(
    "profile_cls, kwargs", [(NFW, k) for k in NFW_CASES] + [(TNFW, k) for k in TNFW_CASES]
)
def test_deflection_matches_lenstronomy(profile_cls, kwargs):
    # lenstronomy's NFW deflection uses arccosh(1/x), which loses ~1e-16/(1 - x) relative
    # just inside R = Rs (0.15 at 1 - x = 1e-15); there the 80-digit reference is used.
    x, y = _ring_points(kwargs, _radii_over_rs(1e-6 if profile_cls is NFW else 1e-15))
    ax, ay = profile_cls(**kwargs).deflection(x, y)
    lx, ly = lens_model.LensModel([profile_cls.lenstronomy_name]).alpha(x, y, [kwargs])
    assert _vector_error(ax, ay, lx, ly).max() < RTOL
    # exactly at R = Rs on an axis (x exactly 1)
    ax, ay = profile_cls(**kwargs).deflection(kwargs["center_x"] + kwargs["Rs"], kwargs["center_y"])
    lx, ly = lens_model.LensModel([profile_cls.lenstronomy_name]).alpha(
        kwargs["center_x"] + kwargs["Rs"], kwargs["center_y"], [kwargs]
    )
    assert _vector_error(ax, ay, lx, ly) < RTOL
    if profile_cls is NFW:
        assert np.hypot(ax, ay) == pytest.approx(kwargs["alpha_Rs"], rel=1e-13)


def test_population_matches_lenstronomy():
    rng = np.random.default_rng(12)
    k = 8
    params = {
        "Rs": rng.uniform(0.02, 0.8, k),
        "alpha_Rs": rng.uniform(1e-5, 1e-2, k),
        "r_trunc": rng.uniform(0.05, 3.0, k),
        "center_x": rng.uniform(-1, 1, k),
        "center_y": rng.uniform(-1, 1, k),
    }
    x, y = np.meshgrid(np.linspace(-2, 2, 30), np.linspace(-2, 2, 31))
    ax, ay = population_deflection(TNFW, params, x, y, chunk=3)
    kwargs_list = [{n: float(v[i]) for n, v in params.items()} for i in range(k)]
    lx, ly = lens_model.LensModel(["TNFW"] * k).alpha(x, y, kwargs_list)
    # every ray lies at x >= X_REF of every member here
    dist = np.hypot(x[..., None] - params["center_x"], y[..., None] - params["center_y"])
    assert (dist / params["Rs"]).min() > X_REF
    assert _vector_error(ax, ay, lx, ly).max() < RTOL
    bx, _ = TNFW(**{n: v[:, None] for n, v in params.items()}).deflection(x.ravel(), y.ravel())
    assert bx.shape == (k, x.size)


# 80-digit closed forms (lenstronomy's formulas) for x = R/Rs, tau = r_trunc/Rs.
def _mp_reference():
    mp = pytest.importorskip("mpmath")
    digits = 80  # g(x) ~ x^2 ln(1/x) cancels ~2 log10(1/x) digits

    def big_f(x):
        if x < 1:
            s = mp.sqrt(1 - x * x)
            return mp.log((1 + s) / x) / s  # artanh(s)
        if x > 1:
            t = mp.sqrt(x * x - 1)
            return mp.atan(t) / t
        return mp.mpf(1)

    def nfw_g(x):
        with mp.workdps(digits):
            x = mp.mpf(x)
            return mp.log(x / 2) + big_f(x)

    def tnfw_g(x, tau):
        with mp.workdps(digits):
            x, tau = mp.mpf(x), mp.mpf(tau)
            root = mp.sqrt(tau**2 + x**2)
            log_l = mp.log(x / (tau + root))
            bracket = (
                (tau**2 + 1 + 2 * (x**2 - 1)) * big_f(x)
                + tau * mp.pi
                + (tau**2 - 1) * mp.log(tau)
                + root * (-mp.pi + log_l * (tau**2 - 1) / tau)
            )
            return tau**2 / (tau**2 + 1) ** 2 * bracket

    def nfw_k(x):
        with mp.workdps(digits):
            x = mp.mpf(x)
            return mp.mpf(1) / 3 if x == 1 else (1 - big_f(x)) / (x**2 - 1)

    return nfw_g, tnfw_g, nfw_k


X_ALL = np.concatenate(
    [np.logspace(-11, 2.5, 60), 1 + np.array([-1e-3, -1e-9, -1e-16, 0, 2e-16, 1e-9, 1e-3])]
)


@pytest.mark.parametrize("tau", [None, 0.03, 0.7, 3.0, 300.0])
def test_deflection_matches_50_digit_reference_everywhere(tau):
    nfw_g, tnfw_g, _ = _mp_reference()
    norm = 1.0 - np.log(2.0)  # alpha_Rs = 1 - ln 2, Rs = 1: |alpha| = g(x) / x
    if tau is None:
        ax, _ = NFW(Rs=1.0, alpha_Rs=norm).deflection(X_ALL, 0.0)
        ref = np.array([float(nfw_g(x) / x) for x in X_ALL])
    else:
        ax, _ = TNFW(Rs=1.0, alpha_Rs=norm, r_trunc=tau).deflection(X_ALL, 0.0)
        ref = np.array([float(tnfw_g(x, tau) / x) for x in X_ALL])
    np.testing.assert_allclose(ax, ref, rtol=1e-11)


def test_nfw_convergence_matches_50_digit_reference_and_lenstronomy():
    _, _, nfw_k = _mp_reference()
    kw = {"Rs": 1.0, "alpha_Rs": 2.0 * (1.0 - np.log(2.0))}  # kappa = K(x)
    kappa = NFW(**kw).convergence(X_ALL, 0.0)
    np.testing.assert_allclose(kappa, [float(nfw_k(x)) for x in X_ALL], rtol=1e-12)
    # lenstronomy's kappa loses all precision within ~1e-9 of R = Rs (1 - F cancels);
    # away from it (|x - 1| > 1e-3) it agrees to 1e-10.
    far = (np.abs(X_ALL - 1) > 1e-3) & (X_ALL > 1e-6)
    kappa_ref = lens_model.LensModel(["NFW"]).kappa(X_ALL[far], 0.0 * X_ALL[far], [kw])
    np.testing.assert_allclose(kappa[far], kappa_ref, rtol=1e-10)


@pytest.mark.parametrize("kwargs", TNFW_CASES)
def test_tnfw_convergence_matches_lenstronomy_away_from_rs(kwargs):
    x_over_rs = 10 ** np.random.default_rng(13).uniform(-2, 2, 500)
    x_over_rs = x_over_rs[np.abs(x_over_rs - 1) > 1e-3]
    x, y = _ring_points(kwargs, x_over_rs)
    kappa = TNFW(**kwargs).convergence(x, y)
    kappa_ref = lens_model.LensModel(["TNFW"]).kappa(x, y, [kwargs])
    # far outside r_trunc both closed forms cancel: an absolute floor of 1e-15 there
    np.testing.assert_allclose(kappa, kappa_ref, rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("kwargs", TNFW_CASES)
def test_deflection_is_mean_convergence_times_radius(kwargs):
    """alpha(R) = (2 / R) int_0^R kappa(r) r dr for a circular lens."""
    profile = TNFW(**kwargs)
    cx, cy = kwargs["center_x"], kwargs["center_y"]
    for radius in kwargs["Rs"] * np.array([1e-4, 0.3, 1.0, 4.0, 40.0]):
        mass, _ = integrate.quad(
            lambda r: r * profile.convergence(cx + r, cy),
            0.0,
            radius,
            points=[kwargs["Rs"], kwargs["r_trunc"]] if radius > kwargs["r_trunc"] else None,
            epsabs=0.0,
            epsrel=1e-12,
            limit=200,
        )
        ax, _ = profile.deflection(cx + radius, cy)
        assert ax == pytest.approx(2.0 * mass / radius, rel=1e-9)


def test_huge_truncation_radius_equals_nfw():
    """The difference is physical, ~ (R / r_trunc)^2: 1e-12 at R = 100 Rs for 1e8 Rs."""
    kw = {"Rs": 0.4, "alpha_Rs": 0.003, "center_x": 0.05, "center_y": -0.1}
    x, y = _ring_points(kw, np.logspace(-6, 2, 400))
    tx, ty = TNFW(r_trunc=1e8 * kw["Rs"], **kw).deflection(x, y)
    nx, ny = NFW(**kw).deflection(x, y)
    assert _vector_error(tx, ty, nx, ny).max() < 1e-10
    np.testing.assert_allclose(
        TNFW(r_trunc=1e8 * kw["Rs"], **kw).convergence(x, y),
        NFW(**kw).convergence(x, y),
        rtol=1e-10,
    )
