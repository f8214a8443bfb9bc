"""One short check of darklens on a CUDA machine (it also runs, smaller, on a CPU).

1. the device: torch, CUDA device, bf16 support, the training precision and memory format;
2. simulate a batch of each class with config.yaml's settings and print images/s (the simulator
   is numpy and numba on the CPU: this is the CPU rate next to the GPU, one process, after a
   warm-up image per class that compiles the numba loops);
3. train one epoch of each registered architecture on 64 x 64 two-channel inputs (the simulated
   images, tiled with flips to --train-images) through `darklens.learning.train.train` and print
   training images/s (warm epoch) and peak GPU memory;
4. interrupt a short run after its first epoch, resume it, and check that the result equals an
   uninterrupted run on this device (RNG states of CUDA, cuDNN determinism);
5. the same seed twice gives identical predictions on this device;
6. on CUDA, benchmarks/training.py's comparison of darklens's loop with the original
   DeepLense-style per-item DataLoader loop (images/s, data wait, ratio).

Usage: python benchmarks/gpu_check.py [--device auto|cpu|cuda] [--train-images N] [--quick]
`--quick` (the default on a CPU) uses small sizes so that it runs in about a minute on 2 cores.
Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from darklens import CLASS_NAMES  # noqa: E402
from darklens.config import load_config  # noqa: E402
from darklens.learning.channels import build_channels  # noqa: E402
from darklens.learning.models import ARCHITECTURES  # noqa: E402
from darklens.learning.train import (  # noqa: E402
    TrainConfig,
    autocast_dtype,
    memory_format,
    resolve_device,
    train,
)
from darklens.simulation.shards import simulate_shard  # noqa: E402

SIGMA_PX = 2.0


class Interrupted(Exception):
    pass


def simulate(per_class: int) -> tuple[np.ndarray, np.ndarray, float]:
    """per_class images of each class with config.yaml's settings; returns images, labels, s."""
    sim = load_config(REPO / "config.yaml")["simulation"]
    common = {k: v for k, v in sim.items() if k != "classes"}
    # one image per class first: compiles (or loads from numba's cache) the simulator's loops,
    # which a long simulation job pays once
    warm = {**common, "images_per_class": 1, "images_per_shard": 1}
    for c in CLASS_NAMES:
        simulate_shard(warm, c, sim["classes"][c], 0, 1)
    common.update(images_per_class=per_class, images_per_shard=per_class)
    t0 = time.perf_counter()
    shards = [simulate_shard(common, c, sim["classes"][c], 0, 1) for c in CLASS_NAMES]
    seconds = time.perf_counter() - t0
    images = np.concatenate([s["images"] for s in shards])
    labels = np.repeat(np.arange(len(CLASS_NAMES)), per_class)
    return images, labels, seconds


def tile(images: np.ndarray, labels: np.ndarray, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n images drawn from the batch, each flipped at random (throughput needs many images)."""
    pick = rng.integers(0, len(images), n)
    out = images[pick]
    lr, ud = rng.random(n) < 0.5, rng.random(n) < 0.5
    out[lr] = out[lr][:, :, ::-1]
    out[ud] = out[ud][:, ::-1, :]
    return out, labels[pick]


def split_of(n: int) -> dict:
    idx = np.arange(n)
    return {
        "train": idx[: n * 8 // 10],
        "val": idx[n * 8 // 10 : n * 9 // 10],
        "test": idx[n * 9 // 10 :],
    }


def run(x, y, cfg, out, log=lambda _: None) -> dict:
    return train(x, y, split_of(len(y)), cfg, out, log=log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--train-images", type=int, default=None)
    parser.add_argument("--per-class", type=int, default=None, help="simulated images per class")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--loop-benchmark", action="store_true", help="also on the CPU")
    args = parser.parse_args()

    device = resolve_device(args.device)
    quick = args.quick or device.type == "cpu"
    n_train = args.train_images or (1200 if quick else 30000)
    per_class = args.per_class or (8 if quick else 16)
    threads = load_config(REPO / "config.yaml")["training"]["threads"] if quick else 8
    torch.set_num_threads(threads)
    amp = autocast_dtype(device, True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__}; device {device} ({name}); threads {threads}")
    if device.type == "cuda":
        print(
            f"cuda {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}, "
            f"bf16 {torch.cuda.is_bf16_supported()}; training precision "
            f"{str(amp).split('.')[-1]}, memory format {memory_format(device)}"
        )

    images, labels, seconds = simulate(per_class)
    n_pix = images.shape[-1]
    print(
        f"simulate: {len(images)} images {n_pix}x{n_pix} in {seconds:.1f} s = "
        f"{len(images) / seconds:.1f} images/s (numpy + numba, CPU, 1 process)"
    )

    rng = np.random.default_rng(0)
    tiled, tiled_labels = tile(images, labels, n_train, rng)
    x2 = build_channels(tiled, ["image", "residual"], SIGMA_PX)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for arch in sorted(ARCHITECTURES):
            cfg = TrainConfig(
                architecture=arch,
                channels=["image", "residual"],
                augment_flips=True,
                max_epochs=2,
                batch_size=64,
                device=args.device,
                threads=threads,
                smoothing_sigma_px=SIGMA_PX,
            )
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            try:
                metrics = run(x2, tiled_labels, cfg, Path(tmp) / arch)
            except Exception as exc:  # report and go on with the other models
                print(f"train {arch}: FAILED ({type(exc).__name__}: {exc})")
                failures += 1
                continue
            history = (Path(tmp) / arch / "history.csv").read_text().splitlines()
            warm = float(history[-1].split(",")[-1])  # epoch 2: no first-call overheads
            n = metrics["n_train"]
            memory = (
                f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
                if device.type == "cuda"
                else ""
            )
            print(
                f"train {arch}: {n} images/epoch, warm epoch {warm:.2f} s (with validation) = "
                f"{n / warm:.0f} images/s{memory}"
            )

        # resume on this device gives the uninterrupted result; same seed twice is identical
        small_x, small_y = x2[:600], tiled_labels[:600]
        cfg = TrainConfig(
            architecture="physics_cnn",
            channels=["image", "residual"],
            augment_flips=True,
            max_epochs=3,
            batch_size=32,
            device=args.device,
            threads=threads,
            smoothing_sigma_px=SIGMA_PX,
        )
        run(small_x, small_y, cfg, Path(tmp) / "straight")
        run(small_x, small_y, cfg, Path(tmp) / "again")

        def crash(line: str) -> None:
            if line.startswith("epoch   2"):
                raise Interrupted

        try:
            run(small_x, small_y, cfg, Path(tmp) / "resumed", log=crash)
        except Interrupted:
            pass
        run(small_x, small_y, cfg, Path(tmp) / "resumed")

        def same(a: str, b: str) -> bool:
            read = lambda run: (Path(tmp) / run / "predictions.csv").read_text()  # noqa: E731
            return read(a) == read(b)

        for label, ok in (
            ("same seed twice: identical predictions", same("straight", "again")),
            (
                "interrupted after epoch 1 and resumed: identical predictions",
                same("straight", "resumed"),
            ),
        ):
            print(f"{label}: {'yes' if ok else 'NO'}")
            failures += not ok
    if device.type == "cuda" or args.loop_benchmark:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from training import compare  # benchmarks/training.py

        ratio = compare(8192 if device.type == "cuda" else 512, 3, threads, args.device)
        print(f"training loop ratio (darklens / per-item DataLoader): {ratio:.2f}")
    print("gpu_check:", "ok" if not failures else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
