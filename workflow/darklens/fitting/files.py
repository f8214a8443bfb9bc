"""The fit of a class file: `data/{class}.h5` in, `data/fits/{class}.h5` out.

The class file is read through `darklens.io.class_files` (which refuses images with NaN or inf);
its instrument (pixels, supersampling, PSF, noise) and whether it has lens light come from its
`resolved_config` attribute, the settings the simulator used. The fit file (its layout:
`darklens.io.fit_files`) is written atomically; a fit that fails or does not converge keeps its
values and says so in /converged and /reason.

`substructure_chi_refit` (per image): what a smooth refit cannot absorb of the substructure. Each
image with substructure is re-simulated noiselessly (`darklens.simulation.shards.resimulate_image`)
and fitted by the same smooth model, starting from the fit of its noisy version; then
`chi = sqrt(sum((model_with_substructure - best_smooth_fit)^2 / var))`, var the simulator's
(`Instrument.variance` of the image with substructure), as the simulator's `substructure_chi`
with the true smooth image. 0 where there is no substructure (no_sub; an empty draw).
"""

from __future__ import annotations

import json

import numpy as np
import torch

from darklens.fitting.model import SmoothLensModel
from darklens.fitting.solver import FitSettings, fit_images, refit_images
from darklens.io.class_files import DataError, read_image_file
from darklens.io.fit_files import write_fit_file
from darklens.physics.instrument import Instrument, gaussian_psf_kernel, load_psf_kernel
from darklens.simulation.shards import resimulate_image

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
    out["substructure_chi_refit"] = "dimensionless"
    return out


SUBSTRUCTURE_CHI_REFIT_DEFINITION = (
    "substructure_chi_refit = sqrt(sum_pixels((model_with_substructure - best_smooth_fit)^2 / "
    "var)), var = max(model_with_substructure, 0) / exposure_time_s + background_rms^2: the "
    "noiseless image with substructure (re-simulated) fitted by the smooth model, starting from "
    "the fit of the noisy image; 0 without substructure"
)

#: Relative tolerance of a re-simulated image's substructure_chi against the stored one (the
#: class file must be re-simulated exactly; float differences between machines stay far below).
RESIMULATION_RTOL = 1e-4


def _true_parameters(model: SmoothLensModel, image) -> np.ndarray:
    """The fitter's parameter vector (P,) of a simulated image's drawn smooth model."""
    record, light = image.record, image.params.lens_light
    values = [record[name] for name in model.names if not name.startswith("lens_light_")]
    if model.lens_light:
        values += [light[k] for k in ("R_sersic", "n_sersic", "e1", "e2")]
    return np.asarray(values, dtype=np.float64)


def substructure_chi_refit(
    path,
    model: SmoothLensModel,
    data: dict,
    settings: FitSettings,
    noisy_params: np.ndarray,
    log=None,
) -> tuple[np.ndarray, dict]:
    """Per image of a class file (`read_image_file`'s dict), the substructure signal a smooth
    refit leaves (SUBSTRUCTURE_CHI_REFIT_DEFINITION), and a summary {n_refitted,
    n_refit_converged, n_refit_from_truth}.

    Images whose stored `substructure_chi` is 0 (no substructure) get 0 without a fit; the
    others are re-simulated and refitted from `noisy_params` (N, P), their noisy fits. Where
    that refit ends above the stored `substructure_chi` (the chi of the true smooth model: the
    noisy fit sat in a local minimum), the image is refitted again from its true smooth
    parameters and the better of the two kept."""
    attrs, n_images = data["attrs"], len(data["images"])
    stored = data["params"].get("substructure_chi", np.zeros(n_images))
    chi = np.zeros(n_images)
    rows = np.flatnonzero(stored > 0)
    if str(attrs.get("class_name", "")) == "no_sub" or len(rows) == 0:
        return chi, {"n_refitted": 0, "n_refit_converged": 0, "n_refit_from_truth": 0}
    truth = np.empty((len(rows), *data["images"].shape[1:]))
    true_params = np.empty((len(rows), model.n_params))
    for j, row in enumerate(rows):
        image = resimulate_image(attrs, int(data["image_index"][row]))
        expected = float(stored[row])
        if not np.isclose(image.record["substructure_chi"], expected, rtol=RESIMULATION_RTOL):
            raise DataError(
                f"{path}: image {int(data['image_index'][row])} does not re-simulate from the "
                f"file's attributes (substructure_chi {image.record['substructure_chi']:.6g}, "
                f"stored {expected:.6g}): written by another darklens version?"
            )
        truth[j] = image.model
        true_params[j] = _true_parameters(model, image)
    variance = np.maximum(truth, 0.0) / model.instrument.exposure_time_s
    variance += model.instrument.background_rms**2

    def chi_of(fitted: np.ndarray, which) -> np.ndarray:
        return np.sqrt((((truth[which] - fitted) ** 2) / variance[which]).sum(axis=(1, 2)))

    refit = refit_images(model, truth, settings, noisy_params[rows], log=log)
    values, converged = chi_of(refit["model"], slice(None)), refit["converged"]
    worse = np.flatnonzero(values > stored[rows])
    if len(worse):
        again = refit_images(model, truth[worse], settings, true_params[worse])
        better = chi_of(again["model"], worse)
        keep = better < values[worse]
        values[worse[keep]] = better[keep]
        converged[worse[keep]] = again["converged"][keep]
    chi[rows] = values
    summary = {
        "n_refitted": len(rows),
        "n_refit_converged": int(converged.sum()),
        "n_refit_from_truth": len(worse),
    }
    if log is not None:
        log(
            f"substructure_chi_refit: {len(rows)} images refitted, {summary['n_refit_converged']} "
            f"converged, {len(worse)} refitted again from the true smooth parameters"
        )
    return chi, summary


def fit_class_file(input_path, output_path, fitting: dict, log=None) -> dict:
    """Fit every image of a class file (and refit the noiseless images with substructure:
    `substructure_chi_refit`) and write the fit file; returns a summary {n_images, n_converged,
    median_chi2_reduced, median_substructure_chi_refit, n_refitted, n_refit_converged,
    device}."""
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
    fit["substructure_chi_refit"], refit_summary = substructure_chi_refit(
        input_path, model, data, settings, fit["params"], log=log
    )
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
            "substructure_chi_refit_definition": SUBSTRUCTURE_CHI_REFIT_DEFINITION,
        },
    )
    return {
        "n_images": len(images),
        "n_converged": int(fit["converged"].sum()),
        "median_chi2_reduced": float(np.median(fit["chi2_reduced"])),
        "median_substructure_chi_refit": float(np.median(fit["substructure_chi_refit"])),
        **refit_summary,
        "device": str(device),
    }
