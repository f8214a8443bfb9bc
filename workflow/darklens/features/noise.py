"""The per-pixel noise of an image: the simulator's (and the fitter's) noise model.

sigma^2 = background_rms^2 + max(model, 0) / exposure_time_s  [(counts/s per pixel)^2]

with `model` a noiseless image [counts/s per pixel] (Poisson noise on model * exposure_time_s
counts, plus a Gaussian background of rms `background_rms` counts/s per pixel;
`darklens.physics.instrument.Instrument.variance`). The instrument values come from the class
file's stored (preset-resolved) config, or from a fit file's `instrument` attribute (the same
section); imported classes store no background rms, so they have no noise model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from darklens.io.class_files import DataError, read_instrument_section

NOISE_DEFINITION = (
    "sigma = sqrt(background_rms^2 + max(model, 0) / exposure_time_s) [counts/s per pixel], "
    "model the noiseless image"
)


@dataclass(frozen=True)
class NoiseModel:
    """exposure_time_s: unit s (> 0); background_rms: unit counts/s per pixel (>= 0, and the
    sigma must stay > 0: a zero background needs a positive model everywhere)."""

    exposure_time_s: float
    background_rms: float

    def __post_init__(self) -> None:
        t, rms = float(self.exposure_time_s), float(self.background_rms)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"exposure_time_s must be a positive number, got {t}")
        if not (math.isfinite(rms) and rms >= 0):
            raise ValueError(f"background_rms must be a number >= 0, got {rms}")

    @classmethod
    def from_section(cls, section: dict, source="instrument") -> NoiseModel:
        """From an instrument section (exposure_time_s, background_rms)."""
        try:
            return cls(float(section["exposure_time_s"]), float(section["background_rms"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: no usable noise model in its instrument ({exc})") from None

    def sigma(self, model: np.ndarray) -> np.ndarray:
        """Per-pixel sigma [counts/s per pixel], float64, of a noiseless image `model`
        [counts/s per pixel]; ValueError where it would be 0 (no background, no flux)."""
        variance = np.maximum(np.asarray(model, dtype=np.float64), 0.0) / self.exposure_time_s
        variance += self.background_rms**2
        if not np.all(variance > 0):
            raise ValueError("the noise sigma is 0 somewhere (background_rms 0 and no flux)")
        return np.sqrt(variance)


def noise_model_of_class_file(path) -> NoiseModel:
    """The noise model of a simulated class file; DataError (one line) for one without its
    instrument (imported images)."""
    section = read_instrument_section(path)
    if section is None:
        raise DataError(
            f"{path}: no stored instrument (imported images?): its noise model (exposure time, "
            "background rms) is unknown"
        )
    return NoiseModel.from_section(section, path)
