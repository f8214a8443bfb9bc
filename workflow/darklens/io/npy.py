"""Images kept as `.npy` files, one image per file, as the DeepLense data sets lay them out, and
their import into a darklens class file.

A file holds one image as a numeric (H, W) or (1, H, W) array, or (DeepLense) a numpy object
array whose first 2-D element is that image (the axion files add the axion mass as a number:
`[image, axion_mass]`). Object arrays are pickles: loading one runs code from the file, so it
needs `allow_pickle=True`, which only files one trusts should get. Every problem is a `DataError`
naming the file.

`import_class` turns a folder `{root}/{folder}/*.npy` (DeepLense's layout) into a class file with
the layout of a simulated one (`io.class_files`), so features, split, training and evaluation run
on it unchanged: /images (N, H, W) float32 counts/s per pixel in file-name order, /image_index,
/params/snr and /params/substructure_chi (NaN: unknown for imported images), /params/axion_mass_ev
when every file of the class holds a mass; the file names are kept in /source_files. Images in
counts (DeepLense's raw counts) are divided by the exposure time on import; the attributes record
the conversion (`source_units`, `exposure_time_s`). The import reads `chunk_files` files at a time
into the file being written, so its memory is bounded by a chunk, not by the class.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path

import h5py
import numpy as np

from darklens import __version__
from darklens.io.atomic import atomic_path
from darklens.io.class_files import IMAGE_CHUNK, DataError, add_source_files, create_image_dataset

NPY_MAGIC = b"\x93NUMPY"
UNITS = ("counts", "counts_per_s")  # of the imported files; class files hold counts/s
CHUNK_FILES = 1024  # files read and written at a time by import_class (bounded memory) ...
CHUNK_BYTES = 256 * 2**20  # ... and at most this many bytes of float32 images (large images)

log = logging.getLogger(__name__)


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


def _pixels(array, path) -> np.ndarray:
    """The one (H, W) numeric image of a loaded file, in its own dtype (checked, not converted)."""
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
    return array


def as_image(array, path) -> np.ndarray:
    """The one image of a loaded file: (H, W) float32 from (H, W), (1, H, W) or an object array."""
    return _pixels(array, path).astype(np.float32)


def axion_mass(array, path) -> float | None:
    """The axion mass [eV] of a DeepLense object array `[image, axion_mass]`: its one number
    besides the image; None for a plain array or an object array without a number."""
    array = np.asarray(array)
    if array.dtype != object:
        return None
    numbers = []
    for item in array.ravel():
        value = np.asarray(item)
        if value.ndim == 0 and (
            np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)
        ):
            numbers.append(float(value))
    if not numbers:
        return None
    if len(numbers) > 1:
        raise DataError(
            f"{path}: object array holds {len(numbers)} numbers besides the image; expected at "
            "most one, the axion mass"
        )
    if not (math.isfinite(numbers[0]) and numbers[0] > 0):
        raise DataError(f"{path}: axion mass {numbers[0]} is not a positive number of eV")
    return numbers[0]


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


def listing_digest(folder) -> str:
    """`N files, sha256 HEX` of the names, sizes and modification times of a folder's .npy files:
    changes when a file is added, removed, renamed or rewritten (the workflow's rerun trigger)."""
    files = image_files(folder)
    digest = hashlib.sha256()
    for path in files:
        info = path.stat()
        digest.update(f"{path.name}\t{info.st_size}\t{info.st_mtime_ns}\n".encode())
    return f"{len(files)} files, sha256 {digest.hexdigest()[:16]}"


def counts_per_s_divisor(units: str, exposure_time_s: float | None) -> float:
    """What imported pixel values are divided by to be counts/s: the exposure time for `counts`,
    1 for `counts_per_s`. ValueError (one line) for anything else."""
    if units == "counts_per_s":
        return 1.0
    if units != "counts":
        raise ValueError(f"import units {units!r}: expected one of {', '.join(UNITS)}")
    if exposure_time_s is None:
        raise ValueError(
            "import units counts need the exposure time in seconds (config "
            "import.exposure_time_s, --exposure-time-s) to become counts/s"
        )
    if not (math.isfinite(exposure_time_s) and exposure_time_s > 0):
        raise ValueError(f"import exposure time {exposure_time_s} s is not a positive number")
    return float(exposure_time_s)


def _check_shape(path, shape, first_shape) -> None:
    if first_shape is None:
        if shape[0] != shape[1]:
            raise DataError(f"{path}: image is {shape[0]}x{shape[1]} px, not square")
    elif shape != first_shape:
        raise DataError(
            f"{path}: image is {shape[0]}x{shape[1]} px, the first one is "
            f"{first_shape[0]}x{first_shape[1]}"
        )


def _mixed_masses(folder, with_mass, without_mass) -> DataError:
    return DataError(
        f"{folder}: {with_mass.name} holds an axion mass but {without_mass.name} does not; the "
        "files of a class must all hold one ([image, axion_mass]) or none"
    )


def _write_images(handle, files, allow_pickle, divisor, chunk_files):
    """Read `files` into /images (created at the first file's size), `rows` at a time: at most
    `chunk_files` and CHUNK_BYTES of float32. Returns (axion masses or None, all integers?)."""
    n = len(files)
    masses = np.full(n, np.nan)
    with_mass = without_mass = None
    integer_pixels, images, buffer, filled = True, None, None, 0
    for i, path in enumerate(files):
        array = load_npy(path, allow_pickle)
        pixels = _pixels(array, path)
        _check_shape(path, pixels.shape, None if images is None else images.shape[1:])
        if images is None:
            side = pixels.shape[0]
            images = create_image_dataset(handle, "images", (n, side, side))
            rows = max(IMAGE_CHUNK, CHUNK_BYTES // (4 * side * side) // IMAGE_CHUNK * IMAGE_CHUNK)
            buffer = np.empty((min(n, chunk_files, rows), side, side), dtype=np.float32)
        integer_pixels &= bool(np.issubdtype(pixels.dtype, np.integer))
        buffer[filled] = pixels / divisor if divisor != 1.0 else pixels
        mass = axion_mass(array, path)
        if mass is None:
            without_mass = without_mass or path
        else:
            with_mass = with_mass or path
            masses[i] = mass
        if with_mass and without_mass:
            raise _mixed_masses(path.parent, with_mass, without_mass)
        filled += 1
        if filled == len(buffer) or i == n - 1:
            images[i + 1 - filled : i + 1] = buffer[:filled]
            filled = 0
    return (masses if with_mass else None), integer_pixels


def import_class(
    folder,
    class_name: str,
    output,
    allow_pickle: bool = False,
    units: str = "counts_per_s",
    exposure_time_s: float | None = None,
    chunk_files: int = CHUNK_FILES,
) -> int:
    """Read every `*.npy` image of `folder` (sorted by name) into the class file `output`, as
    counts/s: with `units` "counts", pixel values are divided by `exposure_time_s`.

    All images must be finite, square and of one size; the axion mass of DeepLense's object
    arrays becomes /params/axion_mass_ev when every file holds one (none: no such param; some:
    DataError). Files are read `chunk_files` at a time and written to the (atomic) output, so
    memory holds one chunk (at most 1024 files and 256 MiB). Returns the number of images.
    """
    divisor = counts_per_s_divisor(units, exposure_time_s)
    folder = Path(folder)
    files = image_files(folder)
    if not files:
        raise DataError(f"{folder}: no .npy images for class {class_name}")
    n = len(files)
    with atomic_path(output) as tmp:  # the file appears complete, source_files included, or not
        with h5py.File(tmp, "w") as handle:
            masses, integers = _write_images(handle, files, allow_pickle, divisor, chunk_files)
            _write_params_and_attrs(handle, n, masses)
            source = {"units": units, "exposure_time_s": exposure_time_s if divisor != 1 else None}
            handle.attrs["class_name"] = class_name
            handle.attrs["source"] = "import"
            handle.attrs["config"] = json.dumps(
                {"import": {"folder": str(folder), "allow_pickle": allow_pickle, **source}}
            )
            handle.attrs["source_units"] = "counts" if divisor != 1 else "counts/s"
            if divisor != 1:
                handle.attrs["exposure_time_s"] = divisor
                handle.attrs["conversion"] = f"images = counts / {divisor} s"
        add_source_files(tmp, [p.name for p in files])
    if integers and divisor == 1:
        log.warning(
            "%s: every image holds integers (raw counts?) but import.units is counts_per_s; "
            "DeepLense images are counts: set import.units: counts and import.exposure_time_s",
            folder,
        )
    return n


def _write_params_and_attrs(handle: h5py.File, n: int, masses: np.ndarray | None) -> None:
    """/image_index, /params, /subhalos and the common attributes of an imported class file."""
    handle.create_dataset("image_index", data=np.arange(n, dtype=np.int64))
    params = handle.create_group("params")
    params.create_dataset("snr", data=np.full(n, np.nan))
    params.create_dataset("substructure_chi", data=np.full(n, np.nan))
    units = {
        "images": "counts/s per pixel",
        "snr": "unknown (NaN)",
        "substructure_chi": "unknown (NaN)",
    }
    if masses is not None:
        params.create_dataset("axion_mass_ev", data=masses)
        units["axion_mass_ev"] = "eV"
    subhalos = handle.create_group("subhalos")
    subhalos.create_dataset("offset", data=np.zeros(n + 1, dtype=np.int64))
    handle.attrs["units"] = json.dumps(units)
    handle.attrs["darklens_version"] = __version__
    handle.attrs["n_images"] = n
