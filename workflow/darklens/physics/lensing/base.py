"""Shared pieces of the lens profiles: the radius floor, the profile base classes, sums.

Every profile is a thin frozen dataclass; the circularly symmetric ones (SIS, point mass,
NFW, TNFW) derive from :class:`RadialProfile` and state only their radial functions.
Constructor parameters are scalars or numpy arrays that broadcast against the ray
coordinates ``x``, ``y`` (e.g. parameters of shape ``(K, 1)`` and rays of shape ``(P,)``
give deflections of shape ``(K, P)``). Numerics are branch-free: singular points are
guarded by clamping with the named constants below, never by masked assignment.

Unit: every angle (coordinates, centres, Einstein radii, scale radii, deflections) in arcsec.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Smallest radius used in any ``1/r`` of a profile. Unit: arcsec.
#: Below it a singular profile is evaluated as if ``r = R_MIN_ARCSEC`` in the ``1/r``
#: factor while keeping the true offset vector, so the deflection goes linearly to
#: exactly 0 at the exact centre and every value stays finite.
R_MIN_ARCSEC = 1e-12

#: Elements (rays x profiles) evaluated at once by :func:`population_deflection`.
#: A float64 block of this size is 128 KiB, which keeps a TNFW evaluation in the CPU cache.
MAX_BLOCK_ELEMENTS = 2**14

FloatArray = NDArray[np.float64]


def radius(dx: ArrayLike, dy: ArrayLike) -> FloatArray:
    """sqrt(dx^2 + dy^2) (several times faster than ``np.hypot``). Unit: arcsec."""
    return np.sqrt(np.multiply(dx, dx) + np.multiply(dy, dy))


def clamp_radius(r: ArrayLike) -> FloatArray:
    """Return ``max(r, R_MIN_ARCSEC)``.

    Unit: arcsec (in and out).
    """
    return np.maximum(r, R_MIN_ARCSEC)


@dataclasses.dataclass(frozen=True, eq=False)
class LensProfile:
    """Base of all lens profiles.

    Subclasses declare their parameters as dataclass fields with lenstronomy's names; the
    values are converted to float64 numpy arrays on construction. Subclasses implement
    ``deflection(x, y) -> (alpha_x, alpha_y)`` and ``convergence(x, y)``; both take ray
    coordinates in arcsec (any broadcastable shapes) and return float64 arrays of the
    broadcast shape of the rays and the parameters.

    Class attributes:
        lenstronomy_name: the name of the same profile in ``lenstronomy.LensModel``.
        lower_limit, upper_limit: the parameter ranges the profile is meant for (the
            same spirit as lenstronomy's ``lower_limit_default``); not enforced.
    """

    lenstronomy_name: ClassVar[str] = ""
    lower_limit: ClassVar[dict[str, float]] = {}
    upper_limit: ClassVar[dict[str, float]] = {}

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = np.asarray(getattr(self, field.name), dtype=np.float64)
            object.__setattr__(self, field.name, value)

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The constructor parameter names (lenstronomy's keyword names)."""
        return tuple(field.name for field in dataclasses.fields(cls))

    def kwargs(self) -> dict[str, FloatArray]:
        """The parameters as a dict, e.g. for ``lenstronomy.LensModel`` (scalar params)."""
        return {name: getattr(self, name) for name in self.param_names()}

    def deflection(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Deflection angle (alpha_x, alpha_y) at ray positions (x, y). Unit: arcsec."""
        raise NotImplementedError

    def convergence(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Convergence kappa at ray positions (x, y) in arcsec. Unit: dimensionless."""
        raise NotImplementedError


#: lenstronomy's default range of a profile centre, shared by every centred profile. Unit: arcsec.
CENTER_LOWER_LIMIT: dict[str, float] = {"center_x": -100.0, "center_y": -100.0}
CENTER_UPPER_LIMIT: dict[str, float] = {"center_x": 100.0, "center_y": 100.0}


def floored_radius(r_squared: ArrayLike) -> FloatArray:
    """The radius ``max(sqrt(r_squared), R_MIN_ARCSEC)`` for a ``1/R`` factor.

    Unit: r_squared in arcsec^2, the result in arcsec.
    """
    return clamp_radius(np.sqrt(r_squared))


@dataclasses.dataclass(frozen=True, eq=False)
class RadialProfile(LensProfile):
    """Base of the circularly symmetric profiles centred at (``center_x``, ``center_y``).

    A subclass declares its lenstronomy-named parameters as fields, ending with
    ``center_x`` and ``center_y`` (arcsec, default 0), and states only its radial functions
    of the squared distance from the centre, ``r_squared = R^2`` in arcsec^2:

    - ``deflection_over_radius(r_squared)``: alpha(R) / R, dimensionless, so that the
      deflection is ``alpha(R) / R * (x - center_x, y - center_y)`` in arcsec; every
      ``1/R`` in it is evaluated at ``R >= R_MIN_ARCSEC`` (e.g. with :func:`floored_radius`),
      so the deflection is finite everywhere and exactly 0 at the exact centre.
    - ``radial_convergence(r_squared)``: kappa(R), dimensionless, finite at R = 0.

    R^2 is passed rather than R because a point mass needs only R^2 (no square root).
    """

    def offsets(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """(x - center_x, y - center_y) of rays at (x, y) in arcsec. Unit: arcsec."""
        dx = np.subtract(x, self.center_x, dtype=np.float64)
        dy = np.subtract(y, self.center_y, dtype=np.float64)
        return dx, dy

    def squared_radius(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """R^2 = (x - center_x)^2 + (y - center_y)^2 of rays at (x, y) in arcsec. Unit: arcsec^2."""
        dx, dy = self.offsets(x, y)
        return dx * dx + dy * dy

    def deflection(self, x: ArrayLike, y: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Deflection (alpha_x, alpha_y) at (x, y) in arcsec; 0 at the exact centre.

        Unit: arcsec.
        """
        dx, dy = self.offsets(x, y)
        scale = self.deflection_over_radius(dx * dx + dy * dy)
        return scale * dx, scale * dy

    def convergence(self, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Convergence at (x, y) in arcsec; finite at the centre. Unit: dimensionless."""
        return self.radial_convergence(self.squared_radius(x, y))

    def deflection_over_radius(self, r_squared: FloatArray) -> FloatArray:
        """alpha(R) / R at R^2 = r_squared in arcsec^2. Unit: dimensionless."""
        raise NotImplementedError

    def radial_convergence(self, r_squared: FloatArray) -> FloatArray:
        """Convergence kappa(R) at R^2 = r_squared in arcsec^2. Unit: dimensionless."""
        raise NotImplementedError


def total_deflection(
    profiles: Iterable[LensProfile], x: ArrayLike, y: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Sum of the deflections of ``profiles`` at (x, y).

    Args:
        profiles: lens profiles; each one's parameters must broadcast against x, y to
            the shape of x (use :func:`population_deflection` for a population axis).
        x, y: ray coordinates. Unit: arcsec.

    Returns:
        (alpha_x, alpha_y) with the broadcast shape of x and y. Unit: arcsec.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    alpha_x = np.zeros(np.broadcast_shapes(x.shape, y.shape))
    alpha_y = np.zeros_like(alpha_x)
    for profile in profiles:
        ax, ay = profile.deflection(x, y)
        alpha_x = alpha_x + ax
        alpha_y = alpha_y + ay
    return alpha_x, alpha_y


def population_deflection(
    profile_cls: type[LensProfile],
    params: dict[str, ArrayLike],
    x: ArrayLike,
    y: ArrayLike,
    chunk: int | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Summed deflection of a population of K profiles of one class, in bounded memory.

    The population is evaluated in blocks of ``chunk`` members times at most
    ``MAX_BLOCK_ELEMENTS // chunk`` rays, each one broadcast array operation, then summed
    over the population axis (small blocks stay in the CPU cache: faster than one big one).

    Args:
        profile_cls: e.g. ``TNFW`` or ``PointMass``.
        params: constructor keywords of ``profile_cls``; each a scalar (shared by all
            members) or an array of shape (K,). Units as in the profile (arcsec for angles).
        x, y: ray coordinates of any (common, broadcastable) shape. Unit: arcsec.
        chunk: population members per block; default ``MAX_BLOCK_ELEMENTS // P`` clipped
            to [1, K] (P = number of rays).

    Returns:
        (alpha_x, alpha_y) with the broadcast shape of x and y. Unit: arcsec.
    """
    x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    shape = x.shape
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    sizes = {value.shape[0] for value in arrays.values() if value.ndim > 0}
    if len(sizes) > 1:
        raise ValueError(f"population parameters have different lengths: {sorted(sizes)}")
    n_members = sizes.pop() if sizes else 1
    if chunk is None:
        chunk = min(n_members, max(1, MAX_BLOCK_ELEMENTS // max(1, xf.size)))
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    ray_block = max(1, MAX_BLOCK_ELEMENTS // chunk)
    alpha_x = np.zeros(xf.size)
    alpha_y = np.zeros(xf.size)
    for start in range(0, n_members, chunk):
        profile = profile_cls(
            **{
                name: value[start : start + chunk, None] if value.ndim > 0 else value
                for name, value in arrays.items()
            }
        )
        for ray in range(0, xf.size, ray_block):
            rays = slice(ray, ray + ray_block)
            ax, ay = profile.deflection(xf[None, rays], yf[None, rays])
            alpha_x[rays] += ax.sum(axis=0)
            alpha_y[rays] += ay.sum(axis=0)
    return alpha_x.reshape(shape), alpha_y.reshape(shape)


#: Points on the circle of the Gauss-law quadrature of :func:`population_mass_in_disk`.
MASS_QUADRATURE_POINTS = 2048


def population_mass_in_disk(
    profile_cls: type[LensProfile],
    params: dict[str, ArrayLike],
    radius_arcsec: float,
    center_x: float = 0.0,
    center_y: float = 0.0,
    points: int = MASS_QUADRATURE_POINTS,
) -> float:
    """Projected mass / Sigma_crit of a population within a disk, by Gauss's law.

    Since div alpha = 2 kappa, the integral of kappa over the disk is (1/2) of the flux of the
    summed deflection through its edge, pi r <alpha . n> (the trapezoid rule on ``points``
    equally spaced points, spectrally accurate for deflections smooth along the circle: TNFW
    and NFW members; not for point masses within a few spacings of the circle).

    Args:
        profile_cls, params: the population, as for :func:`population_deflection`.
        radius_arcsec, center_x, center_y: the disk. Unit: arcsec.
        points: quadrature points on the circle.

    Returns:
        The mass within the disk divided by Sigma_crit (times Sigma_crit [Msun/arcsec^2]:
        Msun). Unit: arcsec^2.
    """
    phi = (np.arange(points) + 0.5) * (2.0 * np.pi / points)
    cos, sin = np.cos(phi), np.sin(phi)
    ax, ay = population_deflection(
        profile_cls, params, center_x + radius_arcsec * cos, center_y + radius_arcsec * sin
    )
    return float(np.pi * radius_arcsec * np.mean(ax * cos + ay * sin))
