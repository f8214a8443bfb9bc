"""HDF5 files of darklens: shards, merged classes and residual features.

Layout of an image file (a shard or a merged class):
  /images               float32 (N, H, W), chunked per image, gzip-compressed
  /smooth_model         float32 (N, H, W), simulated files only: each image's noiseless smooth
                        model (no substructure, no noise) [counts/s per pixel]; for no_sub the
                        noiseless image. Absent from imported classes and older files
  /image_index          int64 (N,): index of each image within its class
  /params/<name>        (N,) per-image parameters (units in the attribute `units`)
  /subhalos/<name>      flat per-subhalo arrays; /subhalos/offset (N+1,) int64 delimits image k's
                        subhalos as offset[k]:offset[k+1]
  /compensation_disks/<name>  flat per-disk arrays of the mass compensation (kappa,
                        radius_arcsec; simulated files), delimited per image by
                        /compensation_disks/offset (N+1,) int64 like /subhalos
  attrs: class_name, seed, darklens_version, config (JSON of the config section used),
         units (JSON), snr_definition, n_images
A features file holds one float32 (N, H, W) dataset per input plane (/residual always; the
lens-model planes where they could be derived: darklens.features), each with the attributes
`definition` and `unit`, plus the provenance attributes (source files, features config).
Readers validate what they open and raise `DataError` with one line naming the file and problem.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from darklens import __version__
from darklens.io.atomic import atomic_path


class DataError(ValueError):
    """An input file is missing, corrupt, mis-shaped or holds non-finite values."""


IMAGE_CHUNK = 16  # images per HDF5 chunk of every image stack darklens writes
SMOOTH_MODEL = "smooth_model"  # the true noiseless smooth model of simulated images


def create_image_dataset(handle: h5py.File, name: str, shape, data=None) -> h5py.Dataset:
    """An (N, H, W) float32 image stack as every darklens file stores it: chunks of IMAGE_CHUNK
    images, gzip level 4 with shuffle; written from `data`, or filled later (chunk by chunk)."""
    n, height, width = shape
    return handle.create_dataset(
        name,
        shape=(n, height, width),
        dtype=np.float32,
        data=None if data is None else np.asarray(data, dtype=np.float32),
        chunks=(min(max(n, 1), IMAGE_CHUNK), height, width),
        compression="gzip",
        compression_opts=4,
        shuffle=True,
    )


def write_image_file(path, data: dict, attrs: dict) -> None:
    """Write images, per-image params and subhalos
    (as `simulation.shards.simulate_shard` returns them)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        create_image_dataset(handle, "images", data["images"].shape, data["images"])
        if data.get("smooth_model") is not None:
            smooth = data["smooth_model"]
            create_image_dataset(handle, SMOOTH_MODEL, smooth.shape, smooth)
        handle.create_dataset("image_index", data=data["image_index"])
        params = handle.create_group("params")
        for key, values in data["params"].items():
            params.create_dataset(key, data=np.asarray(values))
        subhalos = handle.create_group("subhalos")
        for key, values in data["subhalos"].items():
            subhalos.create_dataset(key, data=values)
        subhalos.create_dataset("offset", data=data["subhalo_offsets"])
        if data.get("compensation_disks") is not None:
            disks = handle.create_group("compensation_disks")
            for key, values in data["compensation_disks"].items():
                disks.create_dataset(key, data=values)
            disks.create_dataset("offset", data=data["compensation_offsets"])
        for key, value in attrs.items():
            handle.attrs[key] = value if not isinstance(value, dict | list) else json.dumps(value)
        handle.attrs["darklens_version"] = __version__
        handle.attrs["n_images"] = len(data["images"])


def _open(path) -> h5py.File:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None


def _checked_stack(path, handle: h5py.File, name: str, count: int | None = None) -> np.ndarray:
    """The validated (N, H, H) dataset `name`, or its first `count` images."""
    if name not in handle:
        raise DataError(f"{path}: no '/{name}' dataset")
    dataset = handle[name]
    if dataset.ndim != 3 or dataset.shape[1] != dataset.shape[2] or dataset.shape[0] == 0:
        raise DataError(
            f"{path}: '/{name}' has shape {dataset.shape}, expected (N, H, H) with N > 0"
        )
    try:
        stack = dataset[()] if count is None else dataset[:count]
    except OSError as exc:
        raise DataError(f"{path}: '/{name}' cannot be read ({exc})") from None
    bad = ~np.isfinite(stack).reshape(len(stack), -1).all(axis=1)
    if bad.any():
        raise DataError(
            f"{path}: {int(bad.sum())} image(s) in '/{name}' hold NaN or inf "
            f"(first at index {int(np.flatnonzero(bad)[0])})"
        )
    return stack.astype(np.float32, copy=False)


def read_image_file(path, expected_class: str | None = None) -> dict:
    """Read and validate an image file; returns images, image_index, params, subhalos, attrs."""
    with _open(path) as handle:
        images = _checked_stack(path, handle, "images")
        attrs = dict(handle.attrs)
        if expected_class is not None and attrs.get("class_name") != expected_class:
            raise DataError(
                f"{path}: holds class {attrs.get('class_name')!r}, expected {expected_class!r}"
            )
        n = len(images)
        params = {key: handle["params"][key][()] for key in handle.get("params", {})}
        for key, values in params.items():
            if len(values) != n:
                raise DataError(f"{path}: params/{key} has {len(values)} rows for {n} images")
        subhalos = {key: handle["subhalos"][key][()] for key in handle.get("subhalos", {})}
        disks = {
            k: handle["compensation_disks"][k][()] for k in handle.get("compensation_disks", {})
        }
        image_index = handle["image_index"][()] if "image_index" in handle else np.arange(n)
        smooth = _checked_stack(path, handle, SMOOTH_MODEL) if SMOOTH_MODEL in handle else None
        if smooth is not None and smooth.shape != images.shape:
            raise DataError(f"{path}: '/{SMOOTH_MODEL}' has shape {smooth.shape}, images {n}")
    return {
        "images": images,
        "smooth_model": smooth,
        "image_index": image_index,
        "params": params,
        "subhalos": subhalos,
        "compensation_disks": disks or None,
        "attrs": attrs,
    }


def read_images(path, expected_class: str | None = None, count: int | None = None) -> np.ndarray:
    """Only the validated (N, H, W) float32 images of an image file (the first `count` if given)."""
    with _open(path) as handle:
        if expected_class is not None and handle.attrs.get("class_name") != expected_class:
            raise DataError(
                f"{path}: holds class {handle.attrs.get('class_name')!r}, "
                f"expected {expected_class!r}"
            )
        return _checked_stack(path, handle, "images", count)


def read_class_name(path) -> str:
    """The class an image file holds (its attribute `class_name`)."""
    with _open(path) as handle:
        name = handle.attrs.get("class_name")
    if name is None:
        raise DataError(f"{path}: no class_name attribute")
    return str(name)


def read_params(path, names=None, count: int | None = None) -> dict[str, np.ndarray]:
    """Per-image parameters `/params/<name>` of an image file without its images: all of them,
    or those in `names`; the first `count` rows if given. Each must be one value per image."""
    with _open(path) as handle:
        group = handle.get("params")
        if not isinstance(group, h5py.Group):
            raise DataError(f"{path}: no '/params' group")
        names = list(group) if names is None else list(names)
        missing = [name for name in names if name not in group]
        if missing:
            raise DataError(f"{path}: no parameter(s) {', '.join(missing)} in '/params'")
        shapes = {name: group[name].shape for name in names}
        if "images" in handle:
            n = handle["images"].shape[0]
        else:  # a file of parameters only: the first parameter sets the count
            n = next((shape[0] for shape in shapes.values() if shape), 0)
        wrong = {name: shape for name, shape in shapes.items() if shape != (n,)}
        if wrong:
            raise DataError(f"{path}: params {wrong} are not one value for each of {n} images")
        stop = slice(None) if count is None else slice(count)
        return {name: group[name][stop] for name in names}


def read_pixel_scale(path) -> float | None:
    """The pixel scale [arcsec] of a simulated class file, from its stored (preset-resolved)
    config; None for a file without one (imported images)."""
    with _open(path) as handle:
        stored = handle.attrs.get("resolved_config", handle.attrs.get("config"))
    try:
        config = json.loads(stored) if isinstance(stored, str | bytes) else {}
        scale = config.get("simulation", {}).get("instrument", {}).get("pixel_scale_arcsec")
    except (ValueError, AttributeError):
        return None
    return float(scale) if scale else None


def image_count_and_size(path, expected_class: str | None = None) -> tuple[int, int]:
    """(N, H) of a class file's /images, without reading it; checks its class name if given."""
    try:
        with h5py.File(path, "r") as handle:
            stored_class = handle.attrs.get("class_name")
            n, height, width = handle["images"].shape
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a darklens class file ({exc})") from None
    if expected_class is not None and stored_class != expected_class:
        raise DataError(f"{path}: holds class {stored_class!r}, expected {expected_class!r}")
    return int(n), int(height)


def class_counts(class_files: dict[str, str]) -> dict[str, int]:
    """{class: number of images} of class files, read from their /images shapes."""
    return {name: image_count_and_size(path)[0] for name, path in class_files.items()}


def add_source_files(path, names) -> None:
    """Store the names of the files an imported class was read from as /source_files."""
    with h5py.File(path, "r+") as handle:
        handle.create_dataset("source_files", data=np.array(names, dtype=h5py.string_dtype()))


def merge_shards(shard_paths: list, out_path, class_name: str) -> int:
    """Concatenate the shards of one class (in the given order) into one file; returns N."""
    shards = [read_image_file(p, expected_class=class_name) for p in shard_paths]
    shapes = {s["images"].shape[1:] for s in shards}
    if len(shapes) != 1:
        raise DataError(f"shards of {class_name} have different image shapes: {sorted(shapes)}")
    keys = set(shards[0]["params"])
    for path, shard in zip(shard_paths, shards, strict=True):
        if set(shard["params"]) != keys:
            raise DataError(f"{path}: parameters differ from those of {shard_paths[0]}")
    image_index = np.concatenate([s["image_index"] for s in shards])
    if np.any(np.diff(image_index) != 1) or image_index[0] != 0:
        raise DataError(f"shards of {class_name} do not hold images 0..N-1 in order")
    offsets, total = [np.zeros(1, dtype=np.int64)], 0
    for shard in shards:
        offsets.append(shard["subhalos"]["offset"][1:] + total)
        total += int(shard["subhalos"]["offset"][-1])
    smooth = [s["smooth_model"] for s in shards]
    disks = [s["compensation_disks"] for s in shards]
    disk_offsets = np.cumsum(
        [0] + [n for d in disks if d is not None for n in np.diff(d["offset"])], dtype=np.int64
    )
    merged = {
        "images": np.concatenate([s["images"] for s in shards]),
        # the true smooth models travel only when every shard has them
        "smooth_model": None if any(m is None for m in smooth) else np.concatenate(smooth),
        "image_index": image_index,
        "params": {k: np.concatenate([s["params"][k] for s in shards]) for k in keys},
        "subhalos": {
            k: np.concatenate([s["subhalos"][k] for s in shards])
            for k in shards[0]["subhalos"]
            if k != "offset"
        },
        "subhalo_offsets": np.concatenate(offsets),
        # the compensation disks travel only when every shard has them
        "compensation_disks": None
        if any(d is None for d in disks)
        else {k: np.concatenate([d[k] for d in disks]) for k in disks[0] if k != "offset"},
        "compensation_offsets": disk_offsets,
    }
    attrs = {k: v for k, v in shards[0]["attrs"].items() if k not in ("shard", "n_images")}
    attrs["shards"] = json.dumps([str(p) for p in shard_paths])
    write_image_file(out_path, merged, attrs)
    return len(merged["images"])


def has_smooth_model(path) -> bool:
    """Whether an image file stores the true smooth models (/smooth_model)."""
    with _open(path) as handle:
        return SMOOTH_MODEL in handle


def read_smooth_model(path, count: int | None = None) -> np.ndarray:
    """The validated true smooth models (N, H, W) float32 [counts/s per pixel] of a simulated
    class file (its first `count` if given); DataError where the file has none."""
    with _open(path) as handle:
        if SMOOTH_MODEL not in handle:
            raise DataError(
                f"{path}: no '/{SMOOTH_MODEL}' (imported images, or simulated before darklens "
                "stored it): the true smooth model is unknown"
            )
        return _checked_stack(path, handle, SMOOTH_MODEL, count)


def read_instrument_section(path) -> dict | None:
    """The instrument section (n_pix, pixel_scale_arcsec, supersampling, PSF, exposure_time_s,
    background_rms) of a simulated class file's stored (preset-resolved) config; None for a file
    without one (imported images)."""
    with _open(path) as handle:
        stored = handle.attrs.get("resolved_config")
    if stored is None:
        return None
    try:
        section = json.loads(stored)["simulation"]["instrument"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable resolved_config attribute ({exc!r})") from None
    return dict(section)


def _attribute(value):
    return value if not isinstance(value, dict | list) else json.dumps(value)


@contextmanager
def features_writer(path, n: int, size: int, planes: dict, attrs: dict):
    """Create a features file atomically; yields `write(name, start, block)`, which stores rows
    start.. of plane `name` (float32, finite). `planes`: {name: {"definition", "unit"}} of the
    (N, size, size) datasets; `attrs`: provenance (dicts and lists stored as JSON). The file
    appears at `path` only when the block exits without an error."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        for name, meta in planes.items():
            dataset = create_image_dataset(handle, name, (n, size, size))
            for key, value in meta.items():
                dataset.attrs[key] = _attribute(value)
        for key, value in attrs.items():
            handle.attrs[key] = _attribute(value)
        handle.attrs["darklens_version"] = __version__
        handle.attrs["n_images"] = n
        handle.attrs["planes"] = json.dumps(list(planes))

        def write(name: str, start: int, block) -> None:
            block = np.asarray(block, dtype=np.float32)
            if not np.isfinite(block).all():
                raise DataError(f"{path}: plane {name} holds NaN or inf (rows from {start})")
            handle[name][start : start + len(block)] = block

        yield write


def write_features_file(path, planes, attrs: dict, plane_attrs: dict | None = None) -> None:
    """Write a features file: `planes` {name: (N, H, W)} (an array alone is the residual),
    `plane_attrs` {name: {"definition", "unit"}} and the provenance `attrs`."""
    if not isinstance(planes, dict):
        planes = {"residual": planes}
    shapes = {np.shape(plane) for plane in planes.values()}
    if len(shapes) != 1:
        raise DataError(f"{path}: feature planes of different shapes {sorted(shapes)}")
    n, size, _ = shapes.pop()
    meta = {name: dict((plane_attrs or {}).get(name, {})) for name in planes}
    with features_writer(path, n, size, meta, attrs) as write:
        for name, plane in planes.items():
            write(name, 0, plane)


def feature_names(path) -> list[str]:
    """The planes a features file holds."""
    with _open(path) as handle:
        return [name for name in handle if isinstance(handle[name], h5py.Dataset)]


def read_feature(
    path, name: str, n_expected: int | None = None, count: int | None = None
) -> np.ndarray:
    """Validated plane `name` (N, H, W) float32 of a features file (its first `count` images if
    given); `n_expected`: the number of images the file must hold."""
    with _open(path) as handle:
        if name not in handle:
            held = ", ".join(k for k in handle if isinstance(handle[k], h5py.Dataset)) or "none"
            raise DataError(f"{path}: no '{name}' plane in this features file (it holds: {held})")
        plane = _checked_stack(path, handle, name, count)
        n = handle[name].shape[0]
    if n_expected is not None and n != n_expected:
        raise DataError(f"{path}: {n} {name} images for {n_expected} images")
    return plane


def read_lens_model_settings(path) -> dict | None:
    """The `lens_model_settings` ({"instrument", "fitting", "lens_light"} of the fit) of a
    features file made from a fit file; None for one made without."""
    with _open(path) as handle:
        stored = handle.attrs.get("lens_model_settings")
    if stored is None:
        return None
    try:
        return json.loads(stored)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: unreadable lens_model_settings attribute ({exc!r})") from None


def read_feature_attrs(path, name: str) -> dict:
    """The attributes (definition, unit) of plane `name` of a features file."""
    with _open(path) as handle:
        if name not in handle:
            raise DataError(f"{path}: no '{name}' plane in this features file")
        return {key: str(value) for key, value in handle[name].attrs.items()}


def read_residual(path, n_expected: int | None = None, count: int | None = None) -> np.ndarray:
    """Validated residual channel of a features file (its first `count` images if given);
    `n_expected`: the number of images the file must hold."""
    return read_feature(path, "residual", n_expected, count)
