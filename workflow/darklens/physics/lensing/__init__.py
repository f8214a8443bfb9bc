"""Lens mass profiles and deflection sums (public API of darklens.physics.lensing).

Profiles take lenstronomy's keyword names and meanings; every angle is in arcsec.
Parameters may be scalars or numpy arrays broadcasting against the ray coordinates.
Each profile has ``deflection(x, y) -> (alpha_x, alpha_y)`` and ``convergence(x, y)``
(float64, vectorised); SIS, SIE, Shear, PointMass, NFW and UniformDisk also have
``potential(x, y)``. ``UniformDisk`` (a mass sheet truncated at a radius) is the negative sheet
of mass compensation; ``population_mass_in_disk`` is a population's mass within a disk.
``total_deflection`` sums a list of profiles; ``population_deflection`` sums a population
of one profile class given as arrays, in bounded memory. ``deflection_from_convergence``
solves laplacian(psi) = 2 kappa by FFT for a gridded map, and ``gaussian_random_field``
draws the convergence of axion granules.
"""

from .base import (
    MAX_BLOCK_ELEMENTS,
    R_MIN_ARCSEC,
    LensProfile,
    population_deflection,
    population_mass_in_disk,
    total_deflection,
)
from .fft_poisson import deflection_from_convergence, gaussian_random_field
from .nfw import NFW, TNFW
from .point_mass import PointMass
from .shear import Shear
from .sie import SIE
from .sis import SIS
from .uniform_disk import UniformDisk

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
    "UniformDisk",
    "deflection_from_convergence",
    "gaussian_random_field",
    "population_deflection",
    "population_mass_in_disk",
    "total_deflection",
]
