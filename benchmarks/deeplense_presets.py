"""darklens's `deeplense_model_ii` / `deeplense_model_iii` presets against DeepLenseSim's recipe.

The reference follows DeepLenseSim (github.com/mwt5345/DeepLenseSim, Model_II/sim_*.py and
Model_III/sim_*.py with deeplense/lens.py at commit 1b7fe07) step by step, written here with
lenstronomy directly (none of DeepLenseSim's code is copied or imported):
- lens: SIE of "1e12 Msun" (Einstein radius from DeepLens.mass_to_radius: astropy luminosity
  distances and constants, FlatLambdaCDM(H0=70, Om0=0.3, Ob0=0.05)), e1 = 0.1, e2 = 0, centre 0;
  SHEAR gamma1 = 0.05, gamma2 = 0;
- cdm (make_old_cdm): 25 POINT_MASS, m = (lo + (hi - lo) u)^(1 / (beta + 1)) with lo, hi =
  1e6^(beta+1), 1e10^(beta+1), beta = -0.9; r ~ U(0.25, 2.0)", angle ~ U(0, 2 pi);
- axion (make_vortex(3e10)): m_a = 10^U(-24, -22) eV, l = 0.03" (1e-22 eV / m_a), 100 POINT_MASS
  of 3e8 Msun at linspace(-l, l, 100) along a random angle through the origin;
- source (make_source_light_mag): SERSIC_ELLIPSE of magnitude 20, R = 0.25", n = 1, e1 = -0.1,
  e2 = 0.1, centre U(-0.35, 0.35)" each;
- image (simple_sim_2): SimAPI(numpix=64, kwargs_single_band, kwargs_model) (multi-plane, as
  lens_redshift_list is given: lens keywords reduced for z_source_convention 2.5, source at
  z = 1, pyHalo's cosmology FlatLambdaCDM(67.5, 0.309, 0.049)) with kwargs_numerics
  {'point_source_supersampling_factor': 1}, magnitude2amplitude, then imSim.image; noise:
  sim.noise_for_model(image) (simple_sim_2 computes it; the array it saves is image + image,
  without it: see docs/simulator.md). Bands: Euclid VIS of lenstronomy 1.9.2
  (written out below: lenstronomy 1.14.2's Euclid config has other values) for Model II;
  lenstronomy's HST(band='WFC3_F160W', psf_type='GAUSSIAN') for Model III (lens.py has no 'hst'
  branch; the nearest runnable reading, docs/simulator.md).

darklens renders the same number of images with the preset (`simulate_shard`, independent random
numbers). Compared per class: the total flux of the noisy image (counts/s, sum of pixels) and the
SNR `sqrt(sum(model^2 / (model / t + sigma_bkg^2)))` (darklens's `snr`, computed for the
reference with the SimAPI band's total exposure time and background noise): medians and a
two-sample KS test.

Usage: python benchmarks/deeplense_presets.py [--images N] [--seed S]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

CLASSES = ("no_sub", "cdm", "axion")
PRESET_OF_MODEL = {"ii": "deeplense_model_ii", "iii": "deeplense_model_iii"}

#: lenstronomy 1.9.2, SimulationAPI/ObservationConfig/Euclid.py: Euclid(band='VIS',
#: psf_type='GAUSSIAN', coadd_years=6).kwargs_single_band() (VIS_obs merged with the camera).
EUCLID_VIS_1_9_2 = {
    "read_noise": 4.2,
    "pixel_scale": 0.101,
    "ccd_gain": 3.1,
    "exposure_time": 565.0,
    "sky_brightness": 22.35,
    "magnitude_zero_point": 24.0,
    "num_exposures": 4,
    "seeing": 0.16,
    "psf_type": "GAUSSIAN",
}


def band(model: str) -> dict:
    """kwargs_single_band of DeepLens.set_instrument for Model II ('ii') or III ('iii')."""
    if model == "ii":
        return dict(EUCLID_VIS_1_9_2)
    from lenstronomy.SimulationAPI.ObservationConfig.HST import HST

    return dict(HST(band="WFC3_F160W", psf_type="GAUSSIAN").kwargs_single_band())


@functools.cache
def _astropy_cosmology():
    """DeepLens(H0=70, Om0=0.3, Ob0=0.05): the cosmology of mass_to_radius."""
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=70, Om0=0.3, Ob0=0.05)


@functools.cache
def pyhalo_cosmology():
    """pyHalo's default FlatLambdaCDM (pyHalo/defaults.py, Planck 2018, 2022): DeepLens's
    `astropy_instance`, the `cosmo` of simple_sim_2's SimAPI."""
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=67.5, Om0=0.309, Ob0=0.049)


def mass_to_radius(mass_msun, z_halo: float = 0.5, z_gal: float = 1.0):
    """DeepLens.mass_to_radius: sqrt(4 G M / c^2 (D_L,s - D_L,l) / (D_L,l D_L,s)) [arcsec] with
    luminosity distances D_L and astropy's constants."""
    return np.sqrt(np.asarray(mass_msun, dtype=np.float64)) * _radius_per_root_mass(z_halo, z_gal)


@functools.cache
def _radius_per_root_mass(z_halo: float, z_gal: float) -> float:
    from astropy import units as u
    from astropy.constants import G, M_sun, c

    cosmo = _astropy_cosmology()
    d_l = cosmo.luminosity_distance(z_halo).to(u.m)
    d_s = cosmo.luminosity_distance(z_gal).to(u.m)
    theta = np.sqrt(4 * G * M_sun / c**2 * (d_s - d_l) / (d_l * d_s))
    return float((theta * 206265).value)


def draw_lens_and_source(rng: np.random.Generator, class_name: str):
    """(lens model list, lens kwargs, source kwargs in magnitudes, record) as DeepLens draws
    them for one image of `class_name`."""
    names = ["SIE", "SHEAR"]
    kwargs = [
        {"theta_E": float(mass_to_radius(1e12)), "e1": 0.1, "e2": 0.0, "center_x": 0.0,
         "center_y": 0.0},
        {"gamma1": 0.05, "gamma2": 0.0},
    ]  # fmt: skip
    record = {}
    if class_name == "cdm":
        beta, n_sub = -0.9, 25
        lo, hi = 1e6 ** (beta + 1), 1e10 ** (beta + 1)
        masses = (lo + (hi - lo) * rng.uniform(0, 1, size=n_sub)) ** (1.0 / (beta + 1.0))
        theta_e = mass_to_radius(masses)
        for k in range(n_sub):
            r, th = rng.uniform(0.25, 2.0), rng.uniform(0, 2 * np.pi)
            names.append("POINT_MASS")
            kwargs.append(
                {"theta_E": theta_e[k], "center_x": r * np.sin(th), "center_y": r * np.cos(th)}
            )
        record["masses"] = masses
    elif class_name == "axion":
        m_a = 10 ** rng.uniform(-24, -22)
        half = 0.06 * (2 * m_a) ** -1 * 1e-22  # axion_mass_to_length
        coords = np.linspace(-half, half, 100)
        angle = 2 * np.pi * rng.random()
        theta_e = mass_to_radius(3e10 / 100 * np.ones(100))
        for k in range(100):
            names.append("POINT_MASS")
            kwargs.append(
                {
                    "theta_E": theta_e[k],
                    "center_x": coords[k] * np.cos(angle),
                    "center_y": coords[k] * np.sin(angle),
                }
            )
        record["axion_mass_ev"] = m_a
    cx, cy = rng.uniform(-0.35, 0.35, 2)
    source = {"magnitude": 20, "R_sersic": 0.25, "n_sersic": 1, "e1": -0.1, "e2": 0.1,
              "center_x": cx, "center_y": cy}  # fmt: skip
    return names, kwargs, source, record


def reference_image(rng: np.random.Generator, model: str, class_name: str):
    """(noiseless image, noise, SimAPI) of one DeepLenseSim image (simple_sim_2), counts/s."""
    from lenstronomy.SimulationAPI.sim_api import SimAPI

    names, kwargs_lens, source_mag, _ = draw_lens_and_source(rng, class_name)
    kwargs_model = {
        "lens_model_list": names,
        "lens_redshift_list": [0.5] * len(names),
        "source_light_model_list": ["SERSIC_ELLIPSE"],
        "source_redshift_list": [1.0],
        "cosmo": pyhalo_cosmology(),
        "z_source_convention": 2.5,
        "z_source": 1.0,
    }
    # SimAPI(numpix=64, ...) in lenstronomy 1.9.2; the keyword is num_pix since
    sim = SimAPI(num_pix=64, kwargs_single_band=band(model), kwargs_model=kwargs_model)
    im_sim = sim.image_model_class({"point_source_supersampling_factor": 1})
    _, kwargs_source, _ = sim.magnitude2amplitude(None, [source_mag])
    image = im_sim.image(kwargs_lens, kwargs_source, None)
    noise = sim.noise_for_model(model=image, seed=int(rng.integers(2**31)))
    return image, noise, sim


def snr(model_image, exposure_time_s: float, background_rms: float) -> float:
    """darklens's SNR definition: sqrt(sum(model^2 / var)), var = model / t + sigma_bkg^2."""
    var = np.maximum(model_image, 0.0) / exposure_time_s + background_rms**2
    return float(np.sqrt(np.sum(model_image**2 / var)))


def reference_sample(model: str, class_name: str, n: int, seed: int) -> dict:
    """Flux (sum of the noisy image, counts/s) and SNR of n reference images."""
    rng = np.random.default_rng([seed, CLASSES.index(class_name), 99])
    flux, snrs = [], []
    for _ in range(n):
        image, noise, sim = reference_image(rng, model, class_name)
        flux.append(float((image + noise).sum()))
        snrs.append(snr(image, sim.exposure_time, sim.background_noise))
    return {"flux": np.array(flux), "snr": np.array(snrs)}


def darklens_sample(preset: str, class_name: str, n: int, seed: int) -> dict:
    """Flux (sum of the noisy image, counts/s) and SNR of n images of darklens's preset."""
    from darklens.config import load_config
    from darklens.simulation.shards import simulate_shard

    config = load_config(REPO / "config.yaml")["simulation"]
    common = {k: v for k, v in config.items() if k != "classes"}
    common = {**common, "preset": preset, "images_per_class": n, "images_per_shard": n}
    data = simulate_shard(common, class_name, config["classes"][class_name], 0, seed)
    flux = data["images"].astype(np.float64).sum(axis=(1, 2))
    return {"flux": flux, "snr": np.asarray(data["params"]["snr"], dtype=np.float64), "data": data}


def compare(model: str, class_name: str, n: int, seed: int) -> dict:
    """Medians, their ratio (darklens / reference) and the KS p-value of flux and SNR."""
    from scipy.stats import ks_2samp

    ours = darklens_sample(PRESET_OF_MODEL[model], class_name, n, seed)
    ref = reference_sample(model, class_name, n, seed)
    out = {}
    for key in ("flux", "snr"):
        a, b = np.median(ours[key]), np.median(ref[key])
        out[key] = {
            "darklens": float(a),
            "reference": float(b),
            "ratio": float(a / b),
            "ks_p": float(ks_2samp(ours[key], ref[key]).pvalue),
        }
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--seed", type=int, default=20261127)
    args = parser.parse_args(argv)
    print(f"{args.images} images per class and code, seed {args.seed}")
    print("model class  | flux median: darklens reference ratio KS-p | snr: same")
    for model in ("ii", "iii"):
        for class_name in CLASSES:
            r = compare(model, class_name, args.images, args.seed)
            f, s = r["flux"], r["snr"]
            print(
                f"{model:>5} {class_name:6} | {f['darklens']:8.2f} {f['reference']:8.2f} "
                f"{f['ratio']:6.3f} {f['ks_p']:5.2f} | {s['darklens']:7.1f} {s['reference']:7.1f} "
                f"{s['ratio']:6.3f} {s['ks_p']:5.2f}"
            )


if __name__ == "__main__":
    main()
