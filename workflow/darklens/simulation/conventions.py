"""The `conventions` attribute of a class file: everything another code needs to re-render its
images from the stored /params and /subhalos (lenstronomy's profile names and the mapping of each
column to their keywords, the pixel grid, PSF, supersampling, noise model, cosmology and
distances), and darklens's recipe for what is not stored (granule fields).
"""

from __future__ import annotations

import hashlib

import numpy as np

from darklens import CLASS_NAMES
from darklens.physics.cosmology import DEFAULT_COSMOLOGY as COSMOLOGY
from darklens.physics.cosmology import (
    G_SI,
    M_SUN_KG,
    MPC_M,
    RHO_CRIT0_H2_MSUN_MPC3,
    concentration_subhalo,
)
from darklens.physics.instrument import PSF_TRUNCATION_SIGMA, gaussian_psf_kernel, load_psf_kernel
from darklens.simulation.render import MACRO_TOLERANCE_ARCSEC
from darklens.simulation.substructure import (
    GRID_TOLERANCE_ARCSEC,
    MASS_COMPENSATION_MODES,
    VORTEX_COMPENSATION_DISKS,
)

#: Version of the `conventions` attribute's layout (`file_conventions`).
CONVENTIONS_VERSION = 2  # 2: /compensation_disks (several disks per image)
#: A pixelated PSF kernel is stored in `conventions` when it has at most this many entries (an
#: HDF5 attribute holds < 64 KiB); a larger one is named by its file and sha256 only.
MAX_STORED_KERNEL_ENTRIES = 1600

_SERSIC = (
    "lenstronomy SERSIC_ELLIPSE: I = amp exp(-b_n ((R / R_sersic)^(1/n_sersic) - 1)), "
    "b_n = 1.9992 n_sersic - 0.3271, R = sqrt(q x'^2 + y'^2 / q) floored at 1e-4 arcsec, "
    "(x', y') the offset from (center_x, center_y) rotated by phi = atan2(e2, e1) / 2, "
    "q = (1 - |e|) / (1 + |e|), |e| = sqrt(e1^2 + e2^2); amp is the surface brightness at "
    "R_sersic [counts/s/arcsec^2]"
)


def _columns(prefix: str, names) -> dict:
    return {name: f"params/{prefix}{name}" for name in names}


def _psf_conventions(instrument_cfg: dict, psf_kernel=None, psf_kernel_file=None) -> dict:
    """The PSF entry of `file_conventions`, chosen as `render.build_instrument` chooses it."""
    edges = (
        "convolution of the binned image, continued past its edge by its edge values "
        "(scipy mode 'nearest' / numpy pad mode 'edge')"
    )
    if psf_kernel is None and instrument_cfg.get("psf_kernel_file"):
        psf_kernel_file = instrument_cfg["psf_kernel_file"]
        psf_kernel = load_psf_kernel(psf_kernel_file)
    if psf_kernel is not None:
        kernel = np.asarray(psf_kernel, dtype=np.float64)
        entry = {
            "type": "pixel kernel (lenstronomy PSF(psf_type='PIXEL', kernel_point_source="
            "kernel) pads with zeros instead: it differs within the kernel's half-width of the "
            "edges)",
            "kernel_file": None if psf_kernel_file is None else str(psf_kernel_file),
            "shape": list(kernel.shape),
            "kernel_sha256": hashlib.sha256(np.ascontiguousarray(kernel).tobytes()).hexdigest(),
            "kernel": "normalised float64 kernel[row = y, column = x] centred on its middle "
            "entry, in kernel_values (absent when larger than "
            f"{MAX_STORED_KERNEL_ENTRIES} entries: then read kernel_file)",
            "edges": edges,
        }
        if kernel.size <= MAX_STORED_KERNEL_ENTRIES:
            entry["kernel_values"] = kernel.tolist()
        return entry
    fwhm = instrument_cfg.get("psf_fwhm_arcsec")
    if not fwhm:
        return {"type": "none (no convolution)"}
    half = gaussian_psf_kernel(fwhm, instrument_cfg["pixel_scale_arcsec"]).shape[0] // 2
    return {
        "type": "gaussian (lenstronomy PSF(psf_type='GAUSSIAN', fwhm, pixel_size, "
        f"truncation={PSF_TRUNCATION_SIGMA:g}))",
        "fwhm_arcsec": float(fwhm),
        "kernel": "exp(-r^2 / (2 sigma^2)), sigma = fwhm / 2.3548, sampled at pixel centres, "
        f"truncated to half-width max(round({PSF_TRUNCATION_SIGMA:g} sigma / pixel), 1) "
        "pixels, normalised to sum 1",
        "half_width_pixels": int(half),
        "edges": edges,
    }


def _substructure_conventions(class_name: str, settings: dict, z_lens: float) -> dict:
    """The class's substructure entry of `file_conventions`."""
    positions = (
        "absolute: the same frame as params/lens_center_x, the lens centre already added "
        "(do not add it again)"
    )
    rows = "image k's rows of /subhalos are offset[k]:offset[k+1] (/subhalos/offset)"
    point_mass = {
        "lenstronomy": "POINT_MASS, one per row",
        "theta_E": "sqrt(subhalos/mass_msun / (pi sigma_crit_msun_per_arcsec2)) [arcsec]",
        "center_x": "subhalos/x_arcsec",
        "center_y": "subhalos/y_arcsec",
    }
    if class_name == "no_sub":
        return {"model": "none: SIE + SHEAR only; /subhalos is empty"}
    if class_name == "cdm" and settings.get("profile", "point_mass") == "point_mass":
        return {"model": "cdm point masses", "rows": rows, "positions": positions, **point_mass}
    if class_name == "cdm":
        pivot = concentration_subhalo(1e8)
        slope = float(np.log(concentration_subhalo(1e9) / pivot) / np.log(10.0))
        factor = settings.get("truncation_factor")
        return {
            "model": "cdm truncated NFW halos",
            "rows": rows,
            "positions": positions,
            "lenstronomy": "TNFW, one per row (Baltz et al. 2009; rho0 from alpha_Rs by the "
            "untruncated NFW relation, lenstronomy's convention)",
            "mass": "subhalos/mass_msun is M200 (mean density 200 x the critical density at "
            "z_lens) [Msun]",
            "c200": f"{float(pivot):g} (M200 / 1e8 Msun)^{slope:.2f}",
            "Rs": "r200 / c200 / D_l [arcsec], r200 = (3 M200 / (800 pi rho_crit(z_lens)))^(1/3)",
            "alpha_Rs": "4 rho0 Rs^2 (1 - ln 2) / Sigma_crit, rho0 = (200/3) rho_crit c200^3 / "
            "(ln(1 + c200) - c200 / (1 + c200)) (physical units, then / D_l): lenstronomy's "
            "LensCosmo(z_lens, z_source, cosmo).nfw_physical2angle(M200, c200)",
            "r_trunc": f"truncation_factor Rs, truncation_factor = {factor}",
            "center_x": "subhalos/x_arcsec",
            "center_y": "subhalos/y_arcsec",
            "rho_crit_z_lens_msun_per_mpc3": float(COSMOLOGY.critical_density(z_lens)),
        }
    if settings.get("variant", "vortex") == "vortex":
        return {
            "model": "axion vortex, stored as its point masses",
            "rows": rows + " (vortex_points points, each vortex_mass_msun / vortex_points)",
            "positions": positions,
            **point_mass,
            "segment": "the points are the mid-points of vortex_points equal parts of a segment "
            "of params/vortex_length_arcsec at params/vortex_angle_rad (from +x toward +y)",
        }
    return {
        "model": "axion granules: a Gaussian random field of convergence on the ray grid, "
        "deflection by a free-space FFT Poisson solve",
        "stored": "params/kappa_rms (its rms over the ray grid) and "
        "params/granule_length_arcsec (l of its correlation sigma_kappa^2 exp(-r^2 / (2 l^2)), "
        f"sigma_kappa = {settings.get('sigma_kappa')}); the field itself is not "
        "stored, and no other code can re-make it from this file",
        "regenerate": "darklens only: darklens.simulation.shards.resimulate_image(attrs, "
        "image_index) re-runs the image from numpy SeedSequence(seed, spawn_key=(class index, "
        "image index)); its .substructure.field_convergence is kappa on the ray grid, "
        ".substructure.field_deflection(*instrument.ray_grid()) the deflection [arcsec] "
        "(darklens.simulation.substructure._granules, "
        "darklens.physics.lensing.fft_poisson.gaussian_random_field)",
    }


def file_conventions(
    common: dict,
    class_name: str,
    class_settings: dict,
    psf_kernel: np.ndarray | None = None,
    psf_kernel_file=None,
) -> dict:
    """The `conventions` attribute of a class file: how every image is re-rendered from the
    stored /params and /subhalos (lenstronomy's profile names and the mapping of each column to
    its keywords, grid, PSF, supersampling, noise, cosmology and distances), and the darklens
    recipe for what is not stored (granule fields).

    common, class_settings: the preset-resolved settings (`presets.resolve`). psf_kernel: the
    kernel overriding the config's PSF (`write_shard`'s psf_kernel_path), or None.
    JSON-serialisable; the docs (README "The HDF5 files", docs/simulator.md) describe it.
    """
    instrument = common["instrument"]
    z_l, z_s = float(common["lens"]["z_lens"]), float(common["lens"]["z_source"])
    return {
        "version": CONVENTIONS_VERSION,
        **_grid_conventions(instrument),
        **_lens_and_light_conventions(common),
        "substructure": _substructure_conventions(class_name, class_settings, z_l),
        "compensation": _compensation_conventions(class_settings),
        "psf": _psf_conventions(instrument, psf_kernel, psf_kernel_file),
        **_noise_conventions(instrument),
        "cosmology": _cosmology_conventions(z_l, z_s),
        **_reproduction_conventions(),
    }


def _grid_conventions(instrument: dict) -> dict:
    return {
        "grid": "img[i, j] (row i, column j; N = n_pix) is the pixel centred at "
        "x_j = (j - (N-1)/2) pixel_scale_arcsec, y_i = (i - (N-1)/2) pixel_scale_arcsec "
        "[arcsec]: lenstronomy's image[y, x] layout (x along axis 1, y along axis 0; plot with "
        "origin='lower'). Every stored position (lens, source, lens light, subhalos, "
        "compensation) is absolute in this frame",
        "n_pix": int(instrument["n_pix"]),
        "pixel_scale_arcsec": float(instrument["pixel_scale_arcsec"]),
        "supersampling": int(instrument["supersampling"]),
        "rendering": "rays at the s x s sub-pixel centres of every pixel (s = supersampling), "
        "beta = theta - alpha(theta) with alpha the sum of every lens component; pixel "
        "[counts/s] = the mean over its rays of source(beta) + lens_light(theta) "
        "[counts/s/arcsec^2] x pixel area; then the PSF. lenstronomy ImageModel with "
        "kwargs_numerics={'supersampling_factor': s} renders the same",
    }


def _lens_and_light_conventions(common: dict) -> dict:
    sersic_names = ("amp", "R_sersic", "n_sersic", "e1", "e2", "center_x", "center_y")
    lens_light = common.get("lens_light", {}).get("enabled", False)
    return {
        "lens": [
            {
                "lenstronomy": "SIE",
                "theta_E": "params/theta_E",
                "e1": "params/e1",
                "e2": "params/e2",
                "center_x": "params/lens_center_x",
                "center_y": "params/lens_center_y",
            },
            {
                "lenstronomy": "SHEAR",
                "gamma1": "params/gamma1",
                "gamma2": "params/gamma2",
                "ra_0": 0.0,
                "dec_0": 0.0,
                "note": "about the origin (0, 0), not the lens centre",
            },
        ],
        "source": {"lenstronomy": "SERSIC_ELLIPSE", **_columns("source_", sersic_names)},
        "lens_light": (
            {
                "lenstronomy": "SERSIC_ELLIPSE, unlensed, added to the lensed source",
                **_columns("lens_light_", sersic_names),
            }
            if lens_light
            else "none (lens_light.enabled is false)"
        ),
        "sersic": _SERSIC,
    }


def _compensation_conventions(class_settings: dict) -> dict:
    mode = class_settings.get("mass_compensation", MASS_COMPENSATION_MODES[0])
    return {
        "mode": mode,
        "meaning": "sheet: negative convergence following the ensemble's mean density of the "
        "class's substructure, so its mean enclosed mass is no_sub's: cdm one uniform disk "
        "over radius_arcsec; an axion vortex VORTEX_COMPENSATION_DISKS = "
        f"{VORTEX_COMPENSATION_DISKS} concentric disks removing the mean enclosed mass of a "
        "line centred uniformly within radius_arcsec, randomly oriented, at every disk "
        "radius (darklens.simulation.substructure.vortex_enclosed_fraction); none: nothing",
        "rows": "image k's disks are rows offset[k]:offset[k+1] of /compensation_disks "
        "(/compensation_disks/offset): 0 rows = no compensation, 1 for cdm, "
        f"{VORTEX_COMPENSATION_DISKS} for a vortex",
        "profile": "each row a uniform disk of convergence compensation_disks/kappa (either "
        "sign; their sum over an image is params/compensation_kappa, the convergence at the "
        "centre, < 0) within r <= compensation_disks/radius_arcsec = R (the largest is "
        "params/compensation_radius_arcsec) of (params/compensation_center_x_arcsec, "
        "_y_arcsec), 0 outside: deflection kappa (dx, dy) inside, kappa R^2 (dx, dy) / r^2 "
        "outside; summed over the rows; part of the substructure; total mass "
        "-params/compensation_mass_msun",
        "lenstronomy": "no exact equivalent: per row CONVERGENCE(kappa, ra_0, dec_0) inside R "
        "plus POINT_MASS of mass pi kappa R^2 outside; or ElliSLICE(a = R (1 + 1e-7), b = R, "
        "psi = 0, sigma_0 = kappa), the same to ~1e-7",
    }


def _noise_conventions(instrument: dict) -> dict:
    return {
        "noise": "noisy = Poisson(max(model, 0) exposure_time_s) / exposure_time_s + "
        "Normal(0, background_rms) [counts/s per pixel], drawn last from the image's "
        "generator; var = max(model, 0) / exposure_time_s + background_rms^2",
        "smooth_model": "/smooth_model (N, H, W) float32 [counts/s per pixel]: each image's "
        "noiseless model without substructure (and without its compensation), the same "
        "rendering as /images before substructure and noise; for no_sub the noiseless image. "
        "The truth behind the oracle_residual channel (docs/features.md)",
        "exposure_time_s": float(instrument["exposure_time_s"]),
        "background_rms": float(instrument["background_rms"]),
    }


def _cosmology_conventions(z_l: float, z_s: float) -> dict:
    return {
        "model": "flat LambdaCDM without radiation (astropy FlatLambdaCDM(H0, Om0, "
        "Tcmb0=0)); D_ls = (chi_s - chi_l) / (1 + z_s); Sigma_crit = c^2 D_s / "
        "(4 pi G D_l D_ls)",
        "H0_km_s_mpc": COSMOLOGY.H0,
        "Om0": COSMOLOGY.Om0,
        "constants": f"lenstronomy 1.14.2's: G = {G_SI} m^3/kg/s^2, M_sun = {M_SUN_KG} "
        f"kg, Mpc = {MPC_M} m, rho_crit0 = {RHO_CRIT0_H2_MSUN_MPC3:.9g} h^2 Msun/Mpc^3 "
        "(lenstronomy's LensCosmo gives the same numbers)",
        "z_lens": z_l,
        "z_source": z_s,
        "D_l_mpc": float(COSMOLOGY.angular_diameter_distance(z_l)),
        "D_s_mpc": float(COSMOLOGY.angular_diameter_distance(z_s)),
        "D_ls_mpc": float(COSMOLOGY.angular_diameter_distance_z1z2(z_l, z_s)),
        "sigma_crit_msun_per_arcsec2": float(COSMOLOGY.sigma_crit(z_l, z_s)),
    }


def _reproduction_conventions() -> dict:
    return {
        "randomness": "image k of class c (index in "
        f"{list(CLASS_NAMES)}) draws from numpy default_rng(SeedSequence(seed, spawn_key=(c, "
        "k))); darklens.simulation.shards.resimulate_image(attrs, k) re-runs it",
        "accuracy": "darklens's deflections are within "
        f"{MACRO_TOLERANCE_ARCSEC:g} arcsec (SIE + shear) and {GRID_TOLERANCE_ARCSEC:g} arcsec "
        "(subhalo populations) of the exact profiles at every ray, surface brightness in "
        "float32; a lenstronomy re-render of the stored parameters matches the noiseless images "
        "to ~1e-6 of the peak (1.1e-5 measured for a compact vortex; tests/test_rerender.py "
        "requires 3e-5)",
    }
