"""The input channels: their registry, and the one function that stacks them.

`CHANNELS` holds every channel's definition, unit and what it needs; `build_channels` stacks the
requested channels of (N, H, W) images into (N, C, H, W) float32. Training passes the planes of
the features file (`planes`), prediction computes them from the images and a lens model
(`channels_for_new_images` fits one when a lens-model channel is asked). docs/features.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from darklens.features.lens_model import (
    FIT_RESIDUAL_DEFINITION,
    ORACLE_RESIDUAL_DEFINITION,
    LensModel,
    fit_lens_model,
    fit_residual,
    oracle_residual,
)
from darklens.features.noise import NoiseModel
from darklens.features.residual import RESIDUAL_DEFINITION, residual
from darklens.features.source_plane import (
    SOURCE_PLANE_DEFINITION,
    SOURCE_RESIDUAL_DEFINITION,
    source_planes,
)


@dataclass(frozen=True)
class Channel:
    """name; definition; unit; needs: 'image' (the image alone), 'smoothing' (the residual's
    smoothing width), 'fit' (the fitted smooth lens model) or 'truth' (the simulator's true smooth
    model: simulated data only)."""

    name: str
    definition: str
    unit: str
    needs: str


CHANNELS: dict[str, Channel] = {
    c.name: c
    for c in (
        Channel("image", "image = the image itself", "counts/s per pixel", "image"),
        Channel("residual", RESIDUAL_DEFINITION, "counts/s per pixel", "smoothing"),
        Channel("fit_residual", FIT_RESIDUAL_DEFINITION, "noise sigma (dimensionless)", "fit"),
        Channel(
            "oracle_residual", ORACLE_RESIDUAL_DEFINITION, "noise sigma (dimensionless)", "truth"
        ),
        Channel("source_plane", SOURCE_PLANE_DEFINITION, "counts/s per image pixel", "fit"),
        Channel(
            "source_residual", SOURCE_RESIDUAL_DEFINITION, "noise sigma (dimensionless)", "fit"
        ),
    )
}
#: The channels that need the fitted lens model.
LENS_MODEL_CHANNELS = tuple(name for name, c in CHANNELS.items() if c.needs == "fit")
#: The kinds of features file, by what their planes need (`data/features/{kind}/{class}.h5`):
#: each is rebuilt only when its own input changes (the smoothing, the fit, the class file).
FEATURE_KINDS = {"smoothing": "residual", "fit": "lens_model", "truth": "oracle"}


def feature_kind(channel: str) -> str | None:
    """The kind of features file that holds a channel's plane; None for `image`."""
    return FEATURE_KINDS.get(CHANNELS[channel].needs)


def kind_planes(kind: str) -> list[str]:
    """The planes of a kind of features file, in CHANNELS order."""
    if kind not in FEATURE_KINDS.values():
        raise ValueError(
            f"unknown kind of features file {kind!r}; known: {list(FEATURE_KINDS.values())}"
        )
    return [name for name in CHANNELS if feature_kind(name) == kind]


def check_channels(channels) -> list[str]:
    """The channel names as a list; ValueError (one line) for an unknown or repeated one."""
    channels = list(channels)
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown}; known: {list(CHANNELS)}")
    if len(set(channels)) != len(channels) or not channels:
        raise ValueError(f"channels must be distinct and at least one, got {channels}")
    return channels


def plane_attrs(name: str) -> dict:
    """The attributes of a channel's plane in a features file."""
    return {"definition": CHANNELS[name].definition, "unit": CHANNELS[name].unit}


def compute_plane(
    name: str,
    images,
    smoothing_sigma_px: float | None = None,
    lens_model: LensModel | None = None,
    smooth_model=None,
    truth_noise: NoiseModel | None = None,
    cache: dict | None = None,
) -> np.ndarray:
    """Plane `name` (N, H, W) float32 of images (N, H, W) [counts/s per pixel]; ValueError (one
    line) when what it needs is missing. `cache` (a dict) keeps the source-plane pair, which is
    computed once for source_plane and source_residual."""
    check_channels([name])
    needs = CHANNELS[name].needs
    if needs == "image":
        return np.asarray(images, dtype=np.float32)
    if needs == "smoothing":
        if smoothing_sigma_px is None:
            raise ValueError("the residual channel needs smoothing_sigma_px")
        return residual(images, smoothing_sigma_px)
    if needs == "truth":
        if smooth_model is None or truth_noise is None:
            raise ValueError(
                "oracle_residual needs the true smooth model and noise of simulated images "
                "(a class file with /smooth_model); new or imported images have none"
            )
        return oracle_residual(images, smooth_model, truth_noise)
    if lens_model is None:
        raise ValueError(f"the {name} channel needs the fitted lens model (a fit file)")
    if len(lens_model.model) != len(images):
        raise ValueError(f"lens model of {len(lens_model.model)} images for {len(images)}")
    if name == "fit_residual":
        return fit_residual(images, lens_model.model, lens_model.noise)
    cache = {} if cache is None else cache
    if "source" not in cache:
        cache["source"] = source_planes(images, lens_model)
    return cache["source"][0 if name == "source_plane" else 1]


def build_channels(
    images,
    channels,
    smoothing_sigma_px: float | None = None,
    planes: dict | None = None,
    lens_model: LensModel | None = None,
    smooth_model=None,
    truth_noise: NoiseModel | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Stack the requested channels into (N, C, H, W) float32, in the order asked.

    Each channel is taken from `planes` {name: (N, H, W), or a function returning it, called
    when the channel is stacked, so that one plane at a time is in memory} when there
    (training: the class file's images and the features file's planes), else computed from
    `images` (N, H, W) [counts/s per pixel] with what it needs (`compute_plane`). `images` may
    be None when every channel is in `planes`. `out`: a preallocated (N, C, H, W) array to fill
    (returned)."""
    channels = check_channels(channels)
    planes = planes or {}
    # float32 first, as the class files store images: training and prediction see the same input
    images = None if images is None else np.asarray(images, dtype=np.float32)
    cache: dict = {}
    x = out
    for c, name in enumerate(channels):
        if name in planes:
            plane = planes[name]() if callable(planes[name]) else planes[name]
        elif images is None:
            raise ValueError(f"the {name} channel is neither given nor computable (no images)")
        else:
            plane = compute_plane(
                name, images, smoothing_sigma_px, lens_model, smooth_model, truth_noise, cache
            )
        plane = np.asarray(plane, dtype=np.float32)
        if plane.ndim != 3:
            raise ValueError(f"the {name} plane has shape {plane.shape}, expected (N, H, W)")
        if x is None:
            x = np.empty((plane.shape[0], len(channels), *plane.shape[1:]), dtype=np.float32)
        if plane.shape != x.shape[:1] + x.shape[2:]:
            raise ValueError(f"the {name} plane has shape {plane.shape}, expected {x.shape}")
        x[:, c] = plane
        del plane
    return x


def channels_for_new_images(
    images,
    channels,
    instrument: dict | None = None,
    smoothing_sigma_px: float | None = None,
    fitting: dict | None = None,
    lens_light: bool = False,
    log=None,
) -> np.ndarray:
    """(N, C, H, W) float32 channels of new images (N, H, W) [counts/s per pixel], computed as at
    training time. A lens-model channel fits the smooth lens model first (`fit_lens_model`;
    `instrument`: the images' instrument section, `fitting`: the fitting settings); the oracle
    is refused (new images have no true smooth model)."""
    channels = check_channels(channels)
    if "oracle_residual" in channels:
        raise ValueError(
            "oracle_residual needs the simulator's true smooth model, which new images do not "
            "have (it is an upper bound for simulated data only): use fit_residual"
        )
    images = np.asarray(images, dtype=np.float32)
    lens_model = None
    if any(name in LENS_MODEL_CHANNELS for name in channels):
        if instrument is None:
            wanted = [name for name in channels if name in LENS_MODEL_CHANNELS]
            raise ValueError(
                f"channel(s) {wanted} fit the smooth lens model, which needs the images' "
                "instrument (pixel scale, PSF, exposure time, background rms)"
            )
        lens_model = fit_lens_model(images, instrument, fitting, lens_light, log=log)
    return build_channels(images, channels, smoothing_sigma_px, lens_model=lens_model)
