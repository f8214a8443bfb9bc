"""The smooth lens model in torch: SIE + external shear + elliptical Sersic source (+ Sersic lens
light at the lens centre), rendered as the simulator renders its noiseless smooth image, for a
batch of images at once, with its Jacobian.

Physics and conventions are those of docs/physics.md and `darklens.physics` (lenstronomy 1.14.2's
SIE, SHEAR about the origin and SERSIC_ELLIPSE): rays at the s x s sub-pixel centres (float64),
`beta = theta - alpha`, pixel = mean surface brightness of its rays x pixel area (counts/s), then
the PSF with the image continued past its edge by its edge values. Unlike the simulator, the SIE is
evaluated exactly at every ray and everything stays float64 (the simulator interpolates the SIE to
within 1e-6" and evaluates the Sersic in float32: the two agree to ~1e-6 of the peak).

The rays of each pixel are summed where they are computed (`_ray_columns`, which
`torch.compile` can fuse into one loop); a separable PSF (e.g. the Gaussian) is then one (N, N)
matrix per axis with the edge rule (`K_y I K_x^T`), other kernels a 2D convolution.

The Jacobian (`SmoothLensModel.basis_and_jacobian`) is analytic and batched: the Sersic through
its elliptical radius written in (e1, e2) directly (smooth at e = 0), the lens through the
source-plane gradient of the source (`dS/dp = -grad_beta S . dalpha/dp`), with `dalpha/dtheta_E =
alpha / theta_E`, the SIE's centre derivatives from its Hessian (the deflection is homogeneous of
degree 0, so `H = 2 kappa / r^2 [[dy^2, -dx dy], [-dx dy, dx^2]]`), its (e1, e2) derivatives
through (phi, q), and the shear's trivially. `tests/test_fitting.py` checks it against forward-mode
autodiff of the whole forward model (`torch.func.jacfwd`).

Parameter vector (per image, `parameter_names`; lenstronomy names and units, arcsec or
dimensionless): the lens (theta_E, e1, e2, center_x, center_y), the shear (gamma1, gamma2), the
source (R_sersic, n_sersic, e1, e2, center_x, center_y) and, with lens light, its (R_sersic,
n_sersic, e1, e2). The amplitudes [counts/s/arcsec^2] enter linearly and are separate
(`amplitude_names`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from darklens.physics.ellipticity import E_MAX
from darklens.physics.instrument import Instrument
from darklens.physics.lensing.base import R_MIN_ARCSEC
from darklens.physics.lensing.sie import U_MIN
from darklens.physics.light import MIN_RADIUS_ARCSEC

LENS_NAMES = ["theta_E", "e1", "e2", "lens_center_x", "lens_center_y", "gamma1", "gamma2"]
SOURCE_NAMES = [
    "source_R_sersic",
    "source_n_sersic",
    "source_e1",
    "source_e2",
    "source_center_x",
    "source_center_y",
]
LENS_LIGHT_NAMES = [
    "lens_light_R_sersic",
    "lens_light_n_sersic",
    "lens_light_e1",
    "lens_light_e2",
]
#: lenstronomy's b_n = 1.9992 n - 0.3271, floored at 1e-5 (as `darklens.physics.light`).
B_N_SLOPE, B_N_OFFSET, B_N_MIN = 1.9992, 0.3271, 1e-5
#: Images x rays evaluated at once, eager on a CPU (`SmoothLensModel._pixels`).
CHUNK_ELEMENTS = 2**15


def parameter_names(lens_light: bool) -> list[str]:
    """Names of the non-linear parameters, in the order of the parameter vector."""
    return LENS_NAMES + SOURCE_NAMES + (LENS_LIGHT_NAMES if lens_light else [])


def amplitude_names(lens_light: bool) -> list[str]:
    """Names of the linear amplitudes [counts/s/arcsec^2], in order."""
    return ["source_amp"] + (["lens_light_amp"] if lens_light else [])


def _edge_correlation_matrix(weights: np.ndarray, n: int) -> np.ndarray:
    """(n, n) matrix of `scipy.ndimage.correlate1d(., weights, mode="nearest")` (odd length)."""
    half = len(weights) // 2
    matrix = np.zeros((n, n))
    rows = np.arange(n)
    for k, w in enumerate(weights):
        np.add.at(matrix, (rows, np.clip(rows + k - half, 0, n - 1)), w)
    return matrix


def _separable(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(column, row) with kernel = outer(column, row) to 1e-13 of its peak, else None."""
    u, sigma, vt = np.linalg.svd(kernel)
    column, row = np.sqrt(sigma[0]) * u[:, 0], np.sqrt(sigma[0]) * vt[0]
    if np.abs(kernel - np.outer(column, row)).max() <= 1e-13 * np.abs(kernel).max():
        return column, row
    return None


def _sie(x, y, theta_E, e1, e2, cx, cy, derivatives: bool = False):
    """SIE deflection (alpha_x, alpha_y) [arcsec] at rays (x, y) for parameters of shape (B, 1),
    as `darklens.physics.lensing.sie.sie_deflection_inplace`. With `derivatives`, also a
    function of the source's gradient (g_x, g_y) with respect to beta that returns the columns
    `-g . d alpha / d p` of theta_E, e1, e2, center_x, center_y (the derivatives of the source
    seen through the lens).

    theta_E: `d alpha / d theta_E = alpha / theta_E`. The centre: the Hessian (the deflection is
    homogeneous of degree 0) is `2 kappa / r^2 [[dy^2, -dx dy], [-dx dy, dx^2]]`, so
    `g . H = 2 kappa / r^2 (g_x dy - g_y dx) (dy, -dx)`. (e1, e2) go through (phi, q), in the
    rotated frame (where `g' . d alpha' / d phi = g' . (2 kappa y' - alpha_y', alpha_x' - 2
    kappa x')`, the rotation's own derivative included, and `d alpha' / d q` differentiates the
    closed form; with t, v below, `dt/dq = t c`, `dv/dq = v c`, `c = du/dq / u - q t^2 /
    u^2`). They are exact for |e| > 0 (the parametrisation is singular at e = 0 exactly,
    where they are set to 0; the fitter never starts there)."""
    e_sq = e1 * e1 + e2 * e2
    modulus_raw = torch.sqrt(e_sq)
    modulus = torch.clamp(modulus_raw, max=E_MAX)
    phi = 0.5 * torch.atan2(e2, e1)
    q = (1.0 - modulus) / (1.0 + modulus)
    u = torch.clamp(2.0 * torch.sqrt(modulus) / (1.0 + modulus), min=U_MIN)
    cos, sin = torch.cos(phi), torch.sin(phi)
    sqrt_q = torch.sqrt(q)
    scale = theta_E * sqrt_q / u
    dx, dy = x - cx, y - cy
    xr = cos * dx + sin * dy
    yr = cos * dy - sin * dx
    psi = torch.clamp(torch.sqrt(q * q * xr * xr + yr * yr), min=R_MIN_ARCSEC)
    t = u * xr / psi
    v = u * yr / psi
    atan_t = torch.atan(t)
    atanh_v = 0.5 * torch.log((1.0 + v) / (1.0 - v))
    ax_r = scale * atan_t
    ay_r = scale * atanh_v
    ax = cos * ax_r - sin * ay_r
    ay = sin * ax_r + cos * ay_r
    if not derivatives:
        return ax, ay
    two_kappa = theta_E * sqrt_q / psi
    # d/dq at fixed (x', y'): scale = b / u with b = theta_E sqrt(q), u = sqrt(1 - q^2)
    du = -q / u
    dscale = theta_E * (0.5 / (sqrt_q * u) - sqrt_q * du / (u * u))
    t_sq = t * t
    c = du / u - (q / (u * u)) * t_sq
    safe_sq = torch.clamp(e_sq, min=1e-300)
    safe_mod = torch.clamp(modulus_raw, min=1e-150)
    dq_de = -2.0 / ((1.0 + modulus) ** 2 * safe_mod)  # times e_k
    dphi_de1, dphi_de2 = -0.5 * e2 / safe_sq, 0.5 * e1 / safe_sq
    r_sq = torch.clamp(dx * dx + dy * dy, min=R_MIN_ARCSEC**2)
    h = two_kappa / r_sq

    def columns(gx, gy) -> list:
        gxr = cos * gx + sin * gy  # the gradient in the rotated frame
        gyr = cos * gy - sin * gx
        along = gxr * ax_r + gyr * ay_r  # g . alpha
        cross = gxr * yr - gyr * xr  # = g_x dy - g_y dx
        dphi = two_kappa * cross + (gyr * ax_r - gxr * ay_r)  # g . d alpha / d phi
        # g . d alpha / d q = dscale / scale (g . alpha) + scale c (g'_x t / (1 + t^2) +
        # g'_y v / (1 - v^2))
        shape = gxr * (t / (1.0 + t_sq)) + gyr * (v / (1.0 - v * v))
        dq = (dscale / scale) * along + scale * (c * shape)
        w = h * cross
        return [
            along * (-1.0 / theta_E),
            -(dphi_de1 * dphi + (dq_de * e1) * dq),
            -(dphi_de2 * dphi + (dq_de * e2) * dq),
            w * dy,
            -(w * dx),
        ]

    return ax, ay, columns


def _sersic(dx, dy, r_sersic, n_sersic, e1, e2, derivatives: bool):
    """Unit-amplitude SERSIC_ELLIPSE at offsets (dx, dy) [arcsec] from its centre; parameters of
    shape (B, 1). The elliptical radius is `R^2 = [(1 + |e|^2) r^2 - 2 e1 (dx^2 - dy^2) -
    4 e2 dx dy] / (1 - |e|^2)`, lenstronomy's `q x'^2 + y'^2 / q` written in (e1, e2).
    Returns S, or S and {name: dS/dname} for dx, dy, R_sersic, n_sersic, e1, e2."""
    e_sq = e1 * e1 + e2 * e2
    inv = 1.0 / (1.0 - e_sq)
    dx2, dy2, dxy = dx * dx, dy * dy, dx * dy
    r_sq = dx2 + dy2
    diff = dx2 - dy2
    radius_sq = inv * ((1.0 + e_sq) * r_sq - 2.0 * e1 * diff - 4.0 * e2 * dxy)
    floor = MIN_RADIUS_ARCSEC**2
    radius_sq_c = torch.clamp(radius_sq, min=floor)
    log_r2 = torch.log(radius_sq_c)
    log_rs = torch.log(torch.clamp(r_sersic, min=MIN_RADIUS_ARCSEC))
    b_raw = B_N_SLOPE * n_sersic - B_N_OFFSET
    b_n = torch.clamp(b_raw, min=B_N_MIN)
    xi = torch.exp((0.5 * log_r2 - log_rs) / n_sersic)
    s = torch.exp(b_n - b_n * xi)
    if not derivatives:
        return s
    bxs = b_n * xi * s
    a = torch.where(radius_sq > floor, -bxs / (2.0 * n_sersic * radius_sq_c), 0.0)
    two_inv = 2.0 * inv
    grads = {
        "dx": a * two_inv * ((1.0 + e_sq - 2.0 * e1) * dx - 2.0 * e2 * dy),
        "dy": a * two_inv * ((1.0 + e_sq + 2.0 * e1) * dy - 2.0 * e2 * dx),
        "e1": a * (inv * (2.0 * e1 * r_sq - 2.0 * diff) + 2.0 * e1 * inv * radius_sq),
        "e2": a * (inv * (2.0 * e2 * r_sq - 4.0 * dxy) + 2.0 * e2 * inv * radius_sq),
        "R_sersic": torch.where(
            r_sersic > MIN_RADIUS_ARCSEC, bxs / (n_sersic * r_sersic), torch.zeros_like(bxs)
        ),
        "n_sersic": s * (B_N_SLOPE * (b_raw > B_N_MIN).to(s.dtype)) * (1.0 - xi)
        + bxs * (0.5 * log_r2 - log_rs) / (n_sersic * n_sersic),
    }
    return s, grads


class SmoothLensModel:
    """The smooth model of one instrument on one device (CPU, or CUDA when given).

    lens_light: whether a Sersic lens light at the lens centre is part of the model.
    compile: evaluate the rays with `torch.compile` (fused loops: ~5x faster on a CPU, after a
    compilation of ~1 min that torch caches on disk for later processes).
    """

    def __init__(
        self, instrument: Instrument, lens_light: bool, device="cpu", compile: bool = False
    ):
        self.instrument = instrument
        self.compile = bool(compile)
        self.lens_light = bool(lens_light)
        self.device = torch.device(device)
        self.names = parameter_names(self.lens_light)
        self.amplitude_names = amplitude_names(self.lens_light)
        self.n_params = len(self.names)
        self.n_amplitudes = len(self.amplitude_names)
        kernel = instrument.psf_kernel
        self._factors = None if kernel is None else _separable(np.asarray(kernel, np.float64))
        self._kernel = None
        if kernel is not None and self._factors is None:
            flipped = np.ascontiguousarray(np.asarray(kernel, np.float64)[::-1, ::-1])
            self._kernel = torch.as_tensor(flipped, device=self.device)[None, None]

    def _tensor(self, array) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float64, device=self.device)

    @functools.lru_cache(maxsize=8)  # noqa: B019 (a few supersampling factors per model)
    def rays(self, supersampling: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Ray positions (x, y) [arcsec], each (N s * N s,) float64, row-major over (i, j)."""
        n, s = self.instrument.n_pix, supersampling
        step = self.instrument.pixel_scale_arcsec / s
        sub = (np.arange(n * s, dtype=np.float64) - 0.5 * (n * s - 1)) * step
        x, y = np.meshgrid(sub, sub, indexing="xy")
        return self._tensor(x.reshape(-1)), self._tensor(y.reshape(-1))

    @functools.lru_cache(maxsize=1)  # noqa: B019
    def _psf_maps(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(K_y, K_x), each (N, N): the separable PSF along each axis with the edge rule, so
        that the convolved image is K_y I K_x^T; None without a separable PSF."""
        if self._factors is None:
            return None
        column, row = self._factors
        n = self.instrument.n_pix
        left = _edge_correlation_matrix(column[::-1], n)
        right = _edge_correlation_matrix(row[::-1], n)
        return self._tensor(left), self._tensor(right)

    def convolve(self, images: torch.Tensor) -> torch.Tensor:
        """PSF convolution of (..., N, N) images, the image continued past its edge by its edge
        values (`darklens.physics.instrument.Instrument.convolve`)."""
        maps = self._psf_maps()
        if maps is not None:
            return maps[0] @ images @ maps[1].T
        if self._kernel is None:
            return images
        n = self.instrument.n_pix
        half = self._kernel.shape[-1] // 2
        flat = images.reshape(-1, 1, n, n)
        padded = torch.nn.functional.pad(flat, (half, half, half, half), mode="replicate")
        return torch.nn.functional.conv2d(padded, self._kernel).reshape(images.shape)

    @functools.lru_cache(maxsize=1)  # noqa: B019
    def _row_map(self) -> torch.Tensor:
        """(N, N): the separable PSF's factor along x (`K_x^T`), or the identity, applied to
        rows of pixels."""
        maps = self._psf_maps()
        if maps is not None:
            return maps[1].T.contiguous()
        return torch.eye(self.instrument.n_pix, dtype=torch.float64, device=self.device)

    def pixel_groups(self, s: int, params, amplitudes, derivatives: bool):
        """The ray values (`_ray_values`) binned to pixels and PSF-convolved, a few images at a
        time: yields (start, stop, pixels (stop - start, K [+ P], N, N)) covering the batch.

        Each chunk's rays are summed over every pixel's s x s rays and convolved along x by one
        matrix product (`_row_map`); the PSF along y (or a 2D kernel) follows on whole images.
        On a CPU the rays are evaluated in chunks of about `CHUNK_ELEMENTS` (images x rays:
        bands of pixel rows of a few images at a time) so that the many intermediate arrays of
        the element-wise arithmetic stay in the CPU's cache (2-7x faster than one pass over a
        batch of 32 images), and a group is the images of one chunk; on other devices the batch
        is one group. Compiled (`compile`), the rays are one fused call (`_compiled_columns`)."""
        x, y = self.rays(s)
        n, b = self.instrument.n_pix, params.shape[0]
        if self.compile:
            sums = _compiled_columns()(x, y, params, amplitudes, self.lens_light, derivatives, n, s)
            yield 0, b, self.convolve(sums * (self.instrument.pixel_scale_arcsec / s) ** 2)
            return
        rays_per_row = n * s * s  # the rays of one row of pixels
        pixel_rows, images = n, b
        if self.device.type == "cpu":
            pixel_rows = max(1, min(n, CHUNK_ELEMENTS // rays_per_row))
            images = max(1, CHUNK_ELEMENTS // (pixel_rows * rays_per_row))
        right = self._row_map() * (self.instrument.pixel_scale_arcsec / s) ** 2
        maps = self._psf_maps()
        for i0 in range(0, b, images):
            p = params[i0 : i0 + images]
            bands = []
            for r0 in range(0, n, pixel_rows):
                r1 = min(n, r0 + pixel_rows)
                band = slice(r0 * rays_per_row, r1 * rays_per_row)
                values = _ray_values(x[band], y[band], p, self.lens_light, derivatives)
                bands.append(_sum_sub_pixels(values, r1 - r0, n, s) @ right)
            binned = bands[0] if len(bands) == 1 else torch.cat(bands, dim=2)
            pixels = maps[0] @ binned if maps is not None else self.convolve(binned)
            if derivatives:
                pixels = _scale_columns(pixels, amplitudes[i0 : i0 + images], self.lens_light)
            yield i0, i0 + len(p), pixels

    def _pixels(self, s: int, params, amplitudes, derivatives: bool) -> torch.Tensor:
        """`pixel_groups` joined: (B, K [+ P], N, N)."""
        groups = [g for _, _, g in self.pixel_groups(s, params, amplitudes, derivatives)]
        return groups[0] if len(groups) == 1 else torch.cat(groups)

    def basis(self, params: torch.Tensor, supersampling: int) -> torch.Tensor:
        """Unit-amplitude pixel images (B, K, N, N) [counts/s per unit amplitude] of the source
        (and lens light) for parameters (B, P)."""
        return self._pixels(supersampling, params, None, False)

    def image(self, params: torch.Tensor, amplitudes: torch.Tensor, supersampling: int):
        """Noiseless model images (B, N, N) [counts/s] for parameters (B, P), amplitudes (B, K)."""
        basis = self.basis(params, supersampling)
        return torch.einsum("bk,bkij->bij", amplitudes, basis)

    def columns(self, params: torch.Tensor, amplitudes: torch.Tensor, s: int) -> torch.Tensor:
        """(B, K + P, N, N): the unit-amplitude images (`basis`) followed by the derivatives of
        the model image `sum_k amplitudes[:, k] basis[:, k]` with respect to the non-linear
        parameters, at supersampling s (one contiguous array: Levenberg-Marquardt's columns)."""
        return self._pixels(s, params, amplitudes, True)

    def basis_and_jacobian(self, params: torch.Tensor, amplitudes: torch.Tensor, s: int):
        """(basis (B, K, N, N), jacobian (B, P, N, N)): `columns` split."""
        pixels = self.columns(params, amplitudes, s)
        k = self.n_amplitudes
        return pixels[:, :k], pixels[:, k:]


def _ray_values(x, y, params, lens_light: bool, derivatives: bool) -> list:
    """On the rays (x, y) (R,) [arcsec], for parameters (B, P): the unit-amplitude surface
    brightness of the source (and lens light), then with `derivatives` the derivatives of the
    unit-amplitude source with respect to the 13 lens and source parameters (and of the lens
    light with respect to its centre (as the lens centre's columns) and its 4 shape
    parameters): a list of (B, R), K + 13 [+ 6]; `_scale_columns` makes them the model's."""
    p = [params[:, k : k + 1] for k in range(params.shape[1])]
    theta_e, e1, e2, cx, cy, g1, g2 = p[:7]
    sie = _sie(x, y, theta_e, e1, e2, cx, cy, derivatives)
    ax, ay = sie[0], sie[1]
    bx = x - ax - g1 * x - g2 * y
    by = y - ay - g2 * x + g1 * y
    source = _sersic(bx - p[11], by - p[12], p[7], p[8], p[9], p[10], derivatives)
    if not derivatives:
        basis = [source]
        if lens_light:
            basis.append(_sersic(x - cx, y - cy, p[13], p[14], p[15], p[16], False))
        return basis
    s_src, d = source
    gx, gy = d["dx"], d["dy"]  # gradient of the source with respect to beta
    ngx = -gx
    columns = sie[2](gx, gy) + [
        ngx * x + gy * y,
        ngx * y - gy * x,
        d["R_sersic"],
        d["n_sersic"],
        d["e1"],
        d["e2"],
        ngx,
        -gy,
    ]
    if not lens_light:
        return [s_src] + columns
    s_light, dl = _sersic(x - cx, y - cy, p[13], p[14], p[15], p[16], True)
    light = [-dl["dx"], -dl["dy"]] + [dl[k] for k in ("R_sersic", "n_sersic", "e1", "e2")]
    return [s_src, s_light] + columns + light


def _scale_columns(pixels: torch.Tensor, amplitudes: torch.Tensor, lens_light: bool):
    """Binned `_ray_values` with derivatives (B, K + 13 [+ 6], N, N) -> (B, K + P, N, N): the
    derivatives of the model `sum_k amplitudes[:, k] basis[:, k]` (the lens light's centre
    derivatives added to the lens centre's)."""
    k = 2 if lens_light else 1
    amp = amplitudes[:, :1, None, None]
    if not lens_light:
        return torch.cat([pixels[:, :k], pixels[:, k:] * amp], dim=1)
    amp_light = amplitudes[:, 1:2, None, None]
    source = pixels[:, k : k + 13] * amp
    light = pixels[:, k + 13 :] * amp_light
    centre = source[:, 3:5] + light[:, :2]
    parts = [pixels[:, :k], source[:, :3], centre, source[:, 5:], light[:, 2:]]
    return torch.cat(parts, dim=1)


def _ray_columns(x, y, params, amplitudes, lens_light: bool, derivatives: bool, n: int, s: int):
    """`_ray_values` on the rays (N s * N s,), each summed over the s x s rays of every pixel:
    (B, K [+ P], N, N) (the compiled path)."""
    sums = _block_sum(torch.stack(_ray_values(x, y, params, lens_light, derivatives), 1), n, s)
    return _scale_columns(sums, amplitudes, lens_light) if derivatives else sums


def _sum_sub_pixels(values: list, rows: int, n: int, s: int) -> torch.Tensor:
    """Ray values, a list of C (B, rows s * N s) on `rows` rows of pixels -> (B, C, rows, N):
    the sum over each pixel's s x s rays (slices added: faster than torch's reductions here)."""
    out = []
    for value in values:
        v = value.reshape(value.shape[0], rows, s, n * s)
        total = v[:, :, 0]
        for k in range(1, s):
            total = total + v[:, :, k]
        if s > 1:
            total = total.reshape(value.shape[0], rows, n, s)
            total = total[..., 0] + sum(total[..., k] for k in range(1, s))
        out.append(total)
    return torch.stack(out, dim=1)


def _block_sum(rays: torch.Tensor, n: int, s: int) -> torch.Tensor:
    """(B, C, N s * N s) -> (B, C, N, N): the sum over each pixel's s x s rays."""
    return rays.reshape(*rays.shape[:2], n, s, n, s).sum(dim=(3, 5))


@functools.cache
def _compiled_columns():
    """`_ray_columns` compiled by torch.compile (one fused loop per output; dynamic shapes)."""
    return torch.compile(_ray_columns, dynamic=True)
