"""The training set of a run in one preallocated (N, C, H, W) float32 array, filled class by class.

The peak memory is the array plus one class's plane (stacking per-class copies, as an earlier
loader did, needed about three times the array): at 30,000 images per class this is what keeps
training inside a few GB. Each plane is validated by the readers of io.class_files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darklens.io.class_files import DataError, image_count_and_size, read_images, read_residual


def load_training_set(
    image_paths: dict[str, str],
    residual_paths: dict[str, str] | None,
    channels: list[str],
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """x (N, C, H, W) float32, labels y (N,) and {class: count}, classes in the order given.

    image_paths / residual_paths map class name -> file; labels are the position of the class.
    """
    # The class names are checked here too: a residual-only run never reads the images.
    shapes = {name: image_count_and_size(path, name) for name, path in image_paths.items()}
    sizes = {size for _, size in shapes.values()}
    if len(sizes) != 1:
        raise DataError(f"class files have different image sizes: {sorted(sizes)}")
    size = sizes.pop()
    counts = {name: n for name, (n, _) in shapes.items()}
    x = np.empty((sum(counts.values()), len(channels), size, size), dtype=np.float32)
    y = np.empty(len(x), dtype=np.int64)
    start = 0
    for label, (name, path) in enumerate(image_paths.items()):
        stop = start + counts[name]
        y[start:stop] = label
        for c, channel in enumerate(channels):
            if channel == "image":
                plane = read_images(path, expected_class=name)
            elif channel == "residual":
                if not residual_paths or name not in residual_paths:
                    raise DataError(f"the residual channel of {name} has no features file")
                plane = read_residual(residual_paths[name], counts[name])
            else:
                raise DataError(f"unknown channel {channel!r}")
            if plane.shape != (counts[name], size, size):
                raise DataError(f"{path}: {channel} plane has shape {plane.shape}")
            x[start:stop, c] = plane
            del plane
        start = stop
    return x, y, counts


def class_paths(images: list, residuals: list | None) -> tuple[dict, dict | None]:
    """(class -> class file, class -> features file or None) of class files named {class}.h5 and
    their features files in the same order (as the command line passes them)."""
    classes = [Path(p).stem for p in images]
    image_paths = dict(zip(classes, images, strict=True))
    residual_paths = dict(zip(classes, residuals, strict=True)) if residuals else None
    return image_paths, residual_paths
