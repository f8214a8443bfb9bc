"""Singular isothermal ellipsoid (lenstronomy ``SIE``, i.e. its NIE with core -> 0).

Parameters (lenstronomy's): theta_E (the product-averaged Einstein radius), e1, e2, centre.
Axis ratio and orientation as docs/physics.md and `darklens.physics.ellipticity`:
``|e| = sqrt(e1^2 + e2^2)`` (clamped to ``E_MAX`` like lenstronomy), ``q = (1 - |e|) / (1 + |e|)``,
``phi = atan2(e2, e1) / 2`` (major axis, from +x toward +y). In the frame rotated by phi,

    kappa = (theta_E / 2) / sqrt(q x'^2 + y'^2 / q) = b / (2 psi),
    b = theta_E sqrt(q),  psi = sqrt(q^2 x'^2 + y'^2),
    alpha_x' = (b / u) arctan(u x' / psi),  alpha_y' = (b / u) artanh(u y' / psi),
    u = sqrt(1 - q^2) = 2 sqrt(|e|) / (1 + |e|),

the closed form of Kormann et al. 1994 / Keeton & Kochanek 1998 in lenstronomy's
normalisation; the potential is psi_lens = x' alpha_x' + y' alpha_y'.
u is computed from |e| (no cancellation in 1 - q^2) and floored at ``U_MIN`` so that
q = 1 gives the SIS exactly (arctan(u t) / u = t to double precision there).
At the exact centre the deflection is 0; psi is floored at R_MIN_ARCSEC.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from ..ellipticity import clamped_modulus, ellipticity_to_phi_q
from .base import R_MIN_ARCSEC, FloatArray, LensProfile, clamp_radius

#: Floor on u = sqrt(1 - q^2). Below it arctan(u t)/u and artanh(u t)/u equal t to
#: double precision (|t| <= 1/q). Unit: dimensionless.
U_MIN = 1e-8


def _shape_constants(e1: ArrayLike, e2: ArrayLike):
    """cos phi, sin phi, q and u = sqrt(1 - q^2) (computed from |e|, floored at U_MIN) of the
    ellipticity (e1, e2). Unit: dimensionless."""
    phi, q = ellipticity_to_phi_q(e1, e2)
    modulus = clamped_modulus(e1, e2)
    u = np.maximum(2.0 * np.sqrt(modulus) / (1.0 + modulus), U_MIN)
    return np.cos(phi), np.sin(phi), q, u


#: Interpolation constant c(|e|) of the SIE deflection, at |e| = 0, 0.05, ..., 0.9: 6-point
#: Lagrange interpolation from the pixel-centre grid (spacing h) to the sub-pixel rays
#: (supersampling 2 to 5) errs by at most ``theta_E c (h / d)^6`` at L-infinity distance
#: d >= 4 h from the lens centre (the deflection is homogeneous of degree 0, so the error
#: depends only on d / h, q and the sub-grid offsets). Measured maxima over random orientations
#: and centres; `sie_interpolation_radius` applies a further safety factor. Unit: dimensionless.
SIE_INTERPOLATION_CONSTANT = np.array(
    [1.1, 1.27, 1.64, 2.22, 3.14, 4.68, 6.97, 12.0, 20.4, 36.3, 68.8, 136.0, 290.0, 641.0]
    + [1460.0, 4410.0, 15100.0, 52200.0, 245000.0]
)
#: Safety factor on SIE_INTERPOLATION_CONSTANT. Unit: dimensionless.
SIE_INTERPOLATION_SAFETY = 3.0


def sie_interpolation_radius(
    theta_E: float, e1: float, e2: float, pixel: float, tolerance: float
) -> float:
    """Half-width d [arcsec] of the square around the SIE centre outside which its deflection,
    interpolated from the pixel-centre grid (`darklens.physics.lensing.grid.lagrange_upsample`), is
    within `tolerance` [arcsec] of the exact one; inf beyond the measured |e| <= 0.9."""
    ecc = float(np.hypot(e1, e2))
    index = int(np.ceil(ecc / 0.05 - 1e-9))
    if index >= SIE_INTERPOLATION_CONSTANT.size or not theta_E > 0:
        return float("inf") if theta_E > 0 else 5.0 * pixel
    c = SIE_INTERPOLATION_SAFETY * SIE_INTERPOLATION_CONSTANT[index]
    return pixel * max((c * float(theta_E) / tolerance) ** (1.0 / 6.0), 5.0)


def sie_deflection_inplace(
    x: np.ndarray,
    y: np.ndarray,
    theta_E: float,
    e1: float,
    e2: float,
    center_x: float,
    center_y: float,
) -> tuple[FloatArray, FloatArray]:
    """`SIE.deflection` for scalar parameters at x, y [arcsec] (broadcast against each other)
    in float64, with fewer temporaries, and
    artanh(v) as 0.5 ln((1 + v) / (1 - v)) (the same to ~1e-16 absolute). Unit: arcsec."""
    cos, sin, q, u = (float(value) for value in _shape_constants(e1, e2))
    scale = float(theta_E) * np.sqrt(q) / u
    shape = np.broadcast_shapes(np.shape(x), np.shape(y))
    dx = np.subtract(x, center_x, out=np.empty(shape))
    dy = np.subtract(y, center_y, out=np.empty(shape))
    xr = cos * dx
    xr += sin * dy
    yr = np.multiply(dy, cos, out=dy)
    yr -= sin * dx
    psi = np.multiply(xr, q * q * xr, out=dx)
    psi += yr * yr
    np.sqrt(psi, out=psi)
    np.maximum(psi, R_MIN_ARCSEC, out=psi)
    np.divide(u, psi, out=psi)  # u / psi
    xr *= psi
    np.arctan(xr, out=xr)
    xr *= scale  # alpha_x'
    yr *= psi  # v
    np.subtract(1.0, yr, out=psi)
    yr += 1.0
    np.divide(yr, psi, out=psi)
    np.log(psi, out=psi)
    psi *= 0.5 * scale  # alpha_y'
    ax = cos * xr
    ax -= sin * psi
    ay = np.multiply(xr, sin, out=xr)
    ay += cos * psi
    return ax, ay


@dataclasses.dataclass(frozen=True, eq=False)
class SIE(LensProfile):
    """Singular isothermal ellipsoid.

    Attributes:
        theta_E: Einstein radius (lenstronomy's product average of the axes). Unit: arcsec.
        e1, e2: ellipticity components; q and phi as in the module docstring.
            Unit: dimensionless.
        center_x, center_y: centre. Unit: arcsec.
    """

    theta_E: ArrayLike
    e1: ArrayLike = 0.0
    e2: ArrayLike = 0.0
    center_x: ArrayLike = 0.0
    center_y: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = "SIE"
    lower_limit: ClassVar[dict[str, float]] = {
        "theta_E": 0.0,
        "e1": -0.5,
        "e2": -0.5,
        "center_x": -100.0,
        "center_y": -100.0,
    }
    upper_limit: ClassVar[dict[str, float]] = {
        "theta_E": 100.0,
        "e1": 0.5,
        "e2": 0.5,
        "center_x": 100.0,
        "center_y": 100.0,
    }

    def _major_axis_offsets(self, x: ArrayLike, y: ArrayLike):
        """Offsets (x', y') from the centre in the frame of the major axis, cos phi, sin phi,
        q and u (module docstring). Units: x', y' in arcsec, the rest dimensionless."""
        cos, sin, q, u = _shape_constants(self.e1, self.e2)
        dx = np.subtract(x, self.center_x, dtype=np.float64)
        dy = np.subtract(y, self.center_y, dtype=np.float64)
        return cos * dx + sin * dy, cos * dy - sin * dx, cos, sin, q, u

    def deflection(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Deflection (alpha_x, alpha_y) at (x, y); 0 at the exact centre. Unit: arcsec."""
        xr, yr, cos, sin, q, u = self._major_axis_offsets(x, y)
        psi = clamp_radius(np.sqrt(q * q * xr * xr + yr * yr))
        scale = self.theta_E * np.sqrt(q) / u
        ax = scale * np.arctan(u * xr / psi)
        v = u * yr / psi
        ay = scale * 0.5 * np.log1p(2.0 * v / (1.0 - v))  # artanh(v), |v| < 1
        return cos * ax - sin * ay, sin * ax + cos * ay

    def convergence(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Convergence at (x, y) in arcsec; finite at the centre. Unit: dimensionless."""
        xr, yr, _, _, q, _ = self._major_axis_offsets(x, y)
        psi = clamp_radius(np.sqrt(q * q * xr * xr + yr * yr))
        return 0.5 * self.theta_E * np.sqrt(q) / psi

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Lensing potential dx alpha_x + dy alpha_y at (x, y) in arcsec. Unit: arcsec^2."""
        ax, ay = self.deflection(x, y)
        return np.subtract(x, self.center_x) * ax + np.subtract(y, self.center_y) * ay
