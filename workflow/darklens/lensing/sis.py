"""Singular isothermal sphere (lenstronomy ``SIS``).

kappa = theta_E / (2 r), alpha = theta_E (dx, dy) / r, psi = theta_E r.
At the exact centre the deflection is 0 (the limit of the symmetric average); for
r < R_MIN_ARCSEC the 1/r factor is evaluated at R_MIN_ARCSEC.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .base import FloatArray, LensProfile, clamp_radius, radius


def sis_deflection(
    x: ArrayLike,
    y: ArrayLike,
    theta_E: ArrayLike,
    center_x: ArrayLike = 0.0,
    center_y: ArrayLike = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """SIS deflection. Unit: arcsec (all inputs and outputs)."""
    dx = np.subtract(x, center_x, dtype=np.float64)
    dy = np.subtract(y, center_y, dtype=np.float64)
    scale = theta_E / clamp_radius(radius(dx, dy))
    return scale * dx, scale * dy


def sis_convergence(
    x: ArrayLike,
    y: ArrayLike,
    theta_E: ArrayLike,
    center_x: ArrayLike = 0.0,
    center_y: ArrayLike = 0.0,
) -> FloatArray:
    """SIS convergence theta_E / (2 r); x, y, theta_E, centre in arcsec. Unit: dimensionless."""
    dx = np.subtract(x, center_x, dtype=np.float64)
    dy = np.subtract(y, center_y, dtype=np.float64)
    return 0.5 * np.asarray(theta_E) / clamp_radius(radius(dx, dy))


def sis_potential(
    x: ArrayLike,
    y: ArrayLike,
    theta_E: ArrayLike,
    center_x: ArrayLike = 0.0,
    center_y: ArrayLike = 0.0,
) -> FloatArray:
    """SIS lensing potential theta_E r. Unit: arcsec^2."""
    dx = np.subtract(x, center_x, dtype=np.float64)
    dy = np.subtract(y, center_y, dtype=np.float64)
    return np.asarray(theta_E) * radius(dx, dy)


@dataclasses.dataclass(frozen=True, eq=False)
class SIS(LensProfile):
    """Singular isothermal sphere.

    Attributes:
        theta_E: Einstein radius. Unit: arcsec.
        center_x, center_y: centre. Unit: arcsec.
    """

    theta_E: ArrayLike
    center_x: ArrayLike = 0.0
    center_y: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = "SIS"
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
        return sis_deflection(x, y, self.theta_E, self.center_x, self.center_y)

    def convergence(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Convergence at (x, y) in arcsec; finite at the centre. Unit: dimensionless."""
        return sis_convergence(x, y, self.theta_E, self.center_x, self.center_y)

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Lensing potential at (x, y) in arcsec. Unit: arcsec^2."""
        return sis_potential(x, y, self.theta_E, self.center_x, self.center_y)
