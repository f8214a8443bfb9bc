"""Compiled loops of the fast population deflection (`darklens.physics.lensing.grid`).

numpy evaluates the far and near fields as a dozen whole-array passes (temporaries, a logarithm
per element); these loops make one pass with no temporaries and look the TNFW profile up by the
bits of its argument instead of a logarithm. They are compiled by numba on first use and cached
beside this file (``cache=True``); plain IEEE arithmetic (no fastmath), so results do not depend
on the number of jobs.

Profiles: ``kind`` POINT_MASS (f = strength / u) or TNFW (f = strength phi(u inv_rs2), phi the
unit profile tabulated as `grid.table_layout` describes: ``values``, ``slopes``, ``layout`` =
(shift, base, smin, smax)). u = r^2 [arcsec^2] is floored at ``u_min``. The continuation g_k of
member k is the degree-5 polynomial ``coefficients[k]`` in powers of u - big_u[k]. Unit: every
angle in arcsec; f dimensionless.
"""

from __future__ import annotations

import numpy as np
from numba import njit

POINT_MASS, TNFW = 0, 1


@njit(cache=True, inline="always")
def _table(s, values, slopes, shift, base, smin, smax):
    """phi(s) by linear interpolation in the bit-indexed table. Unit: dimensionless."""
    s = min(max(s, smin), smax)
    bits = np.float64(s).view(np.int64)
    cell = (bits >> shift) - base
    fraction = (bits & ((np.int64(1) << shift) - 1)) * (1.0 / (np.int64(1) << shift))
    return values[cell] + fraction * slopes[cell]


@njit(cache=True)
def far_field(
    node, cx, cy, big_u, coefficients, kind, strength, inv_rs2, values, slopes, layout, u_min, out
):
    """Add to out (2, n, n) [arcsec] the far field of every member k at the nodes (node[j],
    node[i]) (x along axis 2): f_k(u) (dx, dy) where u >= big_u[k], g_k(u) (dx, dy) inside."""
    shift, base, smin, smax = layout
    n = node.size
    for k in range(cx.size):
        big, scale, inverse = big_u[k], strength[k], inv_rs2[k]
        c0, c1, c2, c3, c4, c5 = coefficients[k]
        for i in range(n):
            dy = node[i] - cy[k]
            dy2 = dy * dy
            for j in range(n):
                dx = node[j] - cx[k]
                u = dx * dx + dy2
                if u < big:
                    du = u - big
                    f = ((((c5 * du + c4) * du + c3) * du + c2) * du + c1) * du + c0
                elif kind == POINT_MASS:
                    f = scale / max(u, u_min)
                else:
                    s = max(u, u_min) * inverse
                    f = scale * _table(s, values, slopes, shift, base, smin, smax)
                out[0, i, j] += f * dx
                out[1, i, j] += f * dy


@njit(cache=True)
def add_near(
    alpha,
    step,
    cx,
    cy,
    big_u,
    coefficients,
    lo_x,
    lo_y,
    side,
    kind,
    strength,
    inv_rs2,
    values,
    slopes,
    layout,
    u_min,
):
    """Add to alpha (2, n, n) [arcsec], at the rays ((j - (n-1)/2) step, (i - (n-1)/2) step),
    the near field (f_k - g_k)(u) (dx, dy) of every member k at the rays with u < big_u[k],
    searched in the square of rays lo_x[k]..lo_x[k] + side[k] - 1 (likewise y)."""
    shift, base, smin, smax = layout
    n = alpha.shape[1]
    centre = 0.5 * (n - 1)
    for k in range(cx.size):
        big, scale, inverse = big_u[k], strength[k], inv_rs2[k]
        c0, c1, c2, c3, c4, c5 = coefficients[k]
        i0, i1 = max(lo_y[k], 0), min(lo_y[k] + side[k], n)
        j0, j1 = max(lo_x[k], 0), min(lo_x[k] + side[k], n)
        for i in range(i0, i1):
            dy = (i - centre) * step - cy[k]
            dy2 = dy * dy
            for j in range(j0, j1):
                dx = (j - centre) * step - cx[k]
                u = dx * dx + dy2
                if u < big:
                    if kind == POINT_MASS:
                        f = scale / max(u, u_min)
                    else:
                        s = max(u, u_min) * inverse
                        f = scale * _table(s, values, slopes, shift, base, smin, smax)
                    du = u - big
                    f -= ((((c5 * du + c4) * du + c3) * du + c2) * du + c1) * du + c0
                    alpha[0, i, j] += f * dx
                    alpha[1, i, j] += f * dy


@njit(cache=True)
def upsample(coarse, weights, first, margin, out):
    """Separable 6-point Lagrange interpolation of node values coarse (B, m, m) to the
    (B, n f, n f) sub-grid ``out`` of the n = m - 2 margin interior cells: sub-position q of the
    cell at node J (counted from the margin) is sum_t weights[q, t] coarse[J + margin +
    first[q] + t]; along x (the short pass), then along y over whole rows (the long pass, whose
    inner loop is contiguous and vectorises)."""
    factor = weights.shape[0]
    m = coarse.shape[1]
    n = m - 2 * margin
    columns = np.empty((m, n * factor), dtype=out.dtype)
    for b in range(coarse.shape[0]):
        for i in range(m):
            for cell in range(n):
                for q in range(factor):
                    start = cell + margin + first[q]
                    w0, w1, w2, w3, w4, w5 = weights[q]
                    columns[i, cell * factor + q] = (
                        w0 * coarse[b, i, start]
                        + w1 * coarse[b, i, start + 1]
                        + w2 * coarse[b, i, start + 2]
                        + w3 * coarse[b, i, start + 3]
                        + w4 * coarse[b, i, start + 4]
                        + w5 * coarse[b, i, start + 5]
                    )
        for cell in range(n):
            for q in range(factor):
                start = cell + margin + first[q]
                w0, w1, w2, w3, w4, w5 = weights[q]
                row = out[b, cell * factor + q]
                for c in range(n * factor):
                    row[c] = (
                        w0 * columns[start, c]
                        + w1 * columns[start + 1, c]
                        + w2 * columns[start + 2, c]
                        + w3 * columns[start + 3, c]
                        + w4 * columns[start + 4, c]
                        + w5 * columns[start + 5, c]
                    )


@njit(cache=True)
def add_uniform_disk(alpha, xs, ys, kappa, r_trunc, center_x, center_y):
    """Add a uniform disk's deflection (`uniform_disk.UniformDisk`: kappa min(1, r_trunc^2 /
    R^2) (dx, dy)) to alpha (2, len(ys), len(xs)) [arcsec] at the rays (xs[j], ys[i]) [arcsec],
    in place: one pass, no temporaries. r_trunc > 0 [arcsec]; kappa dimensionless."""
    rt2 = r_trunc * r_trunc
    for i in range(ys.shape[0]):
        dy = ys[i] - center_y
        for j in range(xs.shape[0]):
            dx = xs[j] - center_x
            scale = kappa * rt2 / max(dx * dx + dy * dy, rt2)
            alpha[0, i, j] += scale * dx
            alpha[1, i, j] += scale * dy
