"""Simulation presets: named overlays of the `simulation` config, chosen by `simulation.preset`.

A preset sets the keys listed below and leaves every other key as the config has it; `default`
sets nothing (the config file, whose values are darklens's own default task, is used as written).
`resolve` applies the overlay; the simulator calls it for every shard, and the resolved settings
are stored in each file's `config` attribute.

Presets (what each mimics, and its source):
- `deeplense_model_i`: the DeepLense "Model I" data set (Alexander et al. 2020, arXiv:2008.12731;
  public code github.com/mwt5345/DeepLenseSim, Model_I and deeplense/lens.py): 150 x 150 pixels
  of 0.05", Gaussian PSF FWHM 0.087", background rms 0.01, SIE of 1e12 Msun (theta_E = 1.6647"
  with the correct angular-diameter distances; their code used luminosity distances) with
  e1 = 0.1, e2 = 0 and shear gamma1 = 0.05, gamma2 = 0; Sersic source amp 20, R = 0.25", n = 1,
  e1 = -0.1, e2 = 0.1, centre U(-0.35", 0.35"); CDM: exactly 25 point masses, 1e6..1e10 Msun
  with the m^-1.9 slope (their code samples m^-0.9), uniform in area within 2"; axion: a vortex of
  3e10 Msun in 100 point masses, length 2 lambda_dB through the lens centre, m_a = 10^U(-24, -22)
  eV. Changes on purpose: Poisson noise on the model only once (their code applies it twice), a
  fixed exposure of 1778 s (the geometric middle of their 10^U(3, 3.5) s), supersampling 4
  (theirs 1), 5-sigma PSF truncation (theirs 3).
- `euclid`: Euclid VIS-like, as DeepLense Model II (64 x 64): 0.101" pixels and a Gaussian PSF of
  FWHM 0.16" (Euclid Collaboration: Mellier et al. 2024, arXiv:2405.13491, VIS: 0.1" pixels,
  PSF FWHM ~0.16"); a wide-survey depth of 4 x 565 s = 2260 s (Euclid Collaboration:
  Scaramella et al. 2022, arXiv:2108.01201); background rms 0.010 counts/s per pixel, from a sky
  of 22.35 mag/arcsec^2 in VIS with zero point 25.58 AB (0.20 e-/s per pixel) and read noise
  4.5 e- per exposure: sqrt(0.20 x 2260 + 4 x 4.5^2) / 2260 = 0.0102.
- `hst`: HST ACS/WFC in F814W, the camera of the SLACS lenses (Bolton et al. 2008,
  arXiv:0805.1931), on a 64 x 64 cut-out: 0.05" pixels, PSF FWHM 0.09" (ACS instrument handbook,
  F814W), one orbit of 2200 s; background rms 0.0067 counts/s per pixel from a sky of
  22.4 mag/arcsec^2 with zero point 25.94 AB (0.066 e-/s per pixel) and read noise 4.2 e- in 4
  exposures: sqrt(0.066 x 2200 + 4 x 4.2^2) / 2200 = 0.0067. A 64-pixel HST stamp is 3.2" wide,
  so the Einstein radii are 0.6..1.0" and subhalos are placed within 1.2".
Source brightness in `euclid` and `hst` is a lensed galaxy of total AB magnitude ~23 to 24
(amp 10..30 counts/s/arcsec^2 at R_sersic for the sizes drawn).
"""

from __future__ import annotations

import copy

from darklens.physics.cosmology import DEFAULT_COSMOLOGY

_THETA_E_1E12 = round(float(DEFAULT_COSMOLOGY.theta_E_point_mass(1e12, 0.5, 1.0)), 6)

PRESETS: dict[str, dict] = {
    "default": {},
    "deeplense_model_i": {
        "instrument": {
            "n_pix": 150,
            "pixel_scale_arcsec": 0.05,
            "supersampling": 4,
            "psf_fwhm_arcsec": 0.087,
            "psf_kernel_file": None,
            "exposure_time_s": 1778.0,
            "background_rms": 0.01,
        },
        "lens": {
            "z_lens": 0.5,
            "z_source": 1.0,
            "theta_E_arcsec": [_THETA_E_1E12, _THETA_E_1E12],
            "e1": [0.1, 0.1],
            "e2": [0.0, 0.0],
            "gamma1": [0.05, 0.05],
            "gamma2": [0.0, 0.0],
            "center_max_arcsec": 0.0,
        },
        "source": {
            "amp": [20.0, 20.0],
            "R_sersic_arcsec": [0.25, 0.25],
            "n_sersic": [1.0, 1.0],
            "e1": [-0.1, -0.1],
            "e2": [0.1, 0.1],
            "center_max_arcsec": 0.35,
        },
        "lens_light": {"enabled": False},
        "classes": {
            "cdm": {
                "profile": "point_mass",
                "n_subhalos": {"distribution": "fixed", "mean": 25},
                "mass_min_msun": 1.0e6,
                "mass_max_msun": 1.0e10,
                "mass_function_slope": -1.9,
                "radius_arcsec": 2.0,
            },
            "axion": {
                "variant": "vortex",
                "axion_mass_ev": [1.0e-24, 1.0e-22],
                "vortex_mass_msun": 3.0e10,
                "vortex_points": 100,
                "vortex_length_factor": 2.0,
                "radius_arcsec": 0.0,
            },
        },
    },
    "euclid": {
        "instrument": {
            "n_pix": 64,
            "pixel_scale_arcsec": 0.101,
            "supersampling": 4,
            "psf_fwhm_arcsec": 0.16,
            "psf_kernel_file": None,
            "exposure_time_s": 2260.0,
            "background_rms": 0.0102,
        },
        "source": {"amp": [10.0, 30.0]},
    },
    "hst": {
        "instrument": {
            "n_pix": 64,
            "pixel_scale_arcsec": 0.05,
            "supersampling": 4,
            "psf_fwhm_arcsec": 0.09,
            "psf_kernel_file": None,
            "exposure_time_s": 2200.0,
            "background_rms": 0.0067,
        },
        "lens": {"theta_E_arcsec": [0.6, 1.0]},
        "source": {
            "amp": [10.0, 30.0],
            "R_sersic_arcsec": [0.1, 0.25],
            "center_max_arcsec": 0.2,
        },
        "classes": {"cdm": {"radius_arcsec": 1.2}, "axion": {"radius_arcsec": 0.6}},
    },
}


def _overlay(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _overlay(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def resolve(common: dict, class_name: str | None = None, class_settings: dict | None = None):
    """Apply `common["preset"]` (default: "default") to the simulation settings.

    common: the `simulation` section without `classes` (as the simulate rule passes it).
    Returns (resolved common, resolved class settings) as new dicts.
    """
    name = common.get("preset", "default")
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
    preset = PRESETS[name]
    resolved = _overlay(copy.deepcopy(common), {k: v for k, v in preset.items() if k != "classes"})
    settings = copy.deepcopy(class_settings) if class_settings is not None else None
    if settings is not None and class_name in preset.get("classes", {}):
        settings = _overlay(settings, preset["classes"][class_name])
    return resolved, settings
