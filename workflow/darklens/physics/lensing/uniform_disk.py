"""Uniform disk of convergence: a mass sheet truncated at a radius (a negative-mass-sheet term).

kappa = ``kappa`` for R <= ``r_trunc``, 0 outside; R the distance from (center_x, center_y).
Enclosed convergence mass m(R) = pi kappa min(R, r_trunc)^2 (unit: arcsec^2, i.e. mass /
Sigma_crit), so the deflection is exact and radial:

    R <= r_trunc:  alpha = kappa (dx, dy)                 (lenstronomy ``CONVERGENCE``)
    R >  r_trunc:  alpha = kappa r_trunc^2 (dx, dy) / R^2  (``POINT_MASS`` of the same mass,
                   theta_E^2 = kappa r_trunc^2; for kappa < 0 a negative mass, deflecting away)
    psi = kappa R^2 / 2 inside, kappa r_trunc^2 (1/2 + ln(R / r_trunc)) outside.

It is continuous at R = r_trunc (its derivative is not: the convergence jumps there), and exactly
0 at the centre. darklens uses it with kappa < 0 to remove the mean mass of the substructure
placed in the disk (mass compensation, docs/physics.md). lenstronomy 1.14.2 has no circular
uniform disk (its ``ElliSLICE``, a uniform ellipse, divides by a^2 - b^2 and fails for a = b);
``tests/test_profile_uniform_disk.py`` checks it against ``CONVERGENCE`` inside,
``POINT_MASS`` outside and a nearly circular ``ElliSLICE`` everywhere.

``ConcentricDisks`` sums several uniform disks about one centre: a stepwise radial convergence
profile (the profile-matched compensation of an axion vortex, darklens.simulation.substructure).
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


@dataclasses.dataclass(frozen=True, eq=False)
class UniformDisk(RadialProfile):
    """Uniform disk of convergence (a mass sheet truncated at ``r_trunc``).

    Attributes:
        kappa: convergence inside the disk (lenstronomy ``CONVERGENCE``'s name); negative for
            a compensating sheet. Unit: dimensionless.
        r_trunc: radius of the disk (floored at R_MIN_ARCSEC). Unit: arcsec.
        center_x, center_y: centre of the disk. Unit: arcsec.
    """

    kappa: ArrayLike
    r_trunc: ArrayLike
    center_x: ArrayLike = 0.0
    center_y: ArrayLike = 0.0

    lenstronomy_name: ClassVar[str] = ""  # none in lenstronomy 1.14.2 (see the module docstring)
    lower_limit: ClassVar[dict[str, float]] = {
        "kappa": -10.0,
        "r_trunc": 0.0,
        **CENTER_LOWER_LIMIT,
    }
    upper_limit: ClassVar[dict[str, float]] = {
        "kappa": 10.0,
        "r_trunc": 100.0,
        **CENTER_UPPER_LIMIT,
    }

    def deflection_over_radius(self, r_squared: FloatArray) -> FloatArray:
        """alpha / R = kappa min(1, r_trunc^2 / R^2) at R^2 = r_squared in arcsec^2.

        Unit: dimensionless.
        """
        rt2 = np.square(clamp_radius(self.r_trunc))
        return self.kappa * rt2 / np.maximum(r_squared, rt2)

    def radial_convergence(self, r_squared: FloatArray) -> FloatArray:
        """kappa for R <= r_trunc, else 0, at R^2 = r_squared in arcsec^2. Unit: dimensionless."""
        inside = r_squared <= np.square(clamp_radius(self.r_trunc))
        return np.where(inside, self.kappa, 0.0)

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Lensing potential at (x, y) in arcsec (0 at the centre). Unit: arcsec^2."""
        r2 = self.squared_radius(x, y)
        rt = clamp_radius(self.r_trunc)
        outside = np.square(rt) * (0.5 + np.log(floored_radius(np.maximum(r2, rt * rt)) / rt))
        return self.kappa * np.where(r2 <= rt * rt, 0.5 * r2, outside)

    def mass(self) -> FloatArray:
        """Total convergence mass pi kappa r_trunc^2 (times Sigma_crit: Msun).

        Unit: arcsec^2.
        """
        return np.pi * self.kappa * np.square(clamp_radius(self.r_trunc))


@dataclasses.dataclass(frozen=True, eq=False)
class ConcentricDisks:
    """A sum of `UniformDisk`s about one centre: a stepwise radial convergence profile.

    Attributes:
        disks: the disks (tuple of `UniformDisk`, one centre); the convergence at R is the sum
            of the kappa of the disks with r_trunc >= R, the deflection the sum of theirs.
    """

    disks: tuple

    @property
    def kappa(self) -> float:
        """Convergence at the centre (the sum of the disks' kappa). Unit: dimensionless."""
        return float(sum(float(disk.kappa) for disk in self.disks))

    @property
    def r_trunc(self) -> float:
        """Outer radius (the largest disk's). Unit: arcsec."""
        return float(max(float(disk.r_trunc) for disk in self.disks))

    def deflection(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Summed deflection (alpha_x, alpha_y) at (x, y) in arcsec. Unit: arcsec."""
        alpha_x, alpha_y = 0.0, 0.0
        for disk in self.disks:
            dx, dy = disk.deflection(x, y)
            alpha_x, alpha_y = alpha_x + dx, alpha_y + dy
        return alpha_x, alpha_y

    def convergence(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Summed convergence at (x, y) in arcsec. Unit: dimensionless."""
        return sum(disk.convergence(x, y) for disk in self.disks)

    def potential(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Summed lensing potential at (x, y) in arcsec (0 at the centre). Unit: arcsec^2."""
        return sum(disk.potential(x, y) for disk in self.disks)

    def mass(self) -> FloatArray:
        """Total convergence mass (times Sigma_crit: Msun). Unit: arcsec^2."""
        return sum(disk.mass() for disk in self.disks)
