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
r_trunc / Rs) in ``ln(x^2)``, linear interpolation: 6e-7 alpha_Rs absolute at worst. The exact
closed forms of ``darklens.lensing`` remain the reference; this is an evaluation strategy only.

Unit: every angle in arcsec; u in arcsec^2.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.polynomial import chebyshev

from .base import R_MIN_ARCSEC, population_deflection
from .nfw import TNFW
from .point_mass import PointMass

#: Coarse nodes added on each side of the pixel-centre grid, for the 6-point stencils.
MARGIN = 3
#: Degree of the Taylor continuation g_k(u) (C^5 match at R_k). Unit: dimensionless.
CONTINUATION_DEGREE = 5
#: A in the error bound A h^6 m(R) / R^7 of one member (see the module docstring), per profile:
#: about 2.5x the largest value measured. Unit: dimensionless.
ERROR_CONSTANT = {"PointMass": 200.0, "TNFW": 30.0}
#: Default bound on the summed deflection error at any ray. Unit: arcsec.
DEFAULT_TOLERANCE_ARCSEC = 1e-5
#: Members evaluated at once on the coarse grid (bounds memory to CHUNK x nodes float64).
CHUNK = 8
#: Members whose near fields are evaluated at once (their arrays stay in the CPU cache).
NEAR_CHUNK = 8
#: Entries of the TNFW unit-profile table, and its range of ln(x^2), x = r / Rs.
TABLE_SIZE = 16384
TABLE_LN_X2 = (math.log(1e-14), math.log(1e14))


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
    ``coarse``): per axis, blocks of b cells (b the largest divisor of n <= 16) take the same
    (b factor, b + 2 MARGIN) band of `lagrange_matrix` from their b + 2 MARGIN nodes, so each
    axis is one matrix product over gathered windows (dense products if b < 4)."""
    n = coarse.shape[-1] - 2 * MARGIN
    if factor == 1:
        return coarse[..., MARGIN:-MARGIN, MARGIN:-MARGIN].copy()
    matrix = lagrange_matrix(n, factor).astype(coarse.dtype, copy=False)
    block = max(b for b in range(1, 17) if n % b == 0)
    if block < 4:
        return np.matmul(np.matmul(matrix, coarse), matrix.T)
    width = block + 2 * MARGIN
    band = np.ascontiguousarray(matrix[: block * factor, :width])  # the same for every block
    windows = np.arange(0, n, block)[:, None] + np.arange(width)[None, :]  # (n / block, width)
    batch, nodes = coarse.shape[:-2], coarse.shape[-1]
    # along y: windows of node rows, as one product (..., x node, y block, width) @ band.T
    rows = np.swapaxes(coarse, -1, -2)[..., windows].reshape(-1, width) @ band.T
    rows = np.swapaxes(rows.reshape(batch + (nodes, n * factor)), -1, -2)  # (..., y, x node)
    # along x: the same on the columns
    out = rows[..., windows].reshape(-1, width) @ band.T  # (..., y, x block, block factor)
    return out.reshape(batch + (n * factor, n * factor))


@functools.lru_cache(maxsize=8)
def _tnfw_table(tau: float) -> tuple[np.ndarray, np.ndarray]:
    """phi(s) = T(x) / x of the unit TNFW (Rs = 1, alpha_Rs = 1, r_trunc = tau) on a uniform
    grid of s = ln(x^2), with its slopes per cell: (values, slopes, values + 1j slopes in
    complex64). Unit: dimensionless."""
    lo, hi = TABLE_LN_X2
    s = np.linspace(lo, hi, TABLE_SIZE + 1)
    x = np.exp(0.5 * s)
    phi = TNFW(Rs=1.0, alpha_Rs=1.0, r_trunc=tau).deflection(x, np.zeros_like(x))[0] / x
    values = phi[:-1].copy()
    slopes = np.diff(phi)
    # single precision, value and slope packed as one complex64 (one gather per lookup)
    packed = values.astype(np.float32) + 1j * slopes.astype(np.float32)
    tables = (values, slopes, packed.astype(np.complex64))
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
            lo, hi = TABLE_LN_X2
            self._inv_step = TABLE_SIZE / (hi - lo)
            self._offset = (-2.0 * np.log(self._rs) - lo) * self._inv_step
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
        [arcsec^2]. Unit: dimensionless."""
        u = np.maximum(u, R_MIN_ARCSEC**2)
        if self.profile_cls is PointMass:
            return self._m[k] / u
        values, slopes = self._table[:2]
        pos = np.log(u) * self._inv_step + self._offset[k]
        pos = np.minimum(np.maximum(pos, 0.0), TABLE_SIZE - 1e-9)
        i = pos.astype(np.intp)
        pos -= i
        return (np.take(values, i) + pos * np.take(slopes, i)) * self._scale[k]

    def f32(self, u: np.ndarray, k: np.ndarray) -> np.ndarray:
        """`f` in single precision for members k (chunk,) at u (chunk, ny, nx) float32 [arcsec^2]
        (the coarse far field: |alpha| <= m / R_k there, relative error ~1e-7)."""
        f32 = np.float32
        u = np.maximum(u, f32(R_MIN_ARCSEC**2))
        if self.profile_cls is PointMass:
            return self._m[k, None, None].astype(f32) / u
        f = self._lookup32(np.log(u, out=u), self._offset[k, None, None])
        f *= self._scale[k, None, None].astype(f32)
        return f

    def _lookup32(self, pos: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """The unit profile phi at ln(u) = pos (float32, overwritten) for members of table
        offsets ``offset`` (broadcast against pos), linear interpolation in single precision."""
        f32 = np.float32
        pos *= f32(self._inv_step)
        pos += offset.astype(f32)
        np.clip(pos, f32(0.0), f32(TABLE_SIZE - 1e-3), out=pos)
        i = pos.astype(np.int32)  # (int32: a faster conversion than to intp)
        pos -= i.astype(f32)
        entries = np.take(self._table[2], i)
        f = np.multiply(entries.imag, pos, out=pos)
        f += entries.real
        return f

    def near_fields(self, u: np.ndarray, k: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
        """(f_k - g_k)(u) where u < U_k, else 0, for members k (G,) at u (G, ...) = r^2
        [arcsec^2] (overwritten; float32 for TNFW, float64 for point masses; g_k from
        `coefficients` (G, 6) at U_k = R_k^2). TNFW near fields are bounded (|alpha| <
        2 alpha_Rs) and single precision keeps them within ~1e-7 of it; a point mass's
        diverges, so it stays in double precision. Unit: dimensionless."""
        real = u.dtype.type
        shape = (-1,) + (1,) * (u.ndim - 1)

        def per_member(values):
            return np.asarray(values, dtype=real).reshape(shape)

        du = u - per_member(self._big_u[k])
        g = du * per_member(coefficients[:, -1])
        for j in range(coefficients.shape[1] - 2, 0, -1):
            g += per_member(coefficients[:, j])
            g *= du
        g += per_member(coefficients[:, 0])
        f = np.maximum(u, real(R_MIN_ARCSEC**2), out=u)
        if self.profile_cls is PointMass:
            np.divide(per_member(self._m[k]), f, out=f)
        else:
            f = self._lookup32(np.log(f, out=f), self._offset[k].reshape(shape))
            f *= per_member(self._scale[k])
        f -= g
        f *= du < 0
        return f

    def f_exact(self, u: np.ndarray) -> np.ndarray:
        """alpha / r from the closed form, members along axis 0 of u (K, ...)."""
        r = np.sqrt(u)
        shape = (-1,) + (1,) * (u.ndim - 1)
        kw = {k: v.reshape(shape) for k, v in self.params.items()}
        kw["center_x"] = 0.0
        kw["center_y"] = 0.0
        return self.profile_cls(**kw).deflection(r, np.zeros_like(r))[0] / r

    def radius(self, pixel: float, member_tolerance: float) -> np.ndarray:
        """R_k: smallest radius with ERROR_CONSTANT h^6 R alpha(R) / R^7 <= tolerance. Unit:
        arcsec."""
        constant = ERROR_CONSTANT[self.profile_cls.__name__] * pixel**6 / member_tolerance
        if self.profile_cls is PointMass:
            return (constant * self._m) ** (1.0 / 7.0)
        radii = np.geomspace(pixel / 8.0, 64.0, 161)
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


def _taylor(coefficients: np.ndarray, du: np.ndarray) -> np.ndarray:
    out = coefficients[..., -1]
    for j in range(coefficients.shape[-1] - 2, -1, -1):
        out = out * du + coefficients[..., j]
    return out


def grid_population_deflection(
    profile_cls: type,
    params: dict,
    n_pix: int,
    pixel_scale_arcsec: float,
    supersampling: int,
    tolerance_arcsec: float = DEFAULT_TOLERANCE_ARCSEC,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed deflection of a population at the rays of the supersampled grid.

    The rays are those of ``Instrument.ray_grid`` (sub-pixel centres,
    ``x_j = (j - (N s - 1)/2) pixel / s``), returned as (N s, N s) arrays [arcsec], x along
    axis 1. Point masses and TNFW halos (one r_trunc / Rs) use the far/near split of the module
    docstring (`PopulationGrid`), within ``tolerance_arcsec`` of the exact sum at every ray;
    other profiles are summed exactly.
    """
    n_rays = n_pix * supersampling
    if not RadialPopulation.supports(profile_cls, params):
        ray = (np.arange(n_rays) - 0.5 * (n_rays - 1)) * (pixel_scale_arcsec / supersampling)
        x, y = np.meshgrid(ray, ray)
        return population_deflection(profile_cls, params, x, y)
    grid = PopulationGrid(
        profile_cls, params, n_pix, pixel_scale_arcsec, supersampling, tolerance_arcsec
    )
    alpha = lagrange_upsample(grid.far, supersampling)
    grid.add_near(alpha)
    return alpha[0], alpha[1]


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
        radius = pop.radius(pixel_scale_arcsec, tolerance_arcsec / pop.size)
        self.radius = radius
        self.coefficients = coefficients = pop.continuation(radius)
        pop._big_u = big_u = radius**2
        node = (np.arange(nodes) - MARGIN - 0.5 * (n_pix - 1)) * pixel_scale_arcsec
        for start in range(0, pop.size, CHUNK):
            k = np.arange(start, min(start + CHUNK, pop.size))
            dx = (node[None, :] - pop.cx[k, None]).astype(np.float32)  # (chunk, nodes)
            dy = (node[None, :] - pop.cy[k, None]).astype(np.float32)
            u = (dy * dy)[:, :, None] + (dx * dx)[:, None, :]
            f = pop.f32(u, k)
            which = np.flatnonzero(u < big_u[k, None, None].astype(np.float32))
            if which.size:
                member = k[which // (nodes * nodes)]
                du = u.reshape(-1)[which].astype(np.float64) - big_u[member]
                f.reshape(-1)[which] = _taylor(coefficients[member], du)
            # single precision sums of CHUNK terms |f dx| < 1": rounding < 1e-7"
            self.far[0] += np.einsum("kij,kj->ij", f, dx)
            self.far[1] += np.einsum("kij,ki->ij", f, dy)

    def add_near(self, alpha: np.ndarray) -> None:
        """Add the near fields (f_k - g_k)(u) (dx, dy) at the rays within R_k of each member
        to ``alpha`` (2, N s, N s) [arcsec], in place. Members are evaluated in groups of
        CHUNK of similar box size, each on the square of rays of its group's largest box."""
        pop = self.pop
        if pop.size == 0:
            return
        n_rays, step = self.n_rays, self.ray_step
        centre = 0.5 * (n_rays - 1)
        dtype = np.float64 if pop.profile_cls is PointMass else np.float32
        lo_x = np.ceil((pop.cx - self.radius) / step + centre).astype(np.int64)
        lo_y = np.ceil((pop.cy - self.radius) / step + centre).astype(np.int64)
        side = np.floor(2.0 * self.radius / step).astype(np.int64) + 2
        visible = (
            (lo_x < n_rays) & (lo_y < n_rays) & (lo_x + side > 0) & (lo_y + side > 0)
        ).nonzero()[0]
        visible = visible[np.argsort(side[visible], kind="stable")]
        for start in range(0, visible.size, NEAR_CHUNK):
            k = visible[start : start + NEAR_CHUNK]
            size = int(side[k].max())
            offsets = np.arange(size)
            dx = ((lo_x[k, None] + offsets - centre) * step - pop.cx[k, None]).astype(dtype)
            dy = ((lo_y[k, None] + offsets - centre) * step - pop.cy[k, None]).astype(dtype)
            u = (dy * dy)[:, :, None] + (dx * dx)[:, None, :]
            near = pop.near_fields(u, k, self.coefficients[k])
            near_x = near * dx[:, None, :]
            near *= dy[:, :, None]
            for row, member in enumerate(k):
                i0, j0 = int(lo_y[member]), int(lo_x[member])
                i1, j1 = min(i0 + size, n_rays), min(j0 + size, n_rays)
                a0, b0 = max(i0, 0), max(j0, 0)
                if i1 <= a0 or j1 <= b0:
                    continue
                patch = (slice(a0 - i0, i1 - i0), slice(b0 - j0, j1 - j0))
                alpha[0, a0:i1, b0:j1] += near_x[row][patch]
                alpha[1, a0:i1, b0:j1] += near[row][patch]
