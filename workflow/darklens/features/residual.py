"""The Gaussian residual channel (the original DeepLense-style recipe, docs/physics.md):
`image - gaussian_smooth(image, sigma_px)`, which keeps the small-scale structure (arcs perturbed
by substructure, noise) and removes the smooth ring. It needs no lens model."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

RESIDUAL_DEFINITION = "residual = image - gaussian_filter(image, smoothing_sigma_px, reflect)"


def residual(images: np.ndarray, smoothing_sigma_px: float) -> np.ndarray:
    """Residual `image - G_sigma * image` of a stack of images.

    images: (N, H, W) or (H, W), any float dtype (pixel values in the image's flux units).
    smoothing_sigma_px: Gaussian smoothing width, unit: pixels; must be > 0.
    Returns float32 of the same shape. Borders use reflection, so a flat image gives zero.
    """
    if not smoothing_sigma_px > 0:
        raise ValueError(f"smoothing_sigma_px must be > 0, got {smoothing_sigma_px}")
    stack = np.asarray(images, dtype=np.float64)
    sigma = (0.0,) * (stack.ndim - 2) + (smoothing_sigma_px, smoothing_sigma_px)
    smooth = gaussian_filter(stack, sigma=sigma, mode="reflect")
    return (stack - smooth).astype(np.float32)
