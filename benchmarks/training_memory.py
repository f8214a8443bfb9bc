"""Peak resident memory of `darklens train` at a given number of images per class.

Writes darklens class and features files (64 x 64 lensing-like images: a noisy ring) for the
three classes, a 70/15/15 split, then runs `python -m darklens train` for one epoch of the
physics model (image + residual: the largest input) on the CPU as a child process and reports
its peak resident set size (getrusage of that child), next to the size of the float32 array.

Usage: python benchmarks/training_memory.py --per-class 3000 [--per-class 30000 ...]
       [--workdir DIR] [--epochs 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from darklens import CLASS_NAMES  # noqa: E402
from darklens.io.class_files import write_features_file, write_image_file  # noqa: E402
from darklens.io.split_file import write_split  # noqa: E402
from darklens.learning.channels import residual  # noqa: E402
from darklens.learning.split import stratified_split  # noqa: E402

SIZE, SIGMA_PX, CHUNK = 64, 2.0, 2000
SPEC = {"architecture": "physics_cnn", "channels": ["image", "residual"], "augment_flips": True}


def ring_images(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    radius = np.hypot(xx, yy)
    out = np.empty((n, SIZE, SIZE), dtype=np.float32)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        rings = rng.uniform(10, 20, m)[:, None, None]
        out[start : start + m] = np.exp(-0.5 * ((radius - rings) / 1.5) ** 2) + rng.normal(
            0, 0.05, (m, SIZE, SIZE)
        )
    return out


def write_data(folder: Path, per_class: int) -> tuple[list[Path], list[Path], Path]:
    images, features = [], []
    for c, name in enumerate(CLASS_NAMES):
        stack = ring_images(per_class, seed=c)
        data = {
            "images": stack,
            "image_index": np.arange(per_class),
            "params": {"snr": np.zeros(per_class)},
            "subhalos": {},
            "subhalo_offsets": np.zeros(per_class + 1, dtype=np.int64),
        }
        write_image_file(folder / f"{name}.h5", data, {"class_name": name})
        write_features_file(folder / "features" / f"{name}.h5", residual(stack, SIGMA_PX), {})
        images.append(folder / f"{name}.h5")
        features.append(folder / "features" / f"{name}.h5")
    split = stratified_split(
        dict.fromkeys(CLASS_NAMES, per_class), {"train": 0.7, "val": 0.15, "test": 0.15}, 0
    )
    write_split(folder / "split.json", split)
    return images, features, folder / "split.json"


def peak_rss_mb(command: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one child process."""
    t0 = time.perf_counter()
    process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(REPO / "workflow")})
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command[:4])}... failed")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def measure(per_class: int, workdir: Path, epochs: int, threads: int) -> dict:
    folder = workdir / f"per_class_{per_class}"
    images, features, split = write_data(folder, per_class)
    training = {
        "max_epochs": epochs,
        "min_epochs": epochs,
        "early_stopping": {"patience": epochs, "min_delta": 0.0},
        "lr_schedule": {"kind": "none", "factor": 0.5, "patience": 2, "min_learning_rate": 1e-5},
        "batch_size": 64,
        "learning_rate": 1e-3,
        "weight_decay": 1e-4,
        "device": "cpu",
    }
    command = [
        sys.executable, "-m", "darklens", "train", "--model", "physics",
        "--model-spec", json.dumps(SPEC), "--training", json.dumps(training), "--seed", "0",
        "--split", str(split), "--images", *map(str, images),
        "--residuals", *map(str, features), "--smoothing-sigma-px", str(SIGMA_PX),
        "--threads", str(threads), "--out-dir", str(folder / "run"),
    ]  # fmt: skip
    peak, seconds = peak_rss_mb(command)
    array_mb = 3 * per_class * len(SPEC["channels"]) * SIZE * SIZE * 4 / 2**20
    return {"per_class": per_class, "peak_rss_mb": peak, "array_mb": array_mb, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-class", type=int, action="append", required=True)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for per_class in args.per_class:
            r = measure(per_class, Path(tmp), args.epochs, args.threads)
            print(
                f"{r['per_class']} images per class: peak RSS {r['peak_rss_mb']:.0f} MiB "
                f"(float32 image+residual array {r['array_mb']:.0f} MiB), "
                f"{args.epochs} epoch(s) in {r['seconds']:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
