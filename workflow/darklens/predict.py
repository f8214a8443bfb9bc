"""Class probabilities of raw images from a checkpoint written by `training.train`.

The checkpoint carries everything needed: architecture, input channels and residual smoothing,
training-split normalisation, image size and class names, so callers pass plain (N, H, W) images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from darklens.features import build_channels
from darklens.models import build_model
from darklens.training import normalise, predict_logits, resolve_device

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


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint onto the CPU; ValueError if missing, unreadable or lacking keys."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt file
        raise ValueError(
            f"checkpoint {path} is not readable ({type(err).__name__}): corrupt, truncated, "
            "or not written by darklens.training.train"
        ) from err
    if not isinstance(checkpoint, dict):
        raise ValueError(f"checkpoint {path} is not a darklens checkpoint (not a dict)")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise ValueError(f"checkpoint {path} lacks required key(s): {', '.join(missing)}")
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

    x = build_channels(images, checkpoint["channels"], checkpoint["smoothing_sigma_px"])
    x = normalise(x, checkpoint["norm_mean"], checkpoint["norm_std"])
    torch_device = resolve_device(device)
    model = load_model(checkpoint, torch_device)
    logits = predict_logits(model, torch.from_numpy(x).to(torch_device), batch_size)
    return torch.softmax(logits, dim=1).cpu().numpy()
