"""Point mass (lenstronomy ``POINT_MASS``).

alpha = theta_E^2 (dx, dy) / r^2, psi = theta_E^2 ln r. The convergence is a delta function
at the centre and is returned as 0 everywhere. At the exact centre the deflection is 0;
for r < R_MIN_ARCSEC the 1/r^2 factor is evaluated at R_MIN_ARCSEC.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .base import R_MIN_ARCSEC, FloatArray, LensProfile, clamp_radius, radius


def point_mass_deflection(
    x: ArrayLike,
    y: ArrayLike,
    theta_E: ArrayLike,
    center_x: ArrayLike = 0.0,
    center_y: ArrayLike = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Point-mass deflection. Unit: arcsec (all inputs and outputs)."""
    dx = np.subtract(x, center_x, dtype=np.float64)
    dy = np.subtract(y, center_y, dtype=np.float64)
    scale = np.square(theta_E) / np.maximum(dx * dx + dy * dy, R_MIN_ARCSEC**2)
    return scale * dx, scale * dy


def point_mass_potential(
    x: ArrayLike,
    y: ArrayLike,
    theta_E: ArrayLike,
    center_x: ArrayLike = 0.0,
    center_y: ArrayLike = 0.0,
) -> FloatArray:
    """Point-mass lensing potential theta_E^2 ln r (r in arcsec). Unit: arcsec^2."""
    dx = np.subtract(x, center_x, dtype=np.float64)
    dy = np.subtract(y, center_y, dtype=np.float64)
    return np.square(theta_E) * np.log(clamp_radius(radius(dx, dy)))


@dataclasses.dataclass(frozen=True, eq=False)
class PointMass(LensProfile):
    """Point mass.

    Attributes:
        theta_E: Einstein radius, sqrt(M / (pi Sigma_crit)). Unit: arcsec.
        center_x, center_y: position. Unit: arcsec.
    """

    theta_E: ArrayLike
    center_x: ArrayLike = 0.0
    center_y: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = "POINT_MASS"
    lower_limit: ClassVar[dict[str, float]] = {
        "theta_E": 0.0,
        "center_x": -100.0,
        "center_y": -100.0,
    }
    upper_limit: ClassVar[dict[str, float]] = {
        "theta_E": 100.0,
        "center_x": 100.0,
        "center_y": 100.0,
    }

    def deflection(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Deflection (alpha_x, alpha_y) at (x, y); 0 at the exact centre. Unit: arcsec."""
        return point_mass_deflection(x, y, self.theta_E, self.center_x, self.center_y)

    def convergence(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Convergence at (x, y) in arcsec: 0 (the central delta is not represented).

        Unit: dimensionless.
        """
        dx = np.subtract(x, self.center_x, dtype=np.float64)
        dy = np.subtract(y, self.center_y, dtype=np.float64)
        return np.zeros(np.broadcast_shapes(dx.shape, dy.shape, self.theta_E.shape))

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Lensing potential at (x, y) in arcsec. Unit: arcsec^2."""
        return point_mass_potential(x, y, self.theta_E, self.center_x, self.center_y)
