"""Random draws of lens, source and substructure parameters.

Every function takes a `numpy.random.Generator` (derived from the config seed by the caller) and
returns plain numbers or arrays: angles in arcsec, masses in Msun, axion masses in eV.
"""

from __future__ import annotations

import numpy as np


def uniform(rng: np.random.Generator, bounds) -> float:
    """One draw from U(lo, hi); `bounds` is a pair [lo, hi] (lo == hi gives lo)."""
    lo, hi = bounds
    return float(lo + (hi - lo) * rng.random())


def log_uniform(rng: np.random.Generator, bounds) -> float:
    """One draw log-uniform between the positive bounds [lo, hi]."""
    lo, hi = np.log10(bounds[0]), np.log10(bounds[1])
    return float(10.0 ** (lo + (hi - lo) * rng.random()))


def power_law_masses(
    rng: np.random.Generator, n: int, mass_min_msun: float, mass_max_msun: float, slope: float
) -> np.ndarray:
    """`n` masses [Msun] from dN/dm proportional to m**slope on [m_min, m_max], by inverse CDF.

    slope = -1.9 is the Springel et al. (2008) subhalo mass function; slope = -1 is log-uniform.
    """
    u = rng.random(n)
    if np.isclose(slope, -1.0):
        return mass_min_msun * (mass_max_msun / mass_min_msun) ** u
    p = slope + 1.0
    lo, hi = mass_min_msun**p, mass_max_msun**p
    return (lo + u * (hi - lo)) ** (1.0 / p)


def power_law_mean_mass(mass_min_msun: float, mass_max_msun: float, slope: float) -> float:
    """Mean mass [Msun] of dN/dm proportional to m**slope on [m_min, m_max]."""
    lo, hi = float(mass_min_msun), float(mass_max_msun)
    if hi <= lo:
        return lo

    def integral(power):  # int_lo^hi m**power dm
        if np.isclose(power, -1.0):
            return np.log(hi / lo)
        return (hi ** (power + 1.0) - lo ** (power + 1.0)) / (power + 1.0)

    return float(integral(slope + 1.0) / integral(slope))


def uniform_in_disk(rng: np.random.Generator, n: int, radius_arcsec: float):
    """`n` positions (x, y) [arcsec] uniform in area within `radius_arcsec` of the origin."""
    r = radius_arcsec * np.sqrt(rng.random(n))
    phi = 2.0 * np.pi * rng.random(n)
    return r * np.cos(phi), r * np.sin(phi)


def symmetric_pair(rng: np.random.Generator, max_abs: float) -> tuple[float, float]:
    """Two independent draws from U(-max_abs, max_abs) (ellipticities, shears, centres)."""
    a, b = rng.uniform(-max_abs, max_abs, size=2)
    return float(a), float(b)


def line_of_points(
    center_x: float, center_y: float, length_arcsec: float, angle_rad: float, n_points: int
):
    """`n_points` positions [arcsec] evenly spread over a segment of `length_arcsec` centred on
    (center_x, center_y) at `angle_rad` from +x: the mid-points of n equal sub-segments."""
    t = (np.arange(n_points) + 0.5) / n_points - 0.5
    return (
        center_x + t * length_arcsec * np.cos(angle_rad),
        center_y + t * length_arcsec * np.sin(angle_rad),
    )
