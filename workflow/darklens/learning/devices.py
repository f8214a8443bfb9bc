"""Which accelerators this machine has, answered without importing torch (for the workflow)."""

from __future__ import annotations

from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # one entry per GPU the NVIDIA driver sees


def nvidia_gpu_count() -> int:
    """Number of NVIDIA GPUs the driver lists here (0 without a driver)."""
    try:
        return sum(1 for _ in NVIDIA_GPUS.iterdir())
    except OSError:
        return 0
