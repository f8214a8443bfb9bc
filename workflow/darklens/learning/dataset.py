"""The training set of a run in one preallocated (N, C, H, W) float32 array, filled class by class.

The peak memory is the array plus one class's plane (stacking per-class copies, as an earlier
loader did, needed about three times the array): at 30,000 images per class this is what keeps
training inside a few GB. Each plane is validated by the readers of io.class_files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from darklens.features.channels import build_channels, check_channels
from darklens.io.class_files import (
    DataError,
    feature_names,
    image_count_and_size,
    read_feature,
    read_images,
)


def load_training_set(
    image_paths: dict[str, str],
    feature_paths: dict | None,
    channels: list[str],
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """x (N, C, H, W) float32, labels y (N,) and {class: count}, classes in the order given.

    image_paths map class name -> class file, feature_paths class name -> its features file or
    list of features files (one per kind, `darklens.features.files`); labels are the position of
    the class. `image` comes from the class file, every other channel is the plane of that name
    in whichever of the class's features files holds it, stacked by
    `darklens.features.channels.build_channels` (the code prediction uses).
    """
    try:
        channels = check_channels(channels)
    except ValueError as exc:
        raise DataError(str(exc)) from None
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

        def loader(channel, name=name, path=path):
            """A plane of class `name`, read and checked only when stacked (one at a time)."""

            def load():
                if channel == "image":
                    plane = read_images(path, expected_class=name)
                else:
                    source = plane_file(feature_paths, name, channel)
                    plane = read_feature(source, channel, counts[name])
                if plane.shape != (counts[name], size, size):
                    raise DataError(f"{path}: {channel} plane has shape {plane.shape}")
                return plane

            return load

        build_channels(None, channels, planes={c: loader(c) for c in channels}, out=x[start:stop])
        start = stop
    return x, y, counts


def plane_file(feature_paths: dict | None, name: str, channel: str):
    """The features file of class `name` that holds plane `channel`; DataError (one line)
    when none does."""
    files = (feature_paths or {}).get(name) or []
    files = [files] if isinstance(files, str | Path) else files
    for path in files:
        if channel in feature_names(path):
            return path
    raise DataError(
        f"the {channel} channel of {name} is in none of its features files "
        f"({', '.join(map(str, files)) or 'none given'})"
    )


def class_paths(images: list, features: list | None) -> tuple[dict, dict | None]:
    """(class -> class file, class -> its features files or None) of class files named
    {class}.h5 and features files named {class}.h5 (one per kind and class, any order, as the
    command line passes them)."""
    classes = [Path(p).stem for p in images]
    image_paths = dict(zip(classes, images, strict=True))
    if not features:
        return image_paths, None
    feature_paths: dict[str, list] = {name: [] for name in classes}
    for path in features:
        if Path(path).stem not in feature_paths:
            raise DataError(f"{path}: a features file of no class given ({', '.join(classes)})")
        feature_paths[Path(path).stem].append(path)
    return image_paths, feature_paths
