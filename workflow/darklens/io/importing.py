"""Bring one's own labelled images: a folder of `.npy` images per class -> a darklens class file.

The layout is DeepLense's, `{root}/{folder}/*.npy`, one image per file (see npy_images). The class
file written has the layout of a simulated one (data.py), so features, split, training and
evaluation run on it unchanged: /images (N, H, W) float32 in file-name order, /image_index, and
/params/snr and /params/substructure_chi (NaN: unknown for imported images); the file names are
kept in /source_files.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from darklens.io.atomic import atomic_path
from darklens.io.class_files import DataError, write_image_file
from darklens.io.npy import image_files, load_images


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
    names = np.array([p.name for p in files], dtype=h5py.string_dtype())
    with atomic_path(output) as tmp:  # the file appears complete, source_files included, or not
        write_image_file(tmp, data, attrs)
        with h5py.File(tmp, "r+") as handle:
            handle.create_dataset("source_files", data=names)
    return n


def class_counts(class_files: dict[str, str]) -> dict[str, int]:
    """{class: number of images} of class files, read from their /images shapes."""
    counts = {}
    for name, path in class_files.items():
        try:
            with h5py.File(path, "r") as handle:
                counts[name] = int(handle["images"].shape[0])
        except (OSError, KeyError) as exc:
            raise DataError(f"{path}: not a darklens class file ({exc})") from None
    return counts
