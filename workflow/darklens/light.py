"""Light profiles (lenstronomy conventions).

Positions and sizes in arcsec; `amp` is a surface brightness in counts/s/arcsec^2, so an image
pixel holds `surface_brightness * pixel_area` counts/s (lenstronomy's flux-per-pixel convention).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_RADIUS_ARCSEC = 1e-5  # lenstronomy's Sersic smoothing radius; keeps R**(1/n) finite at R = 0


def ellipticity_to_q_phi(e1, e2):
    """Axis ratio q and position angle phi (radian, from +x toward +y) of lenstronomy's (e1, e2)."""
    e = np.hypot(e1, e2)
    return (1.0 - e) / (1.0 + e), 0.5 * np.arctan2(e2, e1)


def elliptical_radius(x, y, e1, e2, center_x, center_y):
    """lenstronomy's `R = sqrt(q x'^2 + y'^2 / q)` in the major-axis frame. Unit: arcsec."""
    q, phi = ellipticity_to_q_phi(e1, e2)
    dx, dy = x - center_x, y - center_y
    cos, sin = np.cos(phi), np.sin(phi)
    xp = cos * dx + sin * dy
    yp = -sin * dx + cos * dy
    return np.sqrt(q * xp**2 + yp**2 / q)


def sersic_b_n(n_sersic):
    """lenstronomy's approximation `b_n = 1.9992 n - 0.3271` (dimensionless)."""
    return 1.9992 * n_sersic - 0.3271


@dataclass(frozen=True)
class SersicEllipse:
    """Elliptical Sersic profile, lenstronomy's SERSIC_ELLIPSE.

    amp: surface brightness at R_sersic, unit: counts/s/arcsec^2.
    R_sersic: half-light radius along the intermediate axis, unit: arcsec.
    n_sersic: Sersic index (dimensionless, > 0).
    e1, e2: ellipticity components (dimensionless, |e| < 1).
    center_x, center_y: centre, unit: arcsec.
    """

    amp: float
    R_sersic: float
    n_sersic: float
    e1: float = 0.0
    e2: float = 0.0
    center_x: float = 0.0
    center_y: float = 0.0

    def surface_brightness(self, x, y):
        """Surface brightness at (x, y) [arcsec]; unit: counts/s/arcsec^2."""
        r = elliptical_radius(x, y, self.e1, self.e2, self.center_x, self.center_y)
        r = np.maximum(r, MIN_RADIUS_ARCSEC)
        r_sersic = max(self.R_sersic, MIN_RADIUS_ARCSEC)
        b_n = sersic_b_n(self.n_sersic)
        return self.amp * np.exp(-b_n * ((r / r_sersic) ** (1.0 / self.n_sersic) - 1.0))
