"""Singular isothermal sphere (lenstronomy ``SIS``).

kappa = theta_E / (2 R), alpha = theta_E (dx, dy) / R, psi = theta_E R.
At the exact centre the deflection is 0 (the limit of the symmetric average); for
R < R_MIN_ARCSEC the 1/R factor is evaluated at R_MIN_ARCSEC.
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
    floored_radius,
)


@dataclasses.dataclass(frozen=True, eq=False)
class SIS(RadialProfile):
    """Singular isothermal sphere.

    Attributes:
        theta_E: Einstein radius. Unit: arcsec.
        center_x, center_y: centre. Unit: arcsec.
    """

    theta_E: ArrayLike
    center_x: ArrayLike = 0.0
    center_y: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = "SIS"
    lower_limit: ClassVar[dict[str, float]] = {"theta_E": 0.0, **CENTER_LOWER_LIMIT}
    upper_limit: ClassVar[dict[str, float]] = {"theta_E": 100.0, **CENTER_UPPER_LIMIT}

    def deflection_over_radius(self, r_squared: FloatArray) -> FloatArray:
        """alpha / R = theta_E / R at R^2 = r_squared in arcsec^2. Unit: dimensionless."""
        return self.theta_E / floored_radius(r_squared)

    def radial_convergence(self, r_squared: FloatArray) -> FloatArray:
        """kappa = theta_E / (2 R) at R^2 = r_squared in arcsec^2. Unit: dimensionless."""
        return 0.5 * self.theta_E / floored_radius(r_squared)

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Lensing potential theta_E R at (x, y) in arcsec. Unit: arcsec^2."""
        return self.theta_E * np.sqrt(self.squared_radius(x, y))
