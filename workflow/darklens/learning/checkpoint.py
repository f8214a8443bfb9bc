"""What a training run saves: `checkpoint.pt` (the best epoch's model and everything prediction
needs) and `resume.pt` (the complete state after the last finished epoch).

Both are plain dicts of tensors and builtins, written atomically with torch.save and read with
`weights_only=True` (no pickle code runs). A checkpoint carries the architecture, input channels
and residual smoothing, the training split's normalisation, the image size and the class names, so
prediction needs nothing else.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from darklens import __version__
from darklens.features.channels import CHANNELS
from darklens.io.atomic import atomic_path
from darklens.learning.models import build_model

CHECKPOINT_FILE = "checkpoint.pt"
RESUME_FILE = "resume.pt"
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


def cpu_state(model: torch.nn.Module) -> dict:
    """A detached, contiguous CPU copy of the model's state (loads into any layout)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def rng_states(shuffle_gen: torch.Generator, flip_rng: np.random.Generator, device) -> dict:
    """Every random state a training epoch draws from (global torch, shuffling, flips, CUDA)."""
    states = {
        "torch": torch.get_rng_state(),
        "shuffle": shuffle_gen.get_state(),
        "numpy_flips": copy.deepcopy(flip_rng.bit_generator.state),
    }
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict, shuffle_gen, flip_rng, device) -> None:
    """Restore what `rng_states` saved."""
    torch.set_rng_state(states["torch"])
    shuffle_gen.set_state(states["shuffle"])
    flip_rng.bit_generator.state = states["numpy_flips"]
    if device.type == "cuda":
        torch.cuda.set_rng_state_all(states["cuda"])


def write_resume(path: Path, state: dict) -> None:
    """Write the state after an epoch (identity, epoch, model, optimizer, scheduler (None for a
    constant learning rate), scaler, rng, history, best, epochs_without_improvement), atomically:
    a crash leaves the previous epoch's file. A finished run leaves {identity, epoch,
    finished: True, history, best, epochs_without_improvement}: enough to rewrite its outputs."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_resume(path: Path, identity: dict, log: Callable[[str], None]) -> dict | None:
    """The state in a resume file, if it continues this very run; else None (and say why)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        log(f"ignoring {path.name}: not readable ({type(err).__name__}); starting afresh")
        return None
    if not isinstance(state, dict) or state.get("identity") != identity:
        log(f"ignoring {path.name}: written for another config or other data; starting afresh")
        return None
    return state


def write_checkpoint(
    path: Path, best: dict, config: dict, in_channels: int, image_size: int, mean, std
) -> None:
    """checkpoint.pt of the best epoch `best` (as the training loop keeps it) of a run with
    TrainConfig `config` (as a dict); mean, std: the training split's per-channel statistics."""
    checkpoint = {
        "model_state": best["model"],
        "architecture": config["architecture"],
        "in_channels": int(in_channels),
        "channels": list(config["channels"]),
        "class_names": list(config["class_names"]),
        "image_size": int(image_size),
        "norm_mean": mean,
        "norm_std": std,
        "smoothing_sigma_px": config["smoothing_sigma_px"],
        "epoch": best["epoch"],
        "best_val_acc": best["val_acc"],
        "best_val_loss": best["val_loss"],
        "config": config,
        "darklens_version": __version__,
        "optimizer_state": best["optimizer"],
        "rng_state": best["rng"],
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


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
