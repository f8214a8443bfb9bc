"""Lens mass profiles and deflection sums (public API of darklens.lensing).

Profiles take lenstronomy's keyword names and meanings; every angle is in arcsec.
Parameters may be scalars or numpy arrays broadcasting against the ray coordinates.
Each profile has ``deflection(x, y) -> (alpha_x, alpha_y)`` and ``convergence(x, y)``
(float64, vectorised); SIS, SIE, Shear, PointMass and NFW also have ``potential(x, y)``.
"""

from .base import (
    MAX_BLOCK_ELEMENTS,
    R_MIN_ARCSEC,
    LensProfile,
    population_deflection,
    total_convergence,
    total_deflection,
)
from .nfw import NFW, TNFW
from .point_mass import PointMass
from .shear import Shear
from .sie import SIE, ellipticity_to_phi_q
from .sis import SIS

__all__ = [
    "MAX_BLOCK_ELEMENTS",
    "R_MIN_ARCSEC",
    "LensProfile",
    "NFW",
    "PointMass",
    "SIE",
    "SIS",
    "Shear",
    "TNFW",
    "ellipticity_to_phi_q",
    "population_deflection",
    "total_convergence",
    "total_deflection",
]
