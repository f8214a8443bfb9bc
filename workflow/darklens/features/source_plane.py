"""The source plane: an image back-traced through its fitted macro lens model.

Each image pixel is cut into SUPERSAMPLING x SUPERSAMPLING sub-rays; each ray is traced to the
source plane, beta = theta - alpha(theta), with the fitted SIE + external shear (lenstronomy
conventions, `darklens.physics.lensing`, float64). The source plane is a grid of as many pixels
as the image (H x W), centred on the FITTED LENS CENTRE, of half-width CUT_MARGIN times the
largest radius of the fitted SIE's radial caustic (its cut: the SIE deflection is scale-free, so
the cut is the curve of its deflection over directions; for theta_E = 1.2" and small
ellipticity about 1.2"): every multiply imaged source lies inside the cut. The external shear
is left out of the extent (|gamma| is a few per cent).

source_plane[i, j] = the mean of the (lens-light-subtracted) image values [counts/s per image
pixel] of the rays landing in source pixel (i, j); 0 where none lands. Lensing conserves surface
brightness, so in flux units the plane estimates the PSF-blurred source; multiple images of one
source point are averaged.

source_residual = (image - re-lensed reconstruction) / sigma(fitted model): each ray takes the
source plane's value where it lands (bilinear interpolation over the filled source pixels),
averaged over the pixel's rays (a ray landing outside the source plane keeps the pixel's own
value, so the residual is 0 there). For a smooth lens the
multiple images of a source point agree and it is small; substructure breaks that agreement.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

from darklens.physics.instrument import pixel_coordinates
from darklens.physics.lensing import SIE, Shear

SUPERSAMPLING = 3  # sub-rays per image pixel per axis: a smoother plane at 9x the rays
CUT_MARGIN = 1.2  # the source plane's half-width in units of the SIE cut's largest radius
CUT_DIRECTIONS = 256  # directions the cut's radius is sampled at

SOURCE_PLANE_DEFINITION = (
    "source_plane = per source-plane pixel, the mean of the image values (lens light subtracted, "
    f"counts/s per image pixel) of the image's sub-rays ({SUPERSAMPLING}x{SUPERSAMPLING} per "
    "pixel) back-traced through the fitted SIE + external shear; 0 where no ray lands. Grid: the "
    f"image's pixel count, centred on the fitted lens centre, half-width {CUT_MARGIN} x the "
    "largest radius of the fitted SIE's radial caustic (cut)"
)
SOURCE_RESIDUAL_DEFINITION = (
    "source_residual = (image - re-lensed source_plane) / sigma(fitted model): each sub-ray "
    "takes the source plane's bilinearly interpolated value where it lands (its own pixel's "
    "value outside the plane), averaged per image pixel"
)


def macro_deflection(x, y, p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Deflection [arcsec] of the SIE + external shear of parameters `p` (lenstronomy names:
    theta_E, e1, e2, lens_center_x, lens_center_y, gamma1, gamma2) at (x, y) [arcsec]."""
    sie = SIE(p["theta_E"], p["e1"], p["e2"], p["lens_center_x"], p["lens_center_y"])
    ax, ay = sie.deflection(x, y)
    sx, sy = Shear(p["gamma1"], p["gamma2"]).deflection(x, y)
    return ax + sx, ay + sy


def source_half_width(p: dict) -> float:
    """Half-width [arcsec] of the source plane: CUT_MARGIN x the largest radius of the SIE's
    cut (its deflection far from the centre, over CUT_DIRECTIONS directions)."""
    phi = np.linspace(0.0, 2.0 * np.pi, CUT_DIRECTIONS, endpoint=False)
    sie = SIE(p["theta_E"], p["e1"], p["e2"], 0.0, 0.0)
    ax, ay = sie.deflection(np.cos(phi), np.sin(phi))
    return CUT_MARGIN * max(float(np.max(np.hypot(ax, ay))), 1e-3)


def _sub_rays(n_pix: int, pixel_scale_arcsec: float, s: int):
    sub = pixel_coordinates(n_pix * s, pixel_scale_arcsec / s)
    return np.meshgrid(sub, sub, indexing="xy")


def reconstruct(
    image: np.ndarray, p: dict, pixel_scale_arcsec: float, supersampling: int = SUPERSAMPLING
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(source plane (H, W), re-lensed image (H, W), grid {center_x, center_y, half_width}) of
    one image (H, W) [counts/s per pixel, lens light already subtracted], float64."""
    n, s = image.shape[0], int(supersampling)
    x, y = _sub_rays(n, pixel_scale_arcsec, s)
    ax, ay = macro_deflection(x, y, p)
    half = source_half_width(p)
    cx, cy = p["lens_center_x"], p["lens_center_y"]
    width = 2.0 * half / n
    col = np.floor((x - ax - (cx - half)) / width).astype(np.int64)
    row = np.floor((y - ay - (cy - half)) / width).astype(np.int64)
    inside = (col >= 0) & (col < n) & (row >= 0) & (row < n)
    values = np.repeat(np.repeat(np.asarray(image, dtype=np.float64), s, axis=0), s, axis=1)
    index = row[inside] * n + col[inside]
    counts = np.bincount(index, minlength=n * n)
    sums = np.bincount(index, weights=values[inside], minlength=n * n)
    plane = np.divide(sums, counts, out=np.zeros(n * n), where=counts > 0)
    plane = plane.reshape(n, n)
    # re-lensing: the plane interpolated bilinearly at each ray, over the filled pixels only
    # (normalised convolution: interp(plane * filled) / interp(filled))
    filled = (counts > 0).reshape(n, n).astype(np.float64)
    u = (x - ax - (cx - half)) / width - 0.5  # the ray's position in source pixels
    v = (y - ay - (cy - half)) / width - 0.5
    coords = np.stack([v[inside], u[inside]])
    weight = map_coordinates(filled, coords, order=1, mode="constant", cval=0.0)
    value = map_coordinates(plane * filled, coords, order=1, mode="constant", cval=0.0)
    relensed_rays = values.copy()
    relensed_rays[inside] = np.where(
        weight > 0, value / np.where(weight > 0, weight, 1.0), values[inside]
    )
    relensed = relensed_rays.reshape(n, s, n, s).mean(axis=(1, 3))
    grid = {"center_x": float(cx), "center_y": float(cy), "half_width": half}
    return plane, relensed, grid


def source_plane_coordinates(n: int, grid: dict) -> tuple[np.ndarray, np.ndarray]:
    """Centres (x, y) [arcsec] of the source-plane pixels of `reconstruct`'s grid, (n, n) each."""
    width = 2.0 * grid["half_width"] / n
    cx = grid["center_x"] - grid["half_width"] + (np.arange(n) + 0.5) * width
    cy = grid["center_y"] - grid["half_width"] + (np.arange(n) + 0.5) * width
    return np.meshgrid(cx, cy, indexing="xy")


def source_planes(images, lens_model) -> tuple[np.ndarray, np.ndarray]:
    """(source_plane, source_residual), float32 (N, H, W) each, of images (N, H, W)
    [counts/s per pixel] and their fitted `LensModel` (SOURCE_PLANE_DEFINITION,
    SOURCE_RESIDUAL_DEFINITION)."""
    images = np.asarray(images, dtype=np.float64)
    light = lens_model.lens_light()
    planes = np.empty(images.shape, dtype=np.float32)
    residuals = np.empty(images.shape, dtype=np.float32)
    for k in range(len(images)):
        source_light = images[k] - (light[k] if light is not None else 0.0)
        plane, relensed, _ = reconstruct(
            source_light, lens_model.image_params(k), lens_model.pixel_scale_arcsec
        )
        planes[k] = plane
        sigma = lens_model.noise.sigma(lens_model.model[k])
        residuals[k] = (source_light - relensed) / sigma
    return planes, residuals
