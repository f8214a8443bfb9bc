"""The fit of a class file: `data/{class}.h5` in, `data/fits/{class}.h5` out.

The class file is read through `darklens.io.class_files` (which refuses images with NaN or inf);
its instrument (pixels, supersampling, PSF, noise) and whether it has lens light come from its
`resolved_config` attribute, the settings the simulator used. The fit file (its layout:
`darklens.io.fit_files`) is written atomically; a fit that fails or does not converge keeps its
values and says so in /converged and /reason.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from darklens.fitting.model import SmoothLensModel
from darklens.fitting.solver import FitSettings, fit_images
from darklens.io.class_files import DataError, read_image_file
from darklens.io.fit_files import write_fit_file
from darklens.physics.instrument import Instrument, gaussian_psf_kernel, load_psf_kernel

CHI2_DEFINITION = (
    "chi2 = sum_pixels((image - model)^2 / var), var = max(model, 0) / exposure_time_s + "
    "background_rms^2 [(counts/s)^2] (lenstronomy's ImageData.log_likelihood = -chi2 / 2); "
    "chi2_reduced = chi2 / (pixels - non-linear parameters - amplitudes)"
)


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when present, else the CPU; 'cpu' or 'cuda' as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("fitting.device is 'cuda' but no CUDA device is available")
    return torch.device(device)


def instrument_of(path, attrs: dict) -> tuple[Instrument, bool, dict]:
    """(instrument, lens light enabled, the instrument section) of a class file's attributes."""
    if "resolved_config" not in attrs:
        raise DataError(
            f"{path}: no 'resolved_config' attribute (not a simulated class file?): the fit "
            "needs the instrument the images were made with"
        )
    try:
        simulation = json.loads(attrs["resolved_config"])["simulation"]
        section = simulation["instrument"]
        kernel = None
        if section.get("psf_kernel_file"):
            kernel = load_psf_kernel(section["psf_kernel_file"])
        elif section.get("psf_fwhm_arcsec"):
            kernel = gaussian_psf_kernel(section["psf_fwhm_arcsec"], section["pixel_scale_arcsec"])
        instrument = Instrument(
            n_pix=int(section["n_pix"]),
            pixel_scale_arcsec=float(section["pixel_scale_arcsec"]),
            supersampling=int(section["supersampling"]),
            exposure_time_s=float(section["exposure_time_s"]),
            background_rms=float(section["background_rms"]),
            psf_kernel=kernel,
        )
        lens_light = bool(simulation.get("lens_light", {}).get("enabled", False))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable resolved_config attribute ({exc!r})") from None
    return instrument, lens_light, section


def units(model: SmoothLensModel) -> dict:
    """Unit of every dataset of a fit file."""
    out = {name: "arcsec" for name in model.names if "center" in name or "R_sersic" in name}
    out["theta_E"] = "arcsec"
    for name in model.names:
        out.setdefault(name, "dimensionless")
    for name in model.amplitude_names:
        out[name] = "counts/s/arcsec^2"
    out.update(chi2="dimensionless", chi2_reduced="dimensionless", model="counts/s per pixel")
    return out


def fit_class_file(input_path, output_path, fitting: dict, log=None) -> dict:
    """Fit every image of a class file and write the fit file; returns a summary
    {n_images, n_converged, median_chi2_reduced, device}."""
    data = read_image_file(input_path)
    attrs = data["attrs"]
    instrument, lens_light, section = instrument_of(input_path, attrs)
    images = data["images"]
    if images.shape[1] != instrument.n_pix:
        raise DataError(
            f"{input_path}: images are {images.shape[1]} pixels wide, the instrument "
            f"{instrument.n_pix}"
        )
    settings = FitSettings.from_config(fitting)
    device = resolve_device(fitting.get("device", "auto"))
    model = SmoothLensModel(instrument, lens_light, device=device, compile=settings.compile)
    fit = fit_images(model, images, settings, log=log)
    params = dict(zip(model.names, fit["params"].T, strict=True))
    params |= dict(zip(model.amplitude_names, fit["amplitudes"].T, strict=True))
    write_fit_file(
        output_path,
        params,
        fit,
        data["image_index"],
        {
            "class_name": str(attrs.get("class_name", "")),
            "input": str(input_path),
            "input_seed": int(attrs.get("seed", -1)),
            "fitting": fitting,
            "device": str(device),
            "instrument": section,
            "lens_light": lens_light,
            "units": units(model),
            "chi2_definition": CHI2_DEFINITION,
        },
    )
    return {
        "n_images": len(images),
        "n_converged": int(fit["converged"].sum()),
        "median_chi2_reduced": float(np.median(fit["chi2_reduced"])),
        "device": str(device),
    }
