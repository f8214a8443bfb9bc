"""Stacks of images to predict on, read in chunks: an HDF5 file, a `.npy` stack, a folder of
`.npy` images (one per file), or a folder of class folders of `.npy` images (DeepLense's layout,
`Model_I/{no_sub,cdm,axion}/*.npy`: labelled images). Every chunk is checked (pixel values, image
size, finite pixels) before it is handed on; every problem is a `DataError` of one line naming the
input.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np

from darklens.io.class_files import DataError
from darklens.io.npy import image_files, is_npy_file, load_images, load_npy

CHUNK_IMAGES = 1024  # images read, checked or scanned at a time (bounded temporaries)


def input_chunks(
    path, size: int, allow_pickle: bool = False, dataset: str | None = None
) -> Iterator[tuple[list[str], np.ndarray]]:
    """Chunks (sources, (n, size, size) float32 images) of an input: a folder of .npy images, a
    .npy stack ((N, H, W), or one (H, W) image), or an HDF5 file (dataset `dataset`, else
    `images`, else its only image-like dataset). Raises DataError on anything else, and on a
    chunk holding NaN or inf pixels."""
    first_index = 0
    for sources, images in _unchecked_chunks(Path(path), size, allow_pickle, dataset):
        _check_pixels(images, sources, first_index, path)
        first_index += len(images)
        yield sources, images


def class_folders(path, class_names) -> list[tuple[int, Path]]:
    """(class index, folder) of each subfolder of `path` named after a class, in class order, when
    `path` is a folder holding no .npy file but such subfolders (a labelled input); else [].

    DataError if a subfolder holding .npy files is not named after a class (images that would
    silently be left out, e.g. `CDM/` for class `cdm`)."""
    path = Path(path)
    if not path.is_dir() or image_files(path):
        return []
    names = list(class_names)
    found = {p.name: p for p in path.iterdir() if p.is_dir() and p.name in names}
    if not found:
        return []
    others = sorted(
        p.name for p in path.iterdir() if p.is_dir() and p.name not in names and image_files(p)
    )
    if others:
        raise DataError(
            f"input {path}: subfolder(s) {', '.join(others)} hold .npy images but are not "
            f"classes of the checkpoint ({', '.join(names)})"
        )
    return [(k, found[name]) for k, name in enumerate(names) if name in found]


def labelled_chunks(
    folders: list[tuple[int, Path]], size: int, allow_pickle: bool = False
) -> Iterator[tuple[list[str], np.ndarray, np.ndarray]]:
    """Chunks (sources `class/file.npy`, (n, size, size) float32 images, (n,) int64 labels) of
    the class folders `class_folders` found, class by class, each sorted by file name; checked as
    `input_chunks` checks its chunks."""
    first_index = 0
    for label, folder in folders:
        files = image_files(folder)
        for start in range(0, len(files), CHUNK_IMAGES):
            chunk = files[start : start + CHUNK_IMAGES]
            sources = [f"{folder.name}/{p.name}" for p in chunk]
            images = load_images(chunk, allow_pickle, size)
            _check_pixels(images, sources, first_index, folder.parent)
            first_index += len(images)
            yield sources, images, np.full(len(images), label, dtype=np.int64)


def _unchecked_chunks(path: Path, size: int, allow_pickle: bool, dataset: str | None):
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
    """The dataset `name`, else `images`, else the file's only 2-d or 3-d dataset."""
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
