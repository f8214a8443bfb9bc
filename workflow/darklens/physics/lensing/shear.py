"""External shear (lenstronomy ``SHEAR``).

alpha = (gamma1 dx + gamma2 dy, gamma2 dx - gamma1 dy) with (dx, dy) = (x - ra_0, y - dec_0);
psi = (gamma1 (dx^2 - dy^2) + 2 gamma2 dx dy) / 2; kappa = 0. The project convention is
ra_0 = dec_0 = 0 (shear about the origin).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from .base import FloatArray, LensProfile


@dataclasses.dataclass(frozen=True, eq=False)
class Shear(LensProfile):
    """External shear.

    Attributes:
        gamma1, gamma2: shear components. Unit: dimensionless.
        ra_0, dec_0: point of zero deflection (project convention: 0). Unit: arcsec.
    """

    gamma1: ArrayLike
    gamma2: ArrayLike
    ra_0: ArrayLike = 0.0
    dec_0: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = "SHEAR"
    lower_limit: ClassVar[dict[str, float]] = {"gamma1": -0.5, "gamma2": -0.5}
    upper_limit: ClassVar[dict[str, float]] = {"gamma1": 0.5, "gamma2": 0.5}

    def offsets(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """(x - ra_0, y - dec_0) of rays at (x, y) in arcsec. Unit: arcsec."""
        dx = np.subtract(x, self.ra_0, dtype=np.float64)
        dy = np.subtract(y, self.dec_0, dtype=np.float64)
        return dx, dy

    def deflection(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Deflection (alpha_x, alpha_y) at (x, y) in arcsec. Unit: arcsec."""
        dx, dy = self.offsets(x, y)
        return self.gamma1 * dx + self.gamma2 * dy, self.gamma2 * dx - self.gamma1 * dy

    def convergence(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Convergence at (x, y) in arcsec: 0. Unit: dimensionless."""
        dx, dy = self.offsets(x, y)
        return np.zeros(
            np.broadcast_shapes(dx.shape, dy.shape, self.gamma1.shape, self.gamma2.shape)
        )

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Lensing potential at (x, y) in arcsec. Unit: arcsec^2."""
        dx, dy = self.offsets(x, y)
        return 0.5 * (self.gamma1 * (dx * dx - dy * dy) + 2.0 * self.gamma2 * dx * dy)
