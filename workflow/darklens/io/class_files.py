"""HDF5 files of darklens: shards, merged classes and residual features.

Layout of an image file (a shard or a merged class):
  /images               float32 (N, H, W), chunked per image, gzip-compressed
  /image_index          int64 (N,): index of each image within its class
  /params/<name>        (N,) per-image parameters (units in the attribute `units`)
  /subhalos/<name>      flat per-subhalo arrays; /subhalos/offset (N+1,) int64 delimits image k's
                        subhalos as offset[k]:offset[k+1]
  attrs: class_name, seed, darklens_version, config (JSON of the config section used),
         units (JSON), snr_definition, n_images
A features file holds /residual float32 (N, H, W) and the features config.
Readers validate what they open and raise `DataError` with one line naming the file and problem.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from darklens import __version__
from darklens.io.atomic import atomic_path


class DataError(ValueError):
    """An input file is missing, corrupt, mis-shaped or holds non-finite values."""


IMAGE_CHUNK = 16  # images per HDF5 chunk of every image stack darklens writes


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
        handle.create_dataset("image_index", data=data["image_index"])
        params = handle.create_group("params")
        for key, values in data["params"].items():
            params.create_dataset(key, data=np.asarray(values))
        subhalos = handle.create_group("subhalos")
        for key, values in data["subhalos"].items():
            subhalos.create_dataset(key, data=values)
        subhalos.create_dataset("offset", data=data["subhalo_offsets"])
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
        image_index = handle["image_index"][()] if "image_index" in handle else np.arange(n)
    return {
        "images": images,
        "image_index": image_index,
        "params": params,
        "subhalos": subhalos,
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
    merged = {
        "images": np.concatenate([s["images"] for s in shards]),
        "image_index": image_index,
        "params": {k: np.concatenate([s["params"][k] for s in shards]) for k in keys},
        "subhalos": {
            k: np.concatenate([s["subhalos"][k] for s in shards])
            for k in shards[0]["subhalos"]
            if k != "offset"
        },
        "subhalo_offsets": np.concatenate(offsets),
    }
    attrs = {k: v for k, v in shards[0]["attrs"].items() if k not in ("shard", "n_images")}
    attrs["shards"] = json.dumps([str(p) for p in shard_paths])
    write_image_file(out_path, merged, attrs)
    return len(merged["images"])


def write_features_file(path, residual: np.ndarray, attrs: dict) -> None:
    """Write the residual channel (N, H, W) float32 with provenance attributes."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        create_image_dataset(handle, "residual", residual.shape, residual)
        for key, value in attrs.items():
            handle.attrs[key] = value if not isinstance(value, dict | list) else json.dumps(value)
        handle.attrs["darklens_version"] = __version__
        handle.attrs["n_images"] = len(residual)


def read_residual(path, n_expected: int | None = None, count: int | None = None) -> np.ndarray:
    """Validated residual channel of a features file (its first `count` images if given);
    `n_expected`: the number of images the file must hold."""
    with _open(path) as handle:
        residual = _checked_stack(path, handle, "residual", count)
        n = handle["residual"].shape[0]
    if n_expected is not None and n != n_expected:
        raise DataError(f"{path}: {n} residual images for {n_expected} images")
    return residual
