"""What a training job asks of the machine: accelerators (found without importing torch) and
memory, both answered from the config alone, for the workflow's resources."""

from __future__ import annotations

from pathlib import Path

from darklens import CLASS_NAMES
from darklens.config import import_folder

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one entry per GPU the NVIDIA driver sees
PROCESS_MB = 1500  # a training process without its data (measured: docs/training.md, Memory)
DATA_OVERHEAD = 1.2  # peak / size of the float32 training array (the same place)


def nvidia_gpu_count() -> int:
    """Number of NVIDIA GPUs the driver lists here (0 without a driver)."""
    try:
        return sum(1 for _ in NVIDIA_GPUS.iterdir())
    except OSError:
        return 0


def training_gpus(device: str) -> int:
    """GPUs a training job holds: 1 for device cuda, or auto with an NVIDIA GPU here; else 0."""
    if device == "auto":
        return min(nvidia_gpu_count(), 1)
    return int(device == "cuda")


def training_set_shape(config: dict, n_channels: int) -> tuple[int, int, int]:
    """(images, channels, side in px) of a training set: from the simulation settings, or for
    imported images from the file count and the first image's side."""
    if not config["import"]["root"]:
        sim = config["simulation"]
        return len(CLASS_NAMES) * sim["images_per_class"], n_channels, sim["instrument"]["n_pix"]
    from darklens.io.npy import load_image

    n, side = 0, 0
    for cls in CLASS_NAMES:
        files = sorted(Path(import_folder(config, cls)).glob("*.npy"))
        n += len(files)
        if files and not side:
            side = load_image(files[0], config["import"]["allow_pickle"]).shape[0]
    return n, n_channels, side


def training_memory_mb(config: dict, n_channels: int, attempt: int = 1) -> int:
    """Memory [MB] of a training job: the float32 training set, once, plus the process; doubled
    on each retry (`attempt` counts from 1)."""
    n, channels, side = training_set_shape(config, n_channels)
    data_mb = n * channels * side * side * 4 / 2**20
    return int((PROCESS_MB + DATA_OVERHEAD * data_mb) * attempt)
