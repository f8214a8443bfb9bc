"""NFW and truncated NFW (Baltz et al. 2009) halos (lenstronomy ``NFW`` and ``TNFW``).

Parameters (lenstronomy's): ``Rs`` the scale radius, ``alpha_Rs`` the deflection of the
*untruncated* NFW at R = Rs, ``r_trunc`` the truncation radius, the centre; all in arcsec.
With x = R / Rs, tau = r_trunc / Rs and rho0 = alpha_Rs / (4 Rs^2 (1 - ln 2)):

    NFW:  rho = rho0 / ((r/Rs)(1 + r/Rs)^2)
          kappa = 2 rho0 Rs K(x),     K(x) = (1 - F(x)) / (x^2 - 1)
          alpha = 4 rho0 Rs g(x) / x^2 * (dx, dy),   g(x) = ln(x/2) + F(x)
    TNFW: rho_NFW * tau^2 Rs^2 / (r^2 + tau^2 Rs^2); g and kappa of Baltz et al. 2009
          (eq. A.23-A.27) as in lenstronomy, the deflection rewritten so that every term is
          O(x^2) (no cancellation at small x).

    F(x) = artanh(s) / s,  s = sqrt(1 - x^2)  (x < 1);  arctan(t) / t,  t = sqrt(x^2 - 1)  (x > 1)

evaluated branch-free: each branch on its argument clamped into its own domain (x = 1,
i.e. R = Rs, is clamped to the adjacent floats, where both forms are accurate), then
``np.where``; K(x) uses a Taylor series within ``X_SERIES`` of x = 1 (where 1 - F
cancels), and below ``X_SMALL`` g is computed from an exact cancellation-free
rearrangement. Radii are floored at ``R_MIN_ARCSEC`` (the deflection is exactly 0 at the
exact centre; the convergence, which diverges like ln(1/x), stays finite), and ``Rs`` and
``r_trunc`` likewise. Deflections agree with an 80-digit evaluation of the closed forms to
~1e-12 relative at every x; with lenstronomy to ~1e-12 where lenstronomy is accurate
(its TNFW clamps R >= 1e-3 Rs and cancels at small x; its NFW deflection loses
~1e-16 / (1 - x) just inside R = Rs).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .base import (
    CENTER_LOWER_LIMIT,
    CENTER_UPPER_LIMIT,
    FloatArray,
    RadialProfile,
    clamp_radius,
    floored_radius,
)

#: Half-width in x = R/Rs of the Taylor-series window of K(x) around x = 1. Unit: dimensionless.
X_SERIES = 1e-3
#: Below this x = R/Rs, g(x) / x^2 uses the cancellation-free small-x form. Unit: dimensionless.
X_SMALL = 0.5
#: 1 - ln 2: g(1) of the NFW, the normalisation of alpha_Rs. Unit: dimensionless.
ONE_MINUS_LN2 = 1.0 - np.log(2.0)
#: The floats adjacent to 1: F's two closed forms are evaluated at x clamped to
#: [0, BELOW_ONE] and [ABOVE_ONE, inf), where they are accurate to rounding. Unit: dimensionless.
BELOW_ONE = np.nextafter(1.0, 0.0)
ABOVE_ONE = np.nextafter(1.0, 2.0)
_LN2 = np.log(2.0)

# Taylor coefficients in d = x - 1 of K(x) = (1 - F(x)) / (x^2 - 1).
_K_SERIES = (1.0 / 3.0, -2.0 / 5.0, 13.0 / 35.0, -20.0 / 63.0, 61.0 / 231.0, -94.0 / 429.0)


def _polyval(coefficients, d):
    result = np.zeros_like(d) + coefficients[-1]
    for c in coefficients[-2::-1]:
        result = result * d + c
    return result


def _nfw_f(x: FloatArray, ln_x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """F(x) for x > 0 (given ln x), and the clamped x < 1 argument with its s = sqrt(1 - x^2).

    F = artanh(s)/s = (log1p(s) - ln x)/s for x < 1 (two positive terms), arctan(t)/t with
    t = sqrt(x^2 - 1) for x > 1; each evaluated on x clamped to its side of 1 (x = 1 gives
    1 to rounding; ln x is used only where x < 1, so unclamped). Unit: dimensionless.
    """
    below = np.minimum(x, BELOW_ONE)
    above = np.maximum(x, ABOVE_ONE)
    s = np.sqrt((1.0 - below) * (1.0 + below))
    t = np.sqrt((above - 1.0) * (above + 1.0))
    f = np.where(x < 1.0, (np.log1p(s) - ln_x) / s, np.arctan(t) / t)
    return f, below, s


def _nfw_k(x: FloatArray, f: FloatArray) -> FloatArray:
    """K(x) = (1 - F) / (x^2 - 1), a Taylor series within X_SERIES of 1. Unit: dimensionless."""
    d = x - 1.0
    near = np.abs(d) <= X_SERIES
    far = np.where(near, 1.0 + X_SERIES, x)
    k_far = (1.0 - np.where(near, 1.0, f)) / ((far - 1.0) * (far + 1.0))
    return np.where(near, _polyval(_K_SERIES, np.clip(d, -X_SERIES, X_SERIES)), k_far)


def _nfw_g_over_x2(x: FloatArray, ln_x: FloatArray, f, below, s) -> FloatArray:
    """g(x) / x^2 = (ln(x/2) + F(x)) / x^2 for x > 0 (given ln x and `_nfw_f`'s outputs).

    Below X_SMALL: g/x^2 = [ln(2/x) + log1p(-z)/(2 z)] / (s (1 + s)), s = sqrt(1 - x^2),
    z = x^2 / (2 (1 + s)), an exact rearrangement free of cancellation (finite for all
    clamped x < 1, used only below X_SMALL). Unit: dimensionless.
    """
    z = below * below / (2.0 * (1.0 + s))
    g_small = (_LN2 - ln_x + 0.5 * np.log1p(-z) / z) / (s * (1.0 + s))
    large = np.maximum(x, X_SMALL)
    g_large = (ln_x - _LN2 + f) / (large * large)
    return np.where(x < X_SMALL, g_small, g_large)


def _scaled_radius(r_squared: FloatArray, Rs: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """x = R / Rs (R floored at R_MIN_ARCSEC) at R^2 = r_squared in arcsec^2, and the floored
    Rs in arcsec. Unit: x dimensionless."""
    rs = clamp_radius(Rs)
    return floored_radius(r_squared) / rs, rs


def _tnfw_common(xr, ln_x, r_trunc, rs):
    """tau, w = sqrt(1 + x^2/tau^2), h = (w - 1)/2, log1p(h), L = ln(x / (tau (1 + w))) and
    c1 = tau^2/(tau^2+1)^2 (using ln(1 + w) = ln 2 + log1p(h)). Unit: all dimensionless."""
    tau = clamp_radius(r_trunc) / rs
    x2_over_tau2 = xr * xr / (tau * tau)
    w = np.sqrt(1.0 + x2_over_tau2)
    h = np.maximum(x2_over_tau2 / (2.0 * (1.0 + w)), np.finfo(np.float64).tiny)
    log1p_h = np.log1p(h)
    log_l = ln_x - (np.log(tau) + _LN2) - log1p_h
    c1 = 1.0 / (tau + 1.0 / tau) ** 2
    return tau, w, h, log1p_h, log_l, c1


@dataclasses.dataclass(frozen=True, eq=False)
class NFW(RadialProfile):
    """Navarro-Frenk-White halo.

    Attributes:
        Rs: scale radius. Unit: arcsec.
        alpha_Rs: deflection at R = Rs. Unit: arcsec.
        center_x, center_y: centre. Unit: arcsec.
    """

    Rs: ArrayLike
    alpha_Rs: ArrayLike
    center_x: ArrayLike = 0.0
    center_y: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = "NFW"
    lower_limit: ClassVar[dict[str, float]] = {"Rs": 0.0, "alpha_Rs": 0.0, **CENTER_LOWER_LIMIT}
    upper_limit: ClassVar[dict[str, float]] = {
        "Rs": 100.0,
        "alpha_Rs": 10.0,
        **CENTER_UPPER_LIMIT,
    }

    def deflection_over_radius(self, r_squared: FloatArray) -> FloatArray:
        """alpha / R = 4 rho0 g(x) / x^2 at R^2 = r_squared in arcsec^2. Unit: dimensionless."""
        xr, rs = _scaled_radius(r_squared, self.Rs)
        ln_x = np.log(xr)
        f, below, s = _nfw_f(xr, ln_x)
        return self.alpha_Rs / (ONE_MINUS_LN2 * rs) * _nfw_g_over_x2(xr, ln_x, f, below, s)

    def radial_convergence(self, r_squared: FloatArray) -> FloatArray:
        """kappa = 2 rho0 Rs K(x) at R^2 = r_squared in arcsec^2. Unit: dimensionless."""
        xr, rs = _scaled_radius(r_squared, self.Rs)
        k = _nfw_k(xr, _nfw_f(xr, np.log(xr))[0])
        return self.alpha_Rs / (2.0 * ONE_MINUS_LN2 * rs) * k

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Lensing potential 2 rho0 Rs^3 h(x) (lenstronomy's) at (x, y) in arcsec. Unit: arcsec^2.

        h = ln(x/2)^2 - arccosh(1/x)^2 (x < 1), ln(x/2)^2 + arccos(1/x)^2 (x >= 1); for x < 1
        written as -(ln(2/x) + arccosh(1/x)) log1p(-x^2 / (2 (1 + s))) to avoid cancellation.
        """
        xr, rs = _scaled_radius(self.squared_radius(x, y), self.Rs)
        below = np.minimum(xr, 1.0)
        above = np.maximum(xr, 1.0)
        s = np.sqrt((1.0 - below) * (1.0 + below))
        arccosh = np.log1p((1.0 - below + s) / below)
        h_below = -(np.log(2.0 / below) + arccosh) * np.log1p(-below * below / (2.0 * (1.0 + s)))
        h_above = np.log(0.5 * above) ** 2 + np.arctan(np.sqrt((above - 1.0) * (above + 1.0))) ** 2
        h = np.where(xr < 1.0, h_below, h_above)
        return self.alpha_Rs * rs / (2.0 * ONE_MINUS_LN2) * h


@dataclasses.dataclass(frozen=True, eq=False)
class TNFW(RadialProfile):
    """Truncated NFW halo (Baltz et al. 2009), rho_NFW * r_trunc^2 / (r^2 + r_trunc^2).

    Attributes:
        Rs: scale radius. Unit: arcsec.
        alpha_Rs: deflection at R = Rs of the untruncated NFW with the same rho0. Unit: arcsec.
        r_trunc: truncation radius. Unit: arcsec.
        center_x, center_y: centre. Unit: arcsec.
    """

    Rs: ArrayLike
    alpha_Rs: ArrayLike
    r_trunc: ArrayLike
    center_x: ArrayLike = 0.0
    center_y: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = "TNFW"
    lower_limit: ClassVar[dict[str, float]] = {
        "Rs": 0.0,
        "alpha_Rs": 0.0,
        "r_trunc": 0.0,
        **CENTER_LOWER_LIMIT,
    }
    upper_limit: ClassVar[dict[str, float]] = {
        "Rs": 100.0,
        "alpha_Rs": 10.0,
        "r_trunc": 100.0,
        **CENTER_UPPER_LIMIT,
    }

    def deflection_over_radius(self, r_squared: FloatArray) -> FloatArray:
        """alpha / R = 4 rho0 g_t(x) / x^2 at R^2 = r_squared in arcsec^2. Unit: dimensionless.

        g_t / x^2 = c1 { (tau^2 - 1) [g/x^2 + (L - log1p(h)/(2h)) / (tau^2 (1 + w))]
                        + 2 F - pi / (tau (1 + w)) },  h = x^2 / (2 tau^2 (1 + w)),
        algebraically equal to lenstronomy's ``TNFW._g(x, tau) / x^2``.
        """
        xr, rs = _scaled_radius(r_squared, self.Rs)
        ln_x = np.log(xr)
        tau, w, h, log1p_h, log_l, c1 = _tnfw_common(xr, ln_x, self.r_trunc, rs)
        f, below, s = _nfw_f(xr, ln_x)
        tau2 = tau * tau
        g_over_x2 = (tau2 - 1.0) * _nfw_g_over_x2(xr, ln_x, f, below, s)
        g_over_x2 += ((1.0 - 1.0 / tau2) * (log_l - 0.5 * log1p_h / h) - np.pi / tau) / (1.0 + w)
        g_over_x2 += 2.0 * f
        return self.alpha_Rs * c1 / (ONE_MINUS_LN2 * rs) * g_over_x2

    def radial_convergence(self, r_squared: FloatArray) -> FloatArray:
        """kappa (Baltz et al. 2009, as lenstronomy ``TNFW._F``) at R^2 = r_squared in arcsec^2.

        kappa = 2 rho0 Rs c1 [(tau^2 + 1) K + 2 F - pi / (tau w) + (tau^2 - 1) L / (tau^2 w)].
        Far outside the truncation radius the bracket cancels to ~x^-3 and loses relative
        precision ~1e-16 (R / r_trunc)^2 (1e-6 at R = 1e5 r_trunc, where kappa is negligible).
        Unit: dimensionless.
        """
        xr, rs = _scaled_radius(r_squared, self.Rs)
        ln_x = np.log(xr)
        tau, w, _, _, log_l, c1 = _tnfw_common(xr, ln_x, self.r_trunc, rs)
        f = _nfw_f(xr, ln_x)[0]
        k = _nfw_k(xr, f)
        tau2 = tau * tau
        bracket = (tau2 + 1.0) * k + 2.0 * f - np.pi / (tau * w) + (1.0 - 1.0 / tau2) * log_l / w
        return self.alpha_Rs / (2.0 * ONE_MINUS_LN2 * rs) * c1 * bracket
