"""The training array on its device, and the batches drawn from it.

The raw (N, C, H, W) float32 array is the data set: on the CPU it is used in place (no copy), on
CUDA it is copied once to the device. Normalisation (the training split's per-channel mean and
std) and flips are applied per batch as tensor operations: no per-image Python and no worker
processes, so the loop never waits for data (benchmarks/training.py measures it against a
per-item DataLoader).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from darklens.io.image_stacks import CHUNK_IMAGES


def channel_stats(x: np.ndarray, index=None) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of x[index] ((N, C, H, W); all rows by default), in float64.

    Two passes over chunks of CHUNK_IMAGES images, so no temporary of the array's size is made.
    A constant channel gets std 1.
    """
    index = np.arange(len(x)) if index is None else np.asarray(index)
    chunks = [index[i : i + CHUNK_IMAGES] for i in range(0, len(index), CHUNK_IMAGES)]
    count = len(index) * x.shape[2] * x.shape[3]
    total = sum(x[rows].sum(axis=(0, 2, 3), dtype=np.float64) for rows in chunks)
    mean = total / count
    squares = sum(
        np.square(x[rows].astype(np.float64) - mean[None, :, None, None]).sum(axis=(0, 2, 3))
        for rows in chunks
    )
    std = np.sqrt(squares / count)
    std = np.where(std > 0, std, 1.0)
    return mean.tolist(), std.tolist()


def normaliser(mean, std, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as float32 (1, C, 1, 1) tensors on `device`, for `normalise_batch`."""
    shape = (1, len(mean), 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(shape)
    return mean_t, std_t


def normalise_batch(xb: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(xb - mean) / std per channel of a raw (B, C, H, W) batch (what training and prediction
    apply)."""
    mean_t, std_t = norm
    return (xb - mean_t) / std_t


def normalise(x: np.ndarray, mean, std) -> np.ndarray:
    """(x - mean) / std per channel of (N, C, H, W) x, as float32 (numpy twin of
    normalise_batch, equal to it within float32 rounding)."""
    mean = np.asarray(mean, dtype=np.float64)[None, :, None, None]
    std = np.asarray(std, dtype=np.float64)[None, :, None, None]
    return ((x - mean) / std).astype(np.float32)


def flip_batch(xb: torch.Tensor, left_right: torch.Tensor, up_down: torch.Tensor) -> torch.Tensor:
    """Flip the images of a (B, C, H, W) batch where the (B,) boolean masks say so."""
    b = xb.shape[0]
    xb = torch.where(left_right.view(b, 1, 1, 1), xb.flip(-1), xb)
    return torch.where(up_down.view(b, 1, 1, 1), xb.flip(-2), xb)


def to_device(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """The (N, C, H, W) float32 array as a tensor: shared with numpy on the CPU, else copied in
    chunks (no second host copy)."""
    if device.type == "cpu":
        return torch.from_numpy(x)
    data = torch.empty(x.shape, dtype=torch.float32, device=device)
    for start in range(0, len(x), CHUNK_IMAGES):
        data[start : start + CHUNK_IMAGES].copy_(torch.from_numpy(x[start : start + CHUNK_IMAGES]))
    return data


def epoch_batches(
    data: torch.Tensor,
    labels: torch.Tensor,
    index: torch.Tensor,
    batch_size: int,
    norm: tuple[torch.Tensor, torch.Tensor],
    shuffle_gen: torch.Generator,
    flip_rng: np.random.Generator | None,
    layout: torch.memory_format = torch.contiguous_format,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of training batches: rows `index` of raw `data` in a seeded random order,
    normalised, flipped when `flip_rng` is given, in memory format `layout`.

    The flips of the whole epoch are drawn from `flip_rng` in one call (per batch of b images:
    b left-right draws, then b up-down draws, each flip with probability 1/2) and copied to the
    device once, so nothing inside the epoch waits for the device.
    """
    order = index[torch.randperm(len(index), generator=shuffle_gen)].to(data.device)
    flips = None
    if flip_rng is not None:
        flips = torch.from_numpy(flip_rng.random(2 * len(order)) < 0.5).to(data.device)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        xb = normalise_batch(data.index_select(0, rows), norm)
        if flips is not None:
            b, first = len(rows), 2 * start
            xb = flip_batch(xb, flips[first : first + b], flips[first + b : first + 2 * b])
        yield xb.contiguous(memory_format=layout), labels.index_select(0, rows)
