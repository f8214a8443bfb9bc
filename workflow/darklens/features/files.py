"""The features files of a class: `data/features/{kind}/{class}.h5`, the planes of one kind
(`channels.FEATURE_KINDS`: `residual` from the smoothing, `lens_model` from the fit file, `oracle`
from the class file's true smooth models), so that training reads them instead of recomputing
them each run, and a change reruns only the kind, and the models, that depend on it.

Planes (`darklens.features.channels.CHANNELS`; each dataset has the attributes `definition` and
`unit`): residual always; fit_residual, source_plane and source_residual when a fit file is
given; oracle_residual when the class file stores the true smooth models (/smooth_model:
simulated classes). Provenance attributes: source_file, fit_file, config (the features settings)
and planes. Written atomically (`darklens.io.class_files.features_writer`), plane by plane.
"""

from __future__ import annotations

import time

from darklens.features.channels import compute_plane, kind_planes, plane_attrs
from darklens.features.lens_model import lens_model_from_fit_file
from darklens.features.noise import noise_model_of_class_file
from darklens.io.class_files import (
    DataError,
    features_writer,
    has_smooth_model,
    read_image_file,
    read_smooth_model,
)
from darklens.io.fit_files import read_fit_settings


def derivable_planes(has_fit: bool, has_truth: bool) -> list[str]:
    """Every plane derivable (in this order) given a fit file and true models."""
    planes = ["residual"]
    if has_fit:
        planes += ["fit_residual", "source_plane", "source_residual"]
    if has_truth:
        planes.append("oracle_residual")
    return planes


def write_features(
    input_path, output_path, smoothing_sigma_px: float | None, fit_path=None, kind=None
) -> dict:
    """Write the features file of a class file (and its fit file, if given): the planes of one
    `kind` (`channels.FEATURE_KINDS`: residual, lens_model, oracle; DataError when what it needs
    is missing), or every derivable plane (kind None). Returns {"n_images", "planes",
    "seconds_per_image": {plane: s}}."""
    data = read_image_file(input_path)
    images, n = data["images"], len(data["images"])
    if kind == "lens_model" and fit_path is None:
        raise DataError(f"{input_path}: the lens_model features need its fit file (--fit)")
    lens_model = None
    if fit_path is not None and kind in (None, "lens_model"):
        lens_model = lens_model_from_fit_file(fit_path, n, data["image_index"])
    truth = has_smooth_model(input_path) and kind in (None, "oracle")
    if kind == "oracle" and not truth:
        raise DataError(f"{input_path}: no /smooth_model, so no oracle_residual (imported data?)")
    if kind == "residual" and smoothing_sigma_px is None:
        raise DataError("the residual features need --smoothing-sigma-px")
    smooth = read_smooth_model(input_path) if truth else None
    truth_noise = noise_model_of_class_file(input_path) if truth else None
    names = derivable_planes(lens_model is not None, truth)
    if kind is not None:
        names = [name for name in names if name in kind_planes(kind)]
    attrs = {
        "class_name": str(data["attrs"].get("class_name", "")),
        "source_file": str(input_path),
        "fit_file": "" if fit_path is None else str(fit_path),
        "kind": "all" if kind is None else kind,
        "config": {"features": {"smoothing_sigma_px": smoothing_sigma_px}},
        "units": {name: plane_attrs(name)["unit"] for name in names},
    }
    settings = read_fit_settings(fit_path) if fit_path is not None else None
    if settings is not None:  # how new images must be fitted to get the same planes (predict)
        attrs["lens_model_settings"] = settings
    timing, cache = {}, {}
    with features_writer(
        output_path, n, images.shape[1], {name: plane_attrs(name) for name in names}, attrs
    ) as write:
        for name in names:
            start = time.perf_counter()
            try:
                plane = compute_plane(
                    name, images, smoothing_sigma_px, lens_model, smooth, truth_noise, cache
                )
            except ValueError as exc:
                raise DataError(f"{input_path}: {exc}") from None
            timing[name] = (time.perf_counter() - start) / n
            write(name, 0, plane)
            del plane
    return {"n_images": n, "planes": names, "seconds_per_image": timing}
