"""Fast deflection of a population on a regular, supersampled ray grid.

The image simulator needs the summed deflection of K subhalos (point masses or TNFW halos) at
every ray of an ``(N s) x (N s)`` grid (N pixels per side, supersampling s). Evaluating every
member at every ray costs K (N s)^2 profile evaluations; this module needs about 1/5 of that at
a stated accuracy, by splitting each member into a smooth far field and an exact near field:

- member k gets a radius ``R_k``; inside it, its deflection ``alpha_k = f_k(u) (dx, dy)``
  (``u = r^2``, f the radial function alpha(r) / r) is continued by the degree-5 Taylor
  polynomial ``g_k(u)`` of f_k at ``U_k = R_k^2``: a C^5 field, smooth at the centre;
- the far field ``F = sum_k [alpha_k outside R_k, g_k (dx, dy) inside]`` is evaluated at the
  pixel centres (plus ``MARGIN`` pixels around the image) and interpolated to the rays by
  separable 6-point Lagrange interpolation (``lagrange_upsample``);
- the near field ``(f_k - g_k)(u) (dx, dy)`` is added exactly at the rays within R_k.

Accuracy. Interpolating a field whose 6th derivatives are bounded by D6 with 6-point Lagrange
at the sub-pixel offsets of an s x s grid errs by at most ~ 0.009 h^6 D6 (h the pixel size).
For a point mass of ``m = theta_E^2`` the 6th derivatives at distance r are 720 m / r^7, and the
Taylor continuation inside R has larger ones (~ 5040 m / R^7); measured errors of the whole scheme
are below ``A h^6 m(R) / R^7`` with ``m(R) = R alpha(R)`` (the enclosed mass, in arcsec^2) and
A = ``ERROR_CONSTANT`` (measured: 50 to 95 for point masses; 4 to 12 for TNFW halos, whose mass
is spread). Each member's R_k is the smallest radius at which that bound is at most
``tolerance_arcsec / K``, so the summed deflection is within ``tolerance_arcsec`` of the exact one
at every ray (the tests check it against the exact sum for point masses and TNFW halos of
1e6 to 1e11 Msun, members on ray and pixel centres included).

TNFW profiles are evaluated from a table of the unit profile (Rs = 1, alpha_Rs = 1, the member's
r_trunc / Rs) in ``s = x^2``, with nodes ``2^e (1 + q / 2^TABLE_BITS)``, so that a float's own
bits give its cell and the fraction within it (no logarithm), linear interpolation: within
TABLE_ERROR of the closed form (tests/test_grid.py). The exact closed forms of
``darklens.physics.lensing`` remain the reference; this is an evaluation strategy only. The
far and near fields are summed by compiled loops (`darklens.physics.lensing._kernels`, numba).

Unit: every angle in arcsec; u in arcsec^2.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.polynomial import chebyshev

from .base import R_MIN_ARCSEC
from .nfw import TNFW
from .point_mass import PointMass

#: Coarse nodes added on each side of the pixel-centre grid, for the 6-point stencils.
MARGIN = 3
#: Degree of the Taylor continuation g_k(u) (C^5 match at R_k); the compiled loops of
#: `_kernels` unpack exactly its 6 coefficients. Unit: dimensionless.
CONTINUATION_DEGREE = 5
#: A in the error bound A h^6 m(R) / R^7 of one member (see the module docstring), per profile:
#: about 2.5x the largest value measured. Unit: dimensionless.
ERROR_CONSTANT = {"PointMass": 200.0, "TNFW": 30.0}
#: Default bound on the summed deflection error at any ray. Unit: arcsec.
DEFAULT_TOLERANCE_ARCSEC = 1e-5
#: Table nodes per octave of s = (r / Rs)^2 are 2^TABLE_BITS; the table spans s in
#: [2^TABLE_MIN_EXPONENT, 2^-TABLE_MIN_EXPONENT] (r / Rs from 6e-8 to 1.7e7), clamped beyond.
TABLE_BITS = 9
TABLE_MIN_EXPONENT = -48
#: Bound on the error of a TNFW deflection from the table, |alpha_table - alpha| / alpha_Rs, at
#: any radius: measured 4.1e-7 (r / Rs from 1e-7 to 1e7, r_trunc / Rs from 2 to 50; alpha / r
#: itself within 3.9e-7 alpha_Rs / Rs), tested in tests/test_grid.py. Unit:
#: dimensionless.
TABLE_ERROR = 5e-7
_MANTISSA_BITS = 52
_U_MIN = R_MIN_ARCSEC**2


@functools.lru_cache(maxsize=16)
def lagrange_weights(factor: int) -> tuple[np.ndarray, np.ndarray]:
    """6-point Lagrange weights from a grid of spacing h to the ``factor`` sub-positions of
    each cell (offsets ``(m - (factor-1)/2) / factor`` h from the node, m = 0..factor-1).

    Returns (weights (factor, 6), first-node offset (factor,)): sub-position m of node J is
    ``sum_t weights[m, t] * coarse[J + offset[m] + t]``.
    """
    weights = np.zeros((factor, 6))
    first = np.zeros(factor, dtype=int)
    for m in range(factor):
        d = (m - 0.5 * (factor - 1)) / factor
        first[m] = -2 if d >= 0 else -3
        nodes = np.arange(first[m], first[m] + 6, dtype=np.float64)
        for t in range(6):
            others = np.delete(nodes, t)
            weights[m, t] = np.prod((d - others) / (nodes[t] - others))
    return weights, first


@functools.lru_cache(maxsize=16)
def lagrange_matrix(n: int, factor: int) -> np.ndarray:
    """(n factor, n + 2 MARGIN) matrix of the 6-point Lagrange weights from the nodes (n
    interior cells plus MARGIN on each side) to the ``factor`` sub-positions of each cell."""
    weights, first = lagrange_weights(factor)
    matrix = np.zeros((n * factor, n + 2 * MARGIN))
    for cell in range(n):
        for m in range(factor):
            start = cell + MARGIN + first[m]
            matrix[cell * factor + m, start : start + 6] = weights[m]
    matrix.flags.writeable = False
    return matrix


def lagrange_upsample(coarse: np.ndarray, factor: int) -> np.ndarray:
    """Interpolate (..., n + 2 MARGIN, n + 2 MARGIN) node values to the (..., n factor,
    n factor) sub-grid of the n x n interior cells (separable 6-point Lagrange, in the dtype of
    ``coarse``, float32 or float64; a compiled loop,
    `darklens.physics.lensing._kernels.upsample`)."""
    n = coarse.shape[-1] - 2 * MARGIN
    if factor == 1:
        return coarse[..., MARGIN:-MARGIN, MARGIN:-MARGIN].copy()
    from ._kernels import upsample

    dtype = np.float32 if coarse.dtype == np.float32 else np.float64
    batch, nodes = coarse.shape[:-2], coarse.shape[-1]
    stack = np.ascontiguousarray(coarse, dtype=dtype).reshape(-1, nodes, nodes)
    weights, first = lagrange_weights(factor)
    out = np.empty((stack.shape[0], n * factor, n * factor), dtype=dtype)
    upsample(stack, weights.astype(dtype), first.astype(np.int64), MARGIN, out)
    return out.reshape(batch + (n * factor, n * factor))


@functools.lru_cache(maxsize=8)
def _radius_candidates(pixel: float) -> np.ndarray:
    """The radii among which `RadialPopulation.radius` chooses: 161 from pixel / 8 to 64
    arcsec, geometric. Unit: arcsec."""
    radii = np.geomspace(pixel / 8.0, 64.0, 161)
    radii.flags.writeable = False
    return radii


@functools.lru_cache(maxsize=1)
def table_layout() -> tuple[int, int, float, float]:
    """(shift, base, smin, smax) of the bit-indexed table: the cell of a float64 s in
    [smin, smax] is ``(bits(s) >> shift) - base`` and its fraction in the cell the low
    ``shift`` bits over 2^shift."""
    shift = _MANTISSA_BITS - TABLE_BITS
    smin = math.ldexp(1.0, TABLE_MIN_EXPONENT)
    base = int(np.array([smin]).view(np.int64)[0]) >> shift
    smax = math.ldexp(1.0, -TABLE_MIN_EXPONENT) * (1.0 - 2.0**-_MANTISSA_BITS)
    return shift, base, smin, smax


@functools.lru_cache(maxsize=8)
def _tnfw_table(tau: float) -> tuple[np.ndarray, np.ndarray]:
    """phi(s) = T(x) / x of the unit TNFW (Rs = 1, alpha_Rs = 1, r_trunc = tau) at the nodes
    s = 2^e (1 + q / 2^TABLE_BITS), e from TABLE_MIN_EXPONENT to -TABLE_MIN_EXPONENT - 1: its
    values and slopes per cell (float64, read-only). Unit: dimensionless."""
    per_octave = 1 << TABLE_BITS
    index = np.arange(-2 * TABLE_MIN_EXPONENT * per_octave + 1)
    s = np.ldexp(1.0 + (index % per_octave) / per_octave, TABLE_MIN_EXPONENT + index // per_octave)
    phi = TNFW(Rs=1.0, alpha_Rs=1.0, r_trunc=tau).deflection_over_radius(s)
    tables = (phi[:-1].copy(), np.diff(phi))
    for table in tables:
        table.flags.writeable = False
    return tables


class RadialPopulation:
    """K members of one radial profile class: ``alpha_k = f_k(u) (dx, dy)``.

    Supported: ``PointMass`` (f = theta_E^2 / u) and ``TNFW`` with one r_trunc / Rs for all
    members (f from the unit-profile table).
    """

    def __init__(self, profile_cls: type, params: dict):
        arrays = {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in params.items()}
        size = max(a.size for a in arrays.values())
        self.params = {k: np.broadcast_to(a, (size,)).copy() for k, a in arrays.items()}
        self.profile_cls = profile_cls
        self.size = size
        self.cx = self.params["center_x"]
        self.cy = self.params["center_y"]
        if profile_cls is PointMass:
            self._m = self.params["theta_E"] ** 2
        elif profile_cls is TNFW:
            self._rs = np.maximum(self.params["Rs"], R_MIN_ARCSEC)
            self._scale = self.params["alpha_Rs"] / self._rs
            tau = np.maximum(self.params["r_trunc"], R_MIN_ARCSEC) / self._rs
            if size and np.abs(tau - tau[0]).max() > 1e-12 * abs(tau[0]):
                raise ValueError("fast TNFW populations need one r_trunc / Rs for all members")
            # the key rounded to 12 digits: r_trunc / Rs of the same factor differ in the last bit
            self._table = _tnfw_table(float(f"{tau[0]:.12g}")) if size else None
            self._inv_rs2 = 1.0 / self._rs**2
        else:
            raise ValueError(f"no fast path for {profile_cls.__name__}")

    @staticmethod
    def supports(profile_cls: type, params: dict) -> bool:
        if profile_cls is PointMass:
            return True
        if profile_cls is TNFW:
            rs = np.maximum(np.asarray(params["Rs"], dtype=np.float64), R_MIN_ARCSEC)
            tau = np.ravel(
                np.maximum(np.asarray(params["r_trunc"], dtype=np.float64), R_MIN_ARCSEC) / rs
            )
            return bool(tau.size == 0 or np.abs(tau - tau[0]).max() <= 1e-12 * abs(tau[0]))
        return False

    def f(self, u: np.ndarray, k) -> np.ndarray:
        """alpha / r of members k (an index or slice, broadcast against u) at u = r^2
        [arcsec^2] (float64 arrays). Unit: dimensionless."""
        u = np.maximum(u, R_MIN_ARCSEC**2)
        if self.profile_cls is PointMass:
            return self._m[k] / u
        shift, base, smin, smax = table_layout()
        values, slopes = self._table
        bits = np.clip(u * self._inv_rs2[k], smin, smax).view(np.int64)
        cell = (bits >> shift) - base
        fraction = (bits & ((1 << shift) - 1)) * (1.0 / (1 << shift))
        return (np.take(values, cell) + fraction * np.take(slopes, cell)) * self._scale[k]

    def kernel_arguments(self) -> tuple:
        """The profile arguments of the compiled loops (`darklens.physics.lensing._kernels`):
        (kind, strength, inv_rs2, values, slopes, layout, u_min)."""
        from . import _kernels

        if self.profile_cls is PointMass:
            empty = np.zeros(1)
            return (_kernels.POINT_MASS, self._m, empty, empty, empty, table_layout(), _U_MIN)
        values, slopes = self._table
        return (_kernels.TNFW, self._scale, self._inv_rs2, values, slopes, table_layout(), _U_MIN)

    def f_exact(self, u: np.ndarray) -> np.ndarray:
        """alpha / r from the closed form, members along axis 0 of u (K, ...) [arcsec^2, > 0].
        Unit: dimensionless."""
        shape = (-1,) + (1,) * (u.ndim - 1)
        kw = {k: v.reshape(shape) for k, v in self.params.items()}
        return self.profile_cls(**kw).deflection_over_radius(u)

    def radius(self, pixel: float, member_tolerance: float) -> np.ndarray:
        """R_k: smallest radius with ERROR_CONSTANT h^6 R alpha(R) / R^7 <= tolerance. Unit:
        arcsec."""
        constant = ERROR_CONSTANT[self.profile_cls.__name__] * pixel**6 / member_tolerance
        if self.profile_cls is PointMass:
            return (constant * self._m) ** (1.0 / 7.0)
        radii = _radius_candidates(pixel)
        u = radii[None, :] ** 2
        mass = self.f(u, np.arange(self.size)[:, None]) * u  # R alpha(R), arcsec^2
        ok = constant * mass <= radii**7
        first = np.argmax(ok, axis=1)
        return np.where(ok.any(axis=1), radii[first], radii[-1])

    def continuation(self, radius: np.ndarray) -> np.ndarray:
        """Taylor coefficients (K, CONTINUATION_DEGREE + 1) of f_k(u) at U_k = R_k^2, in
        powers of (u - U_k). Exact for point masses; for TNFW from a degree-13 Chebyshev fit of
        the closed form at 16 nodes on [0.75 U, 1.25 U] (a fixed linear map of the values)."""
        big_u = radius**2
        powers = np.arange(CONTINUATION_DEGREE + 1)
        if self.profile_cls is PointMass:
            return self._m[:, None] * (-1.0) ** powers / big_u[:, None] ** (powers + 1)
        nodes, operator = _taylor_operator()
        scaled = np.append(1.0 + CONTINUATION_HALF_WIDTH * nodes, 1.0)
        values = self.f_exact(big_u[:, None] * scaled[None, :])  # one call: nodes, then U
        coefficients = values[:, :-1] @ operator.T
        coefficients /= (CONTINUATION_HALF_WIDTH * big_u[:, None]) ** powers
        coefficients[:, 0] = values[:, -1]  # exact value: C^0 at R_k
        return coefficients


#: Half-width, relative to U, of the interval of the Chebyshev fit of the continuation.
CONTINUATION_HALF_WIDTH = 0.25


@functools.lru_cache(maxsize=1)
def _taylor_operator() -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev nodes z (16,) on [-1, 1] and the (degree + 1, 16) matrix mapping f(z) to the
    Taylor coefficients d^j f / dz^j (0) / j! of its degree-13 Chebyshev fit."""
    nodes = np.cos(np.pi * (np.arange(16) + 0.5) / 16)
    fit = chebyshev.chebfit(nodes, np.eye(16), 13)  # (14, 16): coefficients per unit value
    operator = np.empty((CONTINUATION_DEGREE + 1, 16))
    for j in range(CONTINUATION_DEGREE + 1):
        derivative = chebyshev.chebder(fit, j) if j else fit
        operator[j] = chebyshev.chebval(0.0, derivative) / math.factorial(j)
    return nodes, operator


class PopulationGrid:
    """The far/near split of a population (module docstring) on an instrument's grids.

    ``far``: (2, n + 2 MARGIN, n + 2 MARGIN) float64, the far field F (x and y) at the pixel
    centres plus MARGIN nodes around; ``add_near(alpha)`` adds the near fields to a (2, N s,
    N s) deflection at the rays (F interpolated there by `lagrange_upsample`, plus anything
    else linear, e.g. the macro lens's far field).
    """

    def __init__(
        self,
        profile_cls: type,
        params: dict,
        n_pix: int,
        pixel_scale_arcsec: float,
        supersampling: int,
        tolerance_arcsec: float = DEFAULT_TOLERANCE_ARCSEC,
    ):
        pop = RadialPopulation(profile_cls, params)
        self.pop = pop
        self.n_rays = n_pix * supersampling
        self.ray_step = pixel_scale_arcsec / supersampling
        nodes = n_pix + 2 * MARGIN
        self.far = np.zeros((2, nodes, nodes))
        if pop.size == 0:
            return
        from ._kernels import far_field

        radius = pop.radius(pixel_scale_arcsec, tolerance_arcsec / pop.size)
        self.radius = radius
        self.coefficients = pop.continuation(radius)
        node = (np.arange(nodes) - MARGIN - 0.5 * (n_pix - 1)) * pixel_scale_arcsec
        far_field(
            node, pop.cx, pop.cy, radius**2, self.coefficients, *pop.kernel_arguments(), self.far
        )

    def add_near(self, alpha: np.ndarray) -> None:
        """Add the near fields (f_k - g_k)(u) (dx, dy) at the rays within R_k of each member
        to ``alpha`` (2, N s, N s) float64 [arcsec], in place."""
        from . import _kernels

        pop = self.pop
        if pop.size == 0:
            return
        n_rays, step = self.n_rays, self.ray_step
        centre = 0.5 * (n_rays - 1)
        lo_x = np.ceil((pop.cx - self.radius) / step + centre).astype(np.int64)
        lo_y = np.ceil((pop.cy - self.radius) / step + centre).astype(np.int64)
        side = np.floor(2.0 * self.radius / step).astype(np.int64) + 2
        _kernels.add_near(
            alpha,
            step,
            pop.cx,
            pop.cy,
            self.radius**2,
            self.coefficients,
            lo_x,
            lo_y,
            side,
            *pop.kernel_arguments(),
        )
