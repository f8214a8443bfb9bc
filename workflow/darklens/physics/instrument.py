"""The instrument: pixel grid, supersampled ray grid, PSF and noise.

Pixel convention (docs/physics.md): `img[i, j]` has centre `x_j = (j - (N-1)/2) * delta`,
`y_i = (i - (N-1)/2) * delta` (arcsec), i.e. lenstronomy's `image[y, x]` layout.
Image values are counts/s per pixel; the PSF convolution continues the image beyond its edge by
its edge values (lenstronomy's convention for Gaussian PSFs); noise is Poisson on
`image * exposure_time_s` counts plus a
Gaussian background of rms `background_rms` counts/s per pixel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import correlate1d
from scipy.signal import fftconvolve

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))  # 2.3548
PSF_TRUNCATION_SIGMA = (
    5.0  # Gaussian PSF kernel half-width, in units of sigma (lenstronomy's default)
)

SNR_DEFINITION = (
    "snr = sqrt(sum_pixels(model^2 / var)) with model the noiseless image [counts/s] and "
    "var = model / exposure_time_s + background_rms^2 [(counts/s)^2]: the matched-filter "
    "signal-to-noise ratio of the whole image; peak_snr = max(model / sqrt(var))."
)


def gaussian_psf_kernel(fwhm_arcsec: float, pixel_scale_arcsec: float) -> np.ndarray:
    """Normalised Gaussian PSF sampled at pixel centres, odd size, truncated at 5 sigma.

    Same kernel as lenstronomy 1.14.2's ``PSF(psf_type="GAUSSIAN", truncation=5)``: half-width
    ``max(round(5 sigma / pixel), 1)`` pixels (at most 110), values at pixel centres, normalised.
    """
    sigma_px = fwhm_arcsec / FWHM_PER_SIGMA / pixel_scale_arcsec
    half = min(max(1, round(PSF_TRUNCATION_SIGMA * sigma_px)), 110)
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    profile = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    kernel = np.outer(profile, profile)
    return kernel / kernel.sum()


def load_psf_kernel(path) -> np.ndarray:
    """A pixelated PSF kernel from a `.npy` or text (`np.loadtxt`) file, sampled on the image's
    pixel grid, centred: odd square, finite, non-negative, positive sum; returned normalised."""
    path = str(path)
    try:
        kernel = np.load(path) if path.endswith(".npy") else np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read a PSF kernel ({exc})") from None
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(f"{path}: a PSF kernel must be an odd square array, got {kernel.shape}")
    if not np.all(np.isfinite(kernel)) or np.any(kernel < 0) or not kernel.sum() > 0:
        raise ValueError(f"{path}: a PSF kernel must be finite, non-negative, with a positive sum")
    return kernel / kernel.sum()


def pixel_coordinates(n_pix: int, pixel_scale_arcsec: float) -> np.ndarray:
    """1D pixel-centre coordinates `(j - (n-1)/2) * delta`, unit: arcsec, float64."""
    return (np.arange(n_pix, dtype=np.float64) - 0.5 * (n_pix - 1)) * pixel_scale_arcsec


@functools.lru_cache(maxsize=8)
def _binning_matrix(n_pix: int, supersampling: int, dtype: str) -> np.ndarray:
    """(N, N s) matrix averaging s consecutive sub-pixels."""
    matrix = np.kron(np.eye(n_pix), np.full((1, supersampling), 1.0 / supersampling))
    matrix = matrix.astype(dtype)
    matrix.flags.writeable = False
    return matrix


def _separable_factors(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(column, row) with kernel = outer(column, row) to 1e-13 of its peak, else None."""
    key = (kernel.shape, kernel.tobytes())
    if key not in _SEPARABLE:
        u, sigma, vt = np.linalg.svd(kernel)
        column, row = np.sqrt(sigma[0]) * u[:, 0], np.sqrt(sigma[0]) * vt[0]
        residual = np.abs(kernel - np.outer(column, row)).max()
        if len(_SEPARABLE) >= 8:
            _SEPARABLE.clear()
        _SEPARABLE[key] = (column, row) if residual <= 1e-13 * np.abs(kernel).max() else None
    return _SEPARABLE[key]


_SEPARABLE: dict = {}


@dataclass(frozen=True)
class Instrument:
    """A square detector with a PSF and a noise model.

    n_pix: pixels per side. pixel_scale_arcsec: pixel size, unit: arcsec.
    supersampling: rays per pixel per axis (integer >= 1).
    psf_kernel: normalised PSF sampled on the pixel grid (odd square array), or None for no PSF.
    exposure_time_s: exposure time, unit: s.
    background_rms: Gaussian background rms, unit: counts/s per pixel.
    """

    n_pix: int
    pixel_scale_arcsec: float
    supersampling: int
    exposure_time_s: float
    background_rms: float
    psf_kernel: np.ndarray | None = field(default=None, repr=False)

    @property
    def pixel_area_arcsec2(self) -> float:
        return self.pixel_scale_arcsec**2

    def ray_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Supersampled ray positions (x, y), each (N*s, N*s) float64, unit: arcsec.

        The s x s sub-pixels of pixel (i, j) are rows i*s..i*s+s-1 and columns j*s..j*s+s-1.
        """
        sub = pixel_coordinates(
            self.n_pix * self.supersampling, self.pixel_scale_arcsec / self.supersampling
        )
        return np.meshgrid(sub, sub, indexing="xy")

    def pixel_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre positions (x, y), each (N, N) float64, unit: arcsec."""
        centres = pixel_coordinates(self.n_pix, self.pixel_scale_arcsec)
        return np.meshgrid(centres, centres, indexing="xy")

    def bin(self, surface_brightness: np.ndarray) -> np.ndarray:
        """Average s x s sub-pixel blocks of a surface brightness [counts/s/arcsec^2] and
        return counts/s per pixel, shape (..., N, N), float64 (two matrix products with the
        (N, N s) block-averaging matrix, in float32 for float32 input: relative error ~1e-7)."""
        dtype = np.float32 if surface_brightness.dtype == np.float32 else np.float64
        matrix = _binning_matrix(self.n_pix, self.supersampling, np.dtype(dtype).char)
        binned = np.matmul(
            np.matmul(matrix, surface_brightness.astype(dtype, copy=False)), matrix.T
        )
        return binned.astype(np.float64) * self.pixel_area_arcsec2

    def convolve(self, image: np.ndarray) -> np.ndarray:
        """Convolve (..., N, N) images with the PSF.

        Outside the field the image is continued by its edge values (lenstronomy's convention
        for a Gaussian PSF: ``scipy.ndimage.gaussian_filter(mode="nearest")``). A separable
        kernel (rank 1 to 1e-13, e.g. the Gaussian) is applied as two 1D correlations with the
        same edge rule (equal to the 2D convolution to ~1e-15 relative), others by FFT.
        """
        if self.psf_kernel is None:
            return image
        factors = _separable_factors(self.psf_kernel)
        if factors is not None:
            column, row = factors
            image = correlate1d(image, column[::-1], axis=-2, mode="nearest")
            return correlate1d(image, row[::-1], axis=-1, mode="nearest")
        half = self.psf_kernel.shape[0] // 2
        pad = [(0, 0)] * (image.ndim - 2) + [(half, half), (half, half)]
        kernel = self.psf_kernel.reshape((1,) * (image.ndim - 2) + self.psf_kernel.shape)
        return fftconvolve(np.pad(image, pad, mode="edge"), kernel, mode="valid", axes=(-2, -1))

    def variance(self, model: np.ndarray) -> np.ndarray:
        """Per-pixel noise variance of a noiseless image [counts/s]: unit (counts/s)^2."""
        return np.maximum(model, 0.0) / self.exposure_time_s + self.background_rms**2

    def add_noise(self, model: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Poisson noise on `model * exposure_time_s` counts plus Gaussian background; counts/s."""
        counts = rng.poisson(np.maximum(model, 0.0) * self.exposure_time_s)
        background = rng.normal(0.0, self.background_rms, size=model.shape)
        return counts / self.exposure_time_s + background

    def snr(self, model: np.ndarray) -> tuple[float, float]:
        """(snr, peak_snr) of a noiseless image, as defined in `SNR_DEFINITION`."""
        var = self.variance(model)
        return float(np.sqrt(np.sum(model**2 / var))), float(np.max(model / np.sqrt(var)))

    def signal_chi(self, model: np.ndarray, reference: np.ndarray) -> float:
        """Noise-weighted norm `sqrt(sum((model - reference)^2 / var(model)))` (dimensionless)."""
        return float(np.sqrt(np.sum((model - reference) ** 2 / self.variance(model))))
