"""Images kept as `.npy` files, one image per file, as the DeepLense data sets lay them out, and
their import into a darklens class file.

A file holds one image as a numeric (H, W) or (1, H, W) array, or (DeepLense) a numpy object
array whose first element is that image (the axion files add the axion mass as a second element).
Object arrays are pickles: loading one runs code from the file, so it needs `allow_pickle=True`,
which only files one trusts should get. Every problem is a `DataError` naming the file.

`import_class` turns a folder `{root}/{folder}/*.npy` (DeepLense's layout) into a class file with
the layout of a simulated one (`io.class_files`), so features, split, training and evaluation run
on it unchanged: /images (N, H, W) float32 in file-name order, /image_index, and /params/snr and
/params/substructure_chi (NaN: unknown for imported images); the file names are kept in
/source_files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darklens.io.atomic import atomic_path
from darklens.io.class_files import DataError, add_source_files, write_image_file

NPY_MAGIC = b"\x93NUMPY"


def is_npy_file(path) -> bool:
    """True when the file starts with the .npy magic string."""
    with open(path, "rb") as handle:
        return handle.read(len(NPY_MAGIC)) == NPY_MAGIC


def load_npy(path, allow_pickle: bool = False, mmap: bool = False) -> np.ndarray:
    """np.load of a .npy file with one-line errors; object arrays only with `allow_pickle`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if not is_npy_file(path):
        raise DataError(f"{path}: not a .npy file")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:  # object arrays: "allow_pickle" (load) or "Python objects" (mmap)
        if "allow_pickle" not in str(exc) and "Python objects" not in str(exc):
            raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    if not allow_pickle:
        raise DataError(
            f"{path}: holds a Python object array (DeepLense's layout); loading it runs pickle "
            "code, so allow it (import.allow_pickle: true, or --allow-pickle) for trusted files"
        )
    try:
        return np.load(path, allow_pickle=True)
    except Exception as exc:  # unpickling raises anything
        raise DataError(f"{path}: not a readable .npy file ({type(exc).__name__})") from None


def as_image(array, path) -> np.ndarray:
    """The one image of a loaded file: (H, W) float32 from (H, W), (1, H, W) or an object array."""
    array = np.asarray(array)
    if array.dtype == object:
        candidates = [np.asarray(item) for item in array.ravel()]
        images = [a for a in candidates if a.dtype != object and a.ndim in (2, 3)]
        if not images:
            raise DataError(f"{path}: object array without an image (no 2-D numeric element)")
        array = images[0]
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise DataError(f"{path}: holds an array of shape {array.shape}, not one (H, W) image")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{path}: values of dtype {array.dtype} are not pixel values")
    if not np.isfinite(array).all():
        raise DataError(f"{path}: holds NaN or inf pixels")
    return array.astype(np.float32)


def load_image(path, allow_pickle: bool = False) -> np.ndarray:
    """The (H, W) float32 image of one .npy file."""
    return as_image(load_npy(path, allow_pickle), path)


def image_files(folder) -> list[Path]:
    """The .npy files of a folder, sorted by name (the order images get)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    return sorted(p for p in folder.iterdir() if p.suffix == ".npy" and p.is_file())


def load_images(paths, allow_pickle: bool = False, size: int | None = None) -> np.ndarray:
    """Stack the images of .npy files into (N, H, W) float32; all must share one square shape
    (`size` x `size` when given)."""
    images, shape = [], None
    for path in paths:
        image = load_image(path, allow_pickle)
        if size is not None and image.shape != (size, size):
            raise DataError(
                f"{path}: image is {image.shape[0]}x{image.shape[1]} px but the model expects "
                f"{size}x{size}"
            )
        if shape is None:
            shape = image.shape
            if shape[0] != shape[1]:
                raise DataError(f"{path}: image is {shape[0]}x{shape[1]} px, not square")
        elif image.shape != shape:
            raise DataError(
                f"{path}: image is {image.shape[0]}x{image.shape[1]} px, the first one is "
                f"{shape[0]}x{shape[1]}"
            )
        images.append(image)
    if not images:
        return np.zeros((0, size or 0, size or 0), dtype=np.float32)
    return np.stack(images)


def import_class(folder, class_name: str, output, allow_pickle: bool = False) -> int:
    """Read every `*.npy` image of `folder` (sorted by name) into the class file `output`.

    All images must be finite, square and of one size. Returns the number of images.
    """
    folder = Path(folder)
    files = image_files(folder)
    if not files:
        raise DataError(f"{folder}: no .npy images for class {class_name}")
    images = load_images(files, allow_pickle)
    n = len(images)
    data = {
        "images": images,
        "image_index": np.arange(n, dtype=np.int64),
        "params": {"snr": np.full(n, np.nan), "substructure_chi": np.full(n, np.nan)},
        "subhalos": {},
        "subhalo_offsets": np.zeros(n + 1, dtype=np.int64),
    }
    attrs = {
        "class_name": class_name,
        "source": "import",
        "config": {"import": {"folder": str(folder), "allow_pickle": allow_pickle}},
        "units": {
            "images": "as imported",
            "snr": "unknown (NaN)",
            "substructure_chi": "unknown (NaN)",
        },
    }
    with atomic_path(output) as tmp:  # the file appears complete, source_files included, or not
        write_image_file(tmp, data, attrs)
        add_source_files(tmp, [p.name for p in files])
    return n
