"""The ellipticity convention shared by the SIE mass profile and the Sersic light profiles.

lenstronomy's (``param_util.ellipticity2phi_q``): from the components (e1, e2),
``|e| = sqrt(e1^2 + e2^2)`` clamped to ``E_MAX``, axis ratio ``q = (1 - |e|) / (1 + |e|)``
(minor over major) and orientation ``phi = atan2(e2, e1) / 2`` (major axis, from +x toward
+y). The clamp keeps q > 0, so a drawn |e| >= 1 gives a very flat but finite profile.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Largest ellipticity modulus |e| used (lenstronomy's ``ellipticity2phi_q`` clamp).
#: Unit: dimensionless.
E_MAX = 0.9999


def clamped_modulus(e1: ArrayLike, e2: ArrayLike) -> NDArray[np.float64]:
    """|e| = sqrt(e1^2 + e2^2), at most E_MAX. Unit: dimensionless."""
    return np.minimum(np.hypot(e1, e2), E_MAX)


def ellipticity_to_phi_q(
    e1: ArrayLike, e2: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Orientation phi (major axis, from +x toward +y) and axis ratio q (minor / major) of the
    ellipticity (e1, e2), as lenstronomy's ``param_util.ellipticity2phi_q``.

    Units: e1, e2 and q dimensionless, phi in radian.
    """
    modulus = clamped_modulus(e1, e2)
    return np.arctan2(e2, e1) / 2.0, (1.0 - modulus) / (1.0 + modulus)
