"""Class probabilities of raw images from a checkpoint written by `training.train`.

The checkpoint carries everything needed: architecture, input channels and residual smoothing,
training-split normalisation, image size and class names, so callers pass plain (N, H, W) images.
`predict_file` (the `darklens predict` command) reads an HDF5 file, a `.npy` stack or a folder of
`.npy` images in chunks, checks every chunk, and writes one CSV row per image; any problem is a
ValueError of one line and no output is written.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import torch

from darklens.io.atomic import atomic_path
from darklens.io.class_files import DataError
from darklens.io.npy import image_files, is_npy_file, load_images, load_npy
from darklens.learning.channels import CHANNELS, build_channels
from darklens.learning.models import build_model
from darklens.learning.train import normaliser, predict_logits, resolve_device

REQUIRED_KEYS = (
    "model_state",
    "architecture",
    "in_channels",
    "channels",
    "class_names",
    "image_size",
    "norm_mean",
    "norm_std",
    "smoothing_sigma_px",
)
CHUNK_IMAGES = 1024  # images read, checked and predicted at a time


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint onto the CPU and check that its weights fit its architecture.

    ValueError (one line, naming the file) if missing, unreadable, lacking keys, or holding
    weights of another model.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt file
        raise ValueError(
            f"checkpoint {path} is not readable ({type(err).__name__}): corrupt, truncated, "
            "or not written by darklens.learning.train.train"
        ) from err
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint {path} is not a darklens checkpoint (not a dict)")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint {path} lacks required key(s): {', '.join(missing)}")
    _check_metadata(checkpoint, path)
    return checkpoint


def load_model(checkpoint: dict, device: torch.device) -> torch.nn.Module:
    """The checkpoint's model, weights loaded, on `device`, in eval mode."""
    model = build_model(
        checkpoint["architecture"],
        checkpoint["in_channels"],
        len(checkpoint["class_names"]),
        checkpoint["image_size"],
    )
    model.load_state_dict(checkpoint["model_state"])
    return model.to(device).eval()


def predict_images(
    checkpoint: dict, images, device: str = "auto", batch_size: int = 256
) -> np.ndarray:
    """Class probabilities (N, n_classes), float32, of raw (N, H, W) images (rows sum to 1).

    Columns follow checkpoint["class_names"]. The channels, residual smoothing and normalisation
    are the checkpoint's own.
    """
    torch_device = resolve_device(device)
    return _probabilities(checkpoint, load_model(checkpoint, torch_device), images, batch_size)


def predict_file(
    checkpoint_path,
    input_path,
    output_path,
    device: str = "auto",
    batch_size: int = 256,
    allow_pickle: bool = False,
    dataset: str | None = None,
) -> dict[str, int]:
    """Write `output_path`: one row per image of `input_path` (index, source, prob_<class>...,
    pred, pred_name). Returns {class name: number of images predicted as it}."""
    checkpoint = load_checkpoint(checkpoint_path)
    model = load_model(checkpoint, resolve_device(device))
    names = list(checkpoint["class_names"])
    size = checkpoint["image_size"]
    columns = ["index", "source", *[f"prob_{c}" for c in names], "pred", "pred_name"]
    counts = dict.fromkeys(names, 0)
    index = 0
    with atomic_path(output_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for sources, images in input_chunks(input_path, size, allow_pickle, dataset):
            _check_pixels(images, sources, index, input_path)
            probs = _probabilities(checkpoint, model, images, batch_size)
            for source, p in zip(sources, probs, strict=True):
                pred = int(p.argmax())
                writer.writerow([index, source, *[f"{v:.9g}" for v in p], pred, names[pred]])
                counts[names[pred]] += 1
                index += 1
        if index == 0:
            raise ValueError(f"input {input_path} holds no images")
    return counts


def input_chunks(
    path, size: int, allow_pickle: bool = False, dataset: str | None = None
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Chunks (sources, (n, size, size) images) of an input: a folder of .npy images, a .npy
    stack ((N, H, W), or one (H, W) image), or an HDF5 file (dataset `dataset`, else `images`,
    else its only image-like dataset). Raises DataError on anything else."""
    path = Path(path)
    if path.is_dir():
        files = image_files(path)
        for start in range(0, len(files), CHUNK_IMAGES):
            chunk = files[start : start + CHUNK_IMAGES]
            yield [p.name for p in chunk], load_images(chunk, allow_pickle, size)
        return
    if not path.is_file():
        raise DataError(f"input {path} does not exist")
    if is_npy_file(path):
        array = load_npy(path, allow_pickle, mmap=True)
        if array.dtype == object:
            yield [path.name], load_images([path], allow_pickle, size)
            return
        yield from _stack_chunks(array, path, size)
        return
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as handle:
            yield from _stack_chunks(_hdf5_dataset(handle, path, dataset), path, size)
        return
    raise DataError(
        f"input {path} is not an image file: expected an HDF5 file, a .npy stack or a folder "
        "of .npy images"
    )


def _stack_chunks(array, path: Path, size: int):
    """Chunks of an (N, H, W) or (H, W) array-like (numpy memmap or HDF5 dataset)."""
    if array.dtype.kind not in "iuf":
        raise DataError(f"input {path}: values of dtype {array.dtype} are not pixel values")
    shape = tuple(array.shape)
    single = len(shape) == 2
    if len(shape) not in (2, 3):
        raise DataError(
            f"input {path}: array of shape {shape}; expected (N, {size}, {size}) images or one "
            f"({size}, {size}) image"
        )
    if shape[-2:] != (size, size):
        raise DataError(
            f"input {path}: images are {shape[-2]}x{shape[-1]} px but the model expects "
            f"{size}x{size}"
        )
    if single:
        yield [path.name], np.asarray(array[()], dtype=np.float32)[None]
        return
    for start in range(0, shape[0], CHUNK_IMAGES):
        stop = min(start + CHUNK_IMAGES, shape[0])
        yield [path.name] * (stop - start), np.asarray(array[start:stop], dtype=np.float32)


def _hdf5_dataset(handle: h5py.File, path: Path, name: str | None):
    if name is None:
        found = []
        handle.visititems(
            lambda key, obj: (
                found.append(key) if isinstance(obj, h5py.Dataset) and obj.ndim in (2, 3) else None
            )
        )
        if "images" in found:
            name = "images"
        elif len(found) == 1:
            name = found[0]
        else:
            listed = ", ".join(found[:8]) or "none"
            raise DataError(
                f"input {path}: no '/images' dataset and not exactly one image-like dataset "
                f"(found: {listed}); name one with --dataset"
            )
    if name not in handle or not isinstance(handle[name], h5py.Dataset):
        raise DataError(f"input {path}: no dataset '{name}'")
    return handle[name]


def _check_pixels(images: np.ndarray, sources: list[str], first_index: int, path) -> None:
    bad = ~np.isfinite(images).reshape(len(images), -1).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"input {path}: image {first_index + k} ({sources[k]}) holds NaN or inf pixels "
            f"({int(bad.sum())} image(s) in all in this chunk)"
        )


def _probabilities(checkpoint: dict, model, images, batch_size: int) -> np.ndarray:
    images = np.asarray(images)
    size = checkpoint["image_size"]
    if images.ndim != 3:
        raise ValueError(
            f"images must be (N, H, W) = (N, {size}, {size}), got shape {images.shape}"
        )
    if images.shape[1:] != (size, size):
        raise ValueError(
            f"images are {images.shape[1]}x{images.shape[2]} px but the model expects {size}x{size}"
        )
    if not np.issubdtype(images.dtype, np.number) or not np.isfinite(images).all():
        raise ValueError("images must be finite numbers (found NaN/inf or a non-numeric dtype)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_classes = len(checkpoint["class_names"])
    if images.shape[0] == 0:
        return np.zeros((0, n_classes), dtype=np.float32)

    device = next(model.parameters()).device
    x = build_channels(images, checkpoint["channels"], checkpoint["smoothing_sigma_px"])
    norm = normaliser(checkpoint["norm_mean"], checkpoint["norm_std"], device)
    data = torch.from_numpy(x).to(device)
    logits = predict_logits(model, data, batch_size, norm)
    return torch.softmax(logits, dim=1).cpu().numpy()


def _check_metadata(checkpoint: dict, path: Path) -> None:
    """The fields prediction relies on, and weights that fit the architecture."""
    channels, names = checkpoint["channels"], checkpoint["class_names"]
    problems = []
    if not isinstance(channels, list) or not channels or any(c not in CHANNELS for c in channels):
        problems.append(f"channels {channels!r}")
    if not isinstance(names, list) or len(names) < 2:
        problems.append(f"class_names {names!r}")
    if not isinstance(checkpoint["image_size"], int) or checkpoint["image_size"] < 1:
        problems.append(f"image_size {checkpoint['image_size']!r}")
    n_channels = len(channels) if isinstance(channels, list) else -1
    for key in ("norm_mean", "norm_std"):
        if not isinstance(checkpoint[key], list) or len(checkpoint[key]) != n_channels:
            problems.append(f"{key} for {n_channels} channel(s)")
    if checkpoint["in_channels"] != n_channels:
        problems.append(f"in_channels {checkpoint['in_channels']!r} for channels {channels!r}")
    if isinstance(channels, list) and "residual" in channels:
        if not isinstance(checkpoint["smoothing_sigma_px"], (int, float)):
            problems.append("no smoothing_sigma_px for the residual channel")
    if problems:
        raise ValueError(f"checkpoint {path} is inconsistent: {'; '.join(problems)}")
    try:
        load_model(checkpoint, torch.device("cpu"))
    except (RuntimeError, ValueError, TypeError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"checkpoint {path} holds weights that do not fit its architecture "
            f"{checkpoint['architecture']!r} (a checkpoint of another model?): {first}"
        ) from None
