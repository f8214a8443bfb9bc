"""The fit file of a class: `data/fits/{class}.h5`, the smooth-lens fit of every image.

  /params/<name>    float64 (N,) fitted values, lenstronomy names and units, named as the class
                    file's /params: theta_E, e1, e2, lens_center_x, lens_center_y, gamma1, gamma2,
                    source_amp, source_R_sersic, source_n_sersic, source_e1, source_e2,
                    source_center_x, source_center_y (+ lens_light_amp, lens_light_R_sersic,
                    lens_light_n_sersic, lens_light_e1, lens_light_e2)
  /chi2, /chi2_reduced  float64 (N,): chi^2 and chi^2 / (pixels - free parameters)
  /substructure_chi_refit  float64 (N,): the chi of the noiseless image with substructure
                    against its best smooth fit (what a smooth refit cannot absorb; 0 without
                    substructure); absent from files written before it existed
  /model            float32 (N, H, W): the noiseless best-fit images [counts/s per pixel]
  /converged        bool (N,); /reason  str (N,): '' when converged, else why not
  /iterations, /start, /image_index   int64 (N,)
  attrs: class_name, input, input_seed, darklens_version, fitting (JSON of the settings), device,
         instrument (JSON), lens_light, units (JSON), chi2_definition,
         substructure_chi_refit_definition, n_images, n_converged
A fit that fails or does not converge keeps its values and says so in /converged and /reason.
"""

from __future__ import annotations

import json

import h5py
import numpy as np

from darklens import __version__
from darklens.io.atomic import atomic_path
from darklens.io.class_files import DataError, create_image_dataset


def write_fit_file(path, params: dict, fit: dict, image_index, attrs: dict) -> None:
    """Write a fit atomically: `params` {name: (N,) values}; `fit` holds chi2, chi2_reduced,
    model (N, H, W), converged, reason, iterations and start (per image) and optionally
    substructure_chi_refit; `attrs` the provenance (their dicts and lists are stored as JSON)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        group = handle.create_group("params")
        for name, values in params.items():
            group.create_dataset(name, data=np.asarray(values, dtype=np.float64))
        handle.create_dataset("chi2", data=fit["chi2"].astype(np.float64))
        handle.create_dataset("chi2_reduced", data=fit["chi2_reduced"].astype(np.float64))
        if "substructure_chi_refit" in fit:
            refit = np.asarray(fit["substructure_chi_refit"], dtype=np.float64)
            handle.create_dataset("substructure_chi_refit", data=refit)
        create_image_dataset(handle, "model", fit["model"].shape, fit["model"])
        handle.create_dataset("converged", data=fit["converged"].astype(bool))
        handle.create_dataset(
            "reason", data=np.array(fit["reason"], dtype=object), dtype=h5py.string_dtype()
        )
        for name in ("iterations", "start"):
            handle.create_dataset(name, data=fit[name].astype(np.int64))
        handle.create_dataset("image_index", data=np.asarray(image_index, dtype=np.int64))
        for key, value in attrs.items():
            handle.attrs[key] = value if not isinstance(value, dict | list) else json.dumps(value)
        handle.attrs["darklens_version"] = __version__
        handle.attrs["n_images"] = len(fit["model"])
        handle.attrs["n_converged"] = int(fit["converged"].sum())


def read_fit_file(path) -> dict:
    """A fit file as arrays: params {name: (N,)}, chi2, chi2_reduced, model, converged,
    reason (list of str), iterations, start, image_index, substructure_chi_refit (where
    written), attrs."""
    with _open(path) as handle:
        if "params" not in handle or "model" not in handle:
            raise DataError(f"{path}: not a darklens fit file (no /params or /model)")
        out = {key: handle[key][()] for key in handle if key != "params"}
        out["params"] = {key: handle["params"][key][()] for key in handle["params"]}
        out["reason"] = [r.decode() if isinstance(r, bytes) else str(r) for r in out["reason"]]
        out["attrs"] = dict(handle.attrs)
    return out


def _open(path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"{path}: not a readable fit file ({exc})") from None


def _per_image(path, dataset: str, missing: str) -> tuple[str, np.ndarray]:
    """(class name, one per-image dataset) of a fit file, without its images; `missing`: what
    the error line says when the dataset is absent."""
    with _open(path) as handle:
        if dataset not in handle:
            raise DataError(f"{path}: {missing}")
        name = handle.attrs.get("class_name", "")
        name = name.decode() if isinstance(name, bytes) else str(name)
        return name, handle[dataset][()]


def read_substructure_chi_refit(path) -> tuple[str, np.ndarray]:
    """(class name, /substructure_chi_refit) of a fit file, without its images."""
    missing = "no /substructure_chi_refit (written by an older darklens: refit it)"
    return _per_image(path, "substructure_chi_refit", missing)


def read_fit_chi2_reduced(path) -> tuple[str, np.ndarray]:
    """(class name, /chi2_reduced) of a fit file, without its images."""
    return _per_image(path, "chi2_reduced", "not a darklens fit file (no /chi2_reduced)")


def read_fit_settings(path) -> dict | None:
    """{"instrument", "fitting", "lens_light"} of a fit file's attributes: what a fit of new
    images needs to be made the same way (darklens predict); None for a file without them."""
    with _open(path) as handle:
        attrs = dict(handle.attrs)
    if "instrument" not in attrs and "fitting" not in attrs:
        return None
    try:
        return {
            "instrument": json.loads(attrs["instrument"]),
            "fitting": json.loads(attrs["fitting"]),
            "lens_light": bool(attrs.get("lens_light", False)),
        }
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: no readable instrument/fitting attributes ({exc!r})") from None
