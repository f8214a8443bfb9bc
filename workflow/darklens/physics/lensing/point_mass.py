"""Point mass (lenstronomy ``POINT_MASS``).

alpha = theta_E^2 (dx, dy) / R^2, psi = theta_E^2 ln R. The convergence is a delta function
at the centre and is returned as 0 everywhere. At the exact centre the deflection is 0;
for R < R_MIN_ARCSEC the 1/R^2 factor is evaluated at R_MIN_ARCSEC.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .base import (
    CENTER_LOWER_LIMIT,
    CENTER_UPPER_LIMIT,
    R_MIN_ARCSEC,
    FloatArray,
    RadialProfile,
    floored_radius,
)


@dataclasses.dataclass(frozen=True, eq=False)
class PointMass(RadialProfile):
    """Point mass.

    Attributes:
        theta_E: Einstein radius, sqrt(M / (pi Sigma_crit)). Unit: arcsec.
        center_x, center_y: position. Unit: arcsec.
    """

    theta_E: ArrayLike
    center_x: ArrayLike = 0.0
    center_y: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = "POINT_MASS"
    lower_limit: ClassVar[dict[str, float]] = {"theta_E": 0.0, **CENTER_LOWER_LIMIT}
    upper_limit: ClassVar[dict[str, float]] = {"theta_E": 100.0, **CENTER_UPPER_LIMIT}

    def deflection_over_radius(self, r_squared: FloatArray) -> FloatArray:
        """alpha / R = theta_E^2 / R^2 at R^2 = r_squared in arcsec^2. Unit: dimensionless."""
        return np.square(self.theta_E) / np.maximum(r_squared, R_MIN_ARCSEC**2)

    def radial_convergence(self, r_squared: FloatArray) -> FloatArray:
        """0 at R^2 = r_squared in arcsec^2 (the central delta is not represented).

        Unit: dimensionless.
        """
        return np.zeros(np.broadcast_shapes(np.shape(r_squared), self.theta_E.shape))

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Lensing potential theta_E^2 ln R at (x, y) in arcsec. Unit: arcsec^2."""
        return np.square(self.theta_E) * np.log(floored_radius(self.squared_radius(x, y)))
