"""Physics-informed input channels.

The residual channel of the original DeepLense-style recipe (docs/physics.md):
`image - gaussian_smooth(image, sigma_px)`, which keeps the small-scale structure (arcs perturbed
by substructure, noise) and removes the smooth ring. `write_features` stores it as a features file.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from darklens.io.class_files import read_images, write_features_file

CHANNELS = ("image", "residual")
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


def build_channels(
    images: np.ndarray, channels: list[str] | tuple[str, ...], smoothing_sigma_px: float | None
) -> np.ndarray:
    """Stack the requested channels of (N, H, W) images into (N, C, H, W) float32."""
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; known: {list(CHANNELS)}")
    images = np.asarray(images, dtype=np.float32)
    planes = []
    for name in channels:
        if name == "image":
            planes.append(images)
        else:
            if smoothing_sigma_px is None:
                raise ValueError("the residual channel needs smoothing_sigma_px")
            planes.append(residual(images, smoothing_sigma_px))
    return np.stack(planes, axis=1)


def write_features(input_path, output_path, smoothing_sigma_px: float) -> int:
    """The features file of a class file: its residual channel with provenance attributes.
    Returns the number of images."""
    images = read_images(input_path)
    attrs = {
        "source_file": str(input_path),
        "config": {"features": {"smoothing_sigma_px": smoothing_sigma_px}},
        "units": {"residual": "counts/s per pixel"},
        "definition": RESIDUAL_DEFINITION,
    }
    write_features_file(output_path, residual(images, smoothing_sigma_px), attrs)
    return len(images)
