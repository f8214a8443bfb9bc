"""Residuals against a smooth lens model, in units of the noise sigma, and the lens model of a
stack of images: read from its fit file, or fitted here (new images).

fit_residual    = (image - fitted smooth model) / sigma(fitted model)
oracle_residual = (image - true smooth model) / sigma(true smooth model)   (an upper bound)

sigma: `darklens.features.noise`. Where the model is right, both are white noise of unit
variance; substructure (which a smooth model cannot absorb) leaves structure along the arcs. The
oracle uses the simulator's own smooth model, which no real image has: it bounds what a perfect
smooth fit could show and is an upper bound, not a usable channel for real data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from darklens.features.noise import NoiseModel
from darklens.io.class_files import DataError
from darklens.io.fit_files import read_fit_file
from darklens.physics.light import SersicEllipse
from darklens.simulation.render import build_instrument

FIT_RESIDUAL_DEFINITION = (
    "fit_residual = (image - fitted smooth model) / sigma, the fitted model the fit file's /model "
    "(SIE + shear + Sersic source [+ lens light]), sigma = sqrt(background_rms^2 + "
    "max(fitted model, 0) / exposure_time_s)"
)
ORACLE_RESIDUAL_DEFINITION = (
    "oracle_residual = (image - true smooth model) / sigma, the true smooth model the simulator's "
    "noiseless image without substructure (/smooth_model), sigma = sqrt(background_rms^2 + "
    "max(true smooth model, 0) / exposure_time_s); an UPPER BOUND: it uses the truth, which real "
    "images do not have"
)
#: The macro-model parameters a lens model needs (lenstronomy names, fit file /params).
MACRO_NAMES = ("theta_E", "e1", "e2", "lens_center_x", "lens_center_y", "gamma1", "gamma2")


def normalised_residual(images, model, noise: NoiseModel) -> np.ndarray:
    """(images - model) / noise.sigma(model), float32 (N, H, W); dimensionless (units of sigma).
    images, model: (N, H, W) [counts/s per pixel]."""
    images = np.asarray(images, dtype=np.float64)
    model = np.asarray(model, dtype=np.float64)
    if images.shape != model.shape:
        raise ValueError(f"images {images.shape} and model {model.shape} differ in shape")
    return ((images - model) / noise.sigma(model)).astype(np.float32)


def fit_residual(images, fitted_model, noise: NoiseModel) -> np.ndarray:
    """FIT_RESIDUAL_DEFINITION: the residual against the fitted smooth model."""
    return normalised_residual(images, fitted_model, noise)


def oracle_residual(images, smooth_model, noise: NoiseModel) -> np.ndarray:
    """ORACLE_RESIDUAL_DEFINITION: the residual against the true smooth model (upper bound)."""
    return normalised_residual(images, smooth_model, noise)


@dataclass
class LensModel:
    """The fitted smooth lens model of N images.

    params: {name: (N,) float64} in lenstronomy names and units (fit file /params; MACRO_NAMES
        at least). model: (N, H, W) noiseless best-fit images [counts/s per pixel].
    noise: the images' noise model. instrument: the instrument section (pixel_scale_arcsec,
        supersampling, PSF, ...). source: where it came from (a fit file, or 'fitted here').
    """

    params: dict
    model: np.ndarray
    noise: NoiseModel
    instrument: dict
    source: str = "fitted here"

    def __post_init__(self) -> None:
        n = len(self.model)
        missing = [name for name in MACRO_NAMES if name not in self.params]
        if missing:
            raise DataError(f"{self.source}: the lens model has no {', '.join(missing)}")
        wrong = [k for k, v in self.params.items() if np.shape(v) != (n,)]
        if wrong:
            raise DataError(f"{self.source}: params {wrong} are not one value per image ({n})")
        bad = [k for k, v in self.params.items() if not np.all(np.isfinite(v))]
        if bad or not np.all(np.isfinite(self.model)):
            raise DataError(f"{self.source}: the lens model holds NaN or inf ({bad or 'model'})")

    @property
    def pixel_scale_arcsec(self) -> float:
        return float(self.instrument["pixel_scale_arcsec"])

    def image_params(self, k: int) -> dict:
        """The parameters of image k as floats."""
        return {name: float(values[k]) for name, values in self.params.items()}

    def lens_light(self) -> np.ndarray | None:
        """The fitted lens light (N, H, W) [counts/s per pixel], rendered as the fitter's model
        (a Sersic at the lens centre, supersampled, binned, PSF-convolved); None without."""
        if "lens_light_amp" not in self.params:
            return None
        instrument = build_instrument(self.instrument)
        x, y = instrument.ray_grid()
        out = np.empty(self.model.shape, dtype=np.float64)
        for k in range(len(out)):
            p = self.image_params(k)
            light = SersicEllipse(
                amp=p["lens_light_amp"],
                R_sersic=p["lens_light_R_sersic"],
                n_sersic=p["lens_light_n_sersic"],
                e1=p["lens_light_e1"],
                e2=p["lens_light_e2"],
                center_x=p["lens_center_x"],
                center_y=p["lens_center_y"],
            )
            out[k] = instrument.convolve(instrument.bin(light.surface_brightness(x, y)))
        return out


def lens_model_from_fit_file(path, n_images: int, image_index=None) -> LensModel:
    """The lens model of a class file's images from its fit file; DataError (one line) when the
    fit file does not belong to those images (count, image_index) or has no instrument."""
    fit = read_fit_file(path)
    model = np.asarray(fit["model"], dtype=np.float32)
    if len(model) != n_images:
        raise DataError(f"{path}: fits {len(model)} images, the class file holds {n_images}")
    if image_index is not None and not np.array_equal(fit["image_index"], image_index):
        raise DataError(f"{path}: its image_index differs from the class file's")
    stored = fit["attrs"].get("instrument")
    if stored is None:
        raise DataError(f"{path}: no 'instrument' attribute (the noise model is unknown)")
    section = json.loads(stored) if isinstance(stored, str | bytes) else dict(stored)
    return LensModel(
        params={k: np.asarray(v, dtype=np.float64) for k, v in fit["params"].items()},
        model=model,
        noise=NoiseModel.from_section(section, path),
        instrument=section,
        source=str(path),
    )


def fit_lens_model(
    images, instrument: dict, fitting: dict | None = None, lens_light: bool = False, log=None
) -> LensModel:
    """Fit the smooth lens model (darklens.fitting: SIE + shear + Sersic source [+ lens light])
    to new images (N, H, W) [counts/s per pixel] taken with `instrument` (a config instrument
    section: n_pix, pixel_scale_arcsec, supersampling, psf_fwhm_arcsec or psf_kernel_file,
    exposure_time_s, background_rms); `fitting`: the config's fitting section (defaults
    otherwise). Returns the LensModel."""
    from darklens.fitting.files import resolve_device
    from darklens.fitting.model import SmoothLensModel
    from darklens.fitting.solver import FitSettings, fit_images

    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[1:] != (instrument["n_pix"],) * 2:
        raise ValueError(
            f"images of shape {images.shape} do not match the instrument's "
            f"{instrument['n_pix']}x{instrument['n_pix']} pixels"
        )
    fitting = dict(fitting or {})
    settings = FitSettings.from_config(fitting)
    device = resolve_device(fitting.get("device", "auto"))
    model = SmoothLensModel(
        build_instrument(instrument), bool(lens_light), device=device, compile=settings.compile
    )
    fit = fit_images(model, images, settings, log=log)
    params = dict(zip(model.names, fit["params"].T, strict=True))
    params |= dict(zip(model.amplitude_names, fit["amplitudes"].T, strict=True))
    return LensModel(
        params=params,
        model=np.asarray(fit["model"], dtype=np.float32),
        noise=NoiseModel.from_section(instrument),
        instrument=dict(instrument),
    )
