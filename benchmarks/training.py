"""darklens's training step against the plain per-item loop of the original DeepLense-style recipe,
side by side in one process.

Both train the same model (physics_cnn, image + residual channels, 64 x 64, flips) from the same
initial weights on the same normalised images, with the same Adam settings and torch threads:

- plain: a per-item `Dataset` whose `__getitem__` flips a numpy image at random and returns a
  tensor, batched by a `DataLoader(batch_size=32, shuffle=True)` (the original recipe's loop),
  training the model as that recipe wrote it: conv, batch norm, ReLU, then max-pool, in
  PyTorch's default layout;
- darklens: `batches.epoch_batches` (one index_select of the whole batch from the in-memory
  array, per-batch normalisation and flips as tensor ops) and `train.train_step`, at the
  batch size of config.yaml (and, for reference, at 32), training `models.build_model`'s network:
  the same function with the same weights, with max-pool before ReLU (they commute exactly) and
  channels-last tensors, as `darklens train` runs it.

Rounds alternate between the loops so that a busy machine slows both alike; the median round is
reported. "data wait" is the share of wall time spent getting the next batch (everything outside
the forward/backward/optimizer step).

Usage: python benchmarks/training.py [--images N] [--rounds R] [--threads T] [--device D]
(threads default to config.yaml's training.threads, as a training job uses)
The last line is `ratio: X` (darklens at its configured batch size over the plain loop).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from darklens.config import load_config  # noqa: E402
from darklens.learning.batches import (  # noqa: E402
    channel_stats,
    epoch_batches,
    normaliser,
    to_device,
)
from darklens.learning.channels import build_channels  # noqa: E402
from darklens.learning.models import build_model, seed_layer_order  # noqa: E402
from darklens.learning.train import (  # noqa: E402
    autocast_dtype,
    memory_format,
    resolve_device,
    train_step,
)

ARCHITECTURE, CHANNELS, SIZE, PLAIN_BATCH = "physics_cnn", ["image", "residual"], 64, 32


class FlipDataset(Dataset):
    """The original recipe's dataset: normalised (N, C, H, W) images, flipped per item in numpy."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        image = self.x[i]
        if self.rng.random() < 0.5:
            image = np.flip(image, axis=2)
        if self.rng.random() < 0.5:
            image = np.flip(image, axis=1)
        return torch.tensor(image.copy(), dtype=torch.float32), int(self.y[i])


def images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n lensing-like 64 x 64 images (a noisy ring of random radius) and labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    radius = np.hypot(xx, yy)
    rings = rng.uniform(10, 20, n)[:, None, None]
    stack = np.exp(-0.5 * ((radius - rings) / 1.5) ** 2) + rng.normal(0, 0.05, (n, SIZE, SIZE))
    return stack.astype(np.float32), rng.integers(0, 3, n)


def time_steps(batches, step, device, n_steps) -> tuple[float, float]:
    """(images/s, data-wait share) of the first n_steps batches (xb, yb) of ``batches``, each
    trained by ``step(xb, yb)``; data wait is the time spent getting the next batch."""
    wait = done = 0.0
    start = tick = time.perf_counter()
    for index, (xb, yb) in enumerate(batches):
        xb, yb = xb.to(device), yb.to(device)
        wait += time.perf_counter() - tick
        step(xb, yb)
        done += len(yb)
        if device.type == "cuda":
            torch.cuda.synchronize()
        tick = time.perf_counter()
        if index + 1 == n_steps:
            break
    total = time.perf_counter() - start
    return done / total, wait / total


def time_plain(model, optimizer, x_norm, y, device, n_steps) -> tuple[float, float]:
    """(images/s, data-wait share) of n_steps of the per-item DataLoader loop."""
    loader = DataLoader(FlipDataset(x_norm, y), batch_size=PLAIN_BATCH, shuffle=True)
    model.train()

    def step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return time_steps(loader, step, device, n_steps)


def time_darklens(model, optimizer, scaler, data, labels, index, norm, batch, device, n_steps, gen):
    """(images/s, data-wait share) of n_steps of darklens's epoch_batches + train_step."""
    amp, layout = autocast_dtype(device, True), memory_format(device)
    flips = np.random.default_rng(0)
    model.train()
    batches = epoch_batches(data, labels, index, batch, norm, gen, flips, layout)

    def step(xb, yb):
        train_step(model, optimizer, scaler, amp, xb, yb)

    return time_steps(batches, step, device, n_steps)


def compare(n_images: int, rounds: int, threads: int, device_name: str, log=print) -> float:
    """Run the comparison; returns darklens (configured batch) / plain images per second."""
    torch.set_num_threads(threads)
    device = resolve_device(device_name)
    batch = load_config(REPO / "config.yaml")["training"]["batch_size"]
    raw, y = images(n_images)
    x = build_channels(raw, CHANNELS, smoothing_sigma_px=2.0)
    mean, std = channel_stats(x)
    x_norm = (x - np.asarray(mean, np.float32)[:, None, None]) / np.asarray(std, np.float32)[
        :, None, None
    ]
    data, labels = to_device(x, device), torch.from_numpy(y).to(device)
    norm, index = normaliser(mean, std, device), torch.arange(n_images)
    layout = memory_format(device)

    def fresh():
        torch.manual_seed(0)
        model = build_model(ARCHITECTURE, len(CHANNELS), 3, SIZE).to(device)
        return model, torch.optim.Adam(model.parameters(), lr=1e-3)

    n_plain = max(n_images // PLAIN_BATCH, 1)
    runs = {"plain": [], f"darklens {PLAIN_BATCH}": [], f"darklens {batch}": []}
    gen = torch.Generator().manual_seed(0)

    def plain() -> tuple[float, float]:
        model, optimizer = fresh()
        return time_plain(seed_layer_order(model), optimizer, x_norm, y, device, n_plain)

    def darklens(size: int) -> tuple[float, float]:
        model, optimizer = fresh()
        model = model.to(memory_format=layout)
        scaler = torch.amp.GradScaler(
            device.type, enabled=autocast_dtype(device, True) == torch.float16
        )
        steps = max(n_images // size, 1)
        return time_darklens(
            model, optimizer, scaler, data, labels, index, norm, size, device, steps, gen
        )

    loops = [("plain", plain)]
    loops += [
        (f"darklens {size}", lambda size=size: darklens(size)) for size in (PLAIN_BATCH, batch)
    ]
    for r in range(rounds + 1):  # round 0 warms up (allocator, kernels) and is dropped
        for name, loop in loops[r % 3 :] + loops[: r % 3]:  # rotate who goes first
            runs[name].append(loop())
    log(
        f"{ARCHITECTURE}, {len(CHANNELS)} x {SIZE} x {SIZE}, {n_images} images per round, "
        f"{rounds} rounds, device {device}, torch threads {threads}"
    )
    rate = {}
    for name, results in runs.items():
        results = results[1:]
        rates = [r for r, _ in results]
        k = int(np.argsort(rates)[len(rates) // 2])
        rate[name] = rates[k]
        batch_size = PLAIN_BATCH if name == "plain" else int(name.split()[-1])
        log(
            f"{name:>12} (batch {batch_size:3d}): {rates[k]:8.1f} images/s, data wait "
            f"{100 * results[k][1]:4.1f}% (rounds: {', '.join(f'{r:.0f}' for r in rates)})"
        )
    same = rate[f"darklens {PLAIN_BATCH}"] / rate["plain"]
    log(f"darklens at batch {PLAIN_BATCH} over plain: {same:.2f}")
    return rate[f"darklens {batch}"] / rate["plain"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1024, help="images per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: config.yaml's)"
    )
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    threads = args.threads or load_config(REPO / "config.yaml")["training"]["threads"]
    ratio = compare(args.images, args.rounds, threads, args.device)
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
