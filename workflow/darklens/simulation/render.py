"""Simulate lensing images of one dark-matter class.

The recipe of one image: draw a macro lens (SIE + external shear) and an elliptical Sersic source,
draw the class's substructure (none, CDM subhalos, or an axion vortex / granule field), ray-shoot a
supersampled grid in float64, bin to pixels, convolve with the PSF and add noise.

Rendering (`render_models`) makes the noiseless image with substructure and the same image
without it in one pass: the macro deflection (SIE + shear: interpolated from the pixel centres
within MACRO_TOLERANCE_ARCSEC, exact near the SIE centre; `ray_deflections`) and the
substructure's far field are interpolated together, the substructure's near fields added
(within `GRID_TOLERANCE_ARCSEC` of the exact sum, `Substructure.ray_field`), with the
mass-compensation disk(s) (exact at every ray; part of the substructure), and the two source
evaluations, binnings and PSF convolutions run as one stacked array. `substructure_chi`
compares the two: the image with substructure and its compensating disk against the image with
neither.

Randomness: image `k` of class `c` uses `SeedSequence(seed, spawn_key=(c, k))`, so an image does
not depend on the shard it lands in, on how many shards there are, or on the order jobs ran in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from darklens import CLASS_NAMES
from darklens.physics.instrument import (
    Instrument,
    gaussian_psf_kernel,
    load_psf_kernel,
    pixel_coordinates,
)
from darklens.physics.lensing.grid import MARGIN, lagrange_matrix, lagrange_upsample
from darklens.physics.lensing.sie import sie_deflection_inplace, sie_interpolation_radius
from darklens.physics.light import SersicEllipse
from darklens.physics.sampling import symmetric_pair, uniform
from darklens.simulation.substructure import SUBSTRUCTURE_MODELS, Substructure

UNITS = {
    "images": "counts/s per pixel",
    "theta_E": "arcsec",
    "e1": "dimensionless",
    "e2": "dimensionless",
    "gamma1": "dimensionless",
    "gamma2": "dimensionless",
    "lens_center_x": "arcsec",
    "lens_center_y": "arcsec",
    "source_amp": "counts/s/arcsec^2",
    "source_R_sersic": "arcsec",
    "source_n_sersic": "dimensionless",
    "source_e1": "dimensionless",
    "source_e2": "dimensionless",
    "source_center_x": "arcsec",
    "source_center_y": "arcsec",
    "lens_light_amp": "counts/s/arcsec^2",
    "lens_light_R_sersic": "arcsec",
    "lens_light_n_sersic": "dimensionless",
    "lens_light_e1": "dimensionless",
    "lens_light_e2": "dimensionless",
    "lens_light_center_x": "arcsec",
    "lens_light_center_y": "arcsec",
    "snr": "dimensionless",
    "peak_snr": "dimensionless",
    "substructure_chi": "dimensionless",
    "n_subhalos": "count",
    "substructure_mass_msun": "Msun",
    "axion_mass_ev": "eV",
    "de_broglie_arcsec": "arcsec",
    "vortex_length_arcsec": "arcsec",
    "vortex_angle_rad": "radian",
    "kappa_rms": "dimensionless",
    "granule_length_arcsec": "arcsec",
    "compensation_kappa": "dimensionless",
    "compensation_radius_arcsec": "arcsec",
    "compensation_center_x_arcsec": "arcsec",
    "compensation_center_y_arcsec": "arcsec",
    "compensation_mass_msun": "Msun",
    "compensation_disks/kappa": "dimensionless",
    "compensation_disks/radius_arcsec": "arcsec",
    "subhalos/mass_msun": "Msun",
    "subhalos/x_arcsec": "arcsec",
    "subhalos/y_arcsec": "arcsec",
}


def image_rng(seed: int, class_name: str, image_index: int) -> np.random.Generator:
    """The generator of one image: `SeedSequence(seed, spawn_key=(class index, image index))`."""
    spawn_key = (CLASS_NAMES.index(class_name), int(image_index))
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def build_instrument(instrument_cfg: dict, psf_kernel: np.ndarray | None = None) -> Instrument:
    """An `Instrument` from the config's `instrument` section.

    The PSF is, in order: `psf_kernel` if given, the kernel file `psf_kernel_file` if set, a
    Gaussian of `psf_fwhm_arcsec` if > 0, else none.
    """
    if psf_kernel is None and instrument_cfg.get("psf_kernel_file"):
        psf_kernel = load_psf_kernel(instrument_cfg["psf_kernel_file"])
    if psf_kernel is None and instrument_cfg.get("psf_fwhm_arcsec"):
        psf_kernel = gaussian_psf_kernel(
            instrument_cfg["psf_fwhm_arcsec"], instrument_cfg["pixel_scale_arcsec"]
        )
    return Instrument(
        n_pix=instrument_cfg["n_pix"],
        pixel_scale_arcsec=instrument_cfg["pixel_scale_arcsec"],
        supersampling=instrument_cfg["supersampling"],
        exposure_time_s=instrument_cfg["exposure_time_s"],
        background_rms=instrument_cfg["background_rms"],
        psf_kernel=psf_kernel,
    )


@dataclass
class ImageParameters:
    """The drawn macro model and source of one image (lenstronomy keyword names)."""

    lens: dict
    shear: dict
    source: dict
    lens_light: dict | None = None
    record: dict = field(default_factory=dict)


def _pair(rng: np.random.Generator, cfg: dict, first: str, second: str, max_key: str):
    """Two draws: U(range) for keys `first`/`second` when both are set, else U(-max, max)."""
    if cfg.get(first) is not None and cfg.get(second) is not None:
        return uniform(rng, cfg[first]), uniform(rng, cfg[second])
    return symmetric_pair(rng, cfg[max_key])


def _draw_sersic(rng, cfg: dict, e1: float, e2: float, center_x: float, center_y: float) -> dict:
    """Elliptical Sersic parameters (lenstronomy names): amp [counts/s/arcsec^2], R_sersic
    [arcsec] and n_sersic drawn in this order from cfg's ranges, with the given ellipticity and
    centre [arcsec]. The order of the draws fixes the stored images: keep it."""
    return {
        "amp": uniform(rng, cfg["amp"]),
        "R_sersic": uniform(rng, cfg["R_sersic_arcsec"]),
        "n_sersic": uniform(rng, cfg["n_sersic"]),
        "e1": e1,
        "e2": e2,
        "center_x": center_x,
        "center_y": center_y,
    }


def draw_macro_model(rng, lens_cfg: dict, source_cfg: dict, light_cfg: dict):
    """Draw SIE + shear lens and Sersic source parameters (and, when `light_cfg["enabled"]`,
    the lens light's, after them) from the configured ranges. The record holds every drawn
    value under its /params name: lens (`theta_E`, `e1`, `e2`, `lens_center_x/_y`), shear,
    `source_<name>` and, with lens light, `lens_light_<name>` (lenstronomy's Sersic names)."""
    e1, e2 = _pair(rng, lens_cfg, "e1", "e2", "ellipticity_max")
    cx, cy = symmetric_pair(rng, lens_cfg["center_max_arcsec"])
    g1, g2 = _pair(rng, lens_cfg, "gamma1", "gamma2", "shear_max")
    lens = {
        "theta_E": uniform(rng, lens_cfg["theta_E_arcsec"]),
        "e1": e1,
        "e2": e2,
        "center_x": cx,
        "center_y": cy,
    }
    se1, se2 = _pair(rng, source_cfg, "e1", "e2", "ellipticity_max")
    sx, sy = symmetric_pair(rng, source_cfg["center_max_arcsec"])
    source = _draw_sersic(rng, source_cfg, se1, se2, sx, sy)
    lens_light = None
    if light_cfg.get("enabled", False):
        le1, le2 = symmetric_pair(rng, light_cfg["ellipticity_max"])
        lens_light = _draw_sersic(rng, light_cfg, le1, le2, cx, cy)
    record = {
        "theta_E": lens["theta_E"],
        "e1": e1,
        "e2": e2,
        "lens_center_x": cx,
        "lens_center_y": cy,
        "gamma1": g1,
        "gamma2": g2,
        **{f"source_{k}": v for k, v in source.items()},
    }
    if lens_light is not None:
        record.update({f"lens_light_{k}": v for k, v in lens_light.items()})
    return ImageParameters(lens, {"gamma1": g1, "gamma2": g2}, source, lens_light, record)


#: Rows of the ray grid rendered at once (keeps each step's arrays in the CPU cache).
ROW_BLOCK = 32
#: Bound on the error of the macro (SIE) deflection interpolated from the pixel-centre grid to
#: the rays (`sie_interpolation_radius`); it is exact within the square where it is not.
#: Unit: arcsec.
MACRO_TOLERANCE_ARCSEC = 1e-6


@functools.lru_cache(maxsize=8)
def _node_grid(n_pix: int, pixel_scale_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) [arcsec] of the pixel centres plus MARGIN nodes around, (N + 2 MARGIN)^2 each."""
    node = (np.arange(n_pix + 2 * MARGIN) - MARGIN - 0.5 * (n_pix - 1)) * pixel_scale_arcsec
    grid = np.meshgrid(node, node)
    for array in grid:
        array.flags.writeable = False
    return grid[0], grid[1]


def ray_deflections(
    instrument: Instrument,
    params: ImageParameters,
    substructure: Substructure,
    sub_deflection: tuple[np.ndarray, np.ndarray] | None = None,
    with_smooth: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Deflections [arcsec] at the instrument's ray grid, (2, N s, N s) float64 each:
    (macro, macro + substructure); macro is None when not needed (with_smooth=False and
    some substructure), macro + substructure None without substructure.

    The macro lens (SIE + shear) and the substructure's far field are summed at the pixel
    centres (plus `MARGIN` nodes around) and interpolated to the rays in one pass
    (`lagrange_upsample`; exact for the shear, within MACRO_TOLERANCE_ARCSEC for the SIE
    outside the square of half-width `sie_interpolation_radius` around its centre, in which
    the SIE is evaluated exactly at every ray); then the substructure's near fields are added
    (within `GRID_TOLERANCE_ARCSEC` of the exact sum, `Substructure.ray_field`).
    """
    perturbed = not substructure.is_empty
    smooth = with_smooth or not perturbed
    node_x, node_y = _node_grid(instrument.n_pix, instrument.pixel_scale_arcsec)
    sie_nodes = np.stack(sie_deflection_inplace(node_x, node_y, **params.lens))
    g1, g2 = params.shear["gamma1"], params.shear["gamma2"]
    macro_nodes = sie_nodes.copy()
    macro_nodes[0] += g1 * node_x + g2 * node_y
    macro_nodes[1] += g2 * node_x - g1 * node_y
    far, add_near = None, None
    if perturbed:
        if sub_deflection is None:
            far, add_near = substructure.ray_field(instrument)
        else:

            def add_near(alpha):
                alpha += np.stack(sub_deflection)

    stack = [macro_nodes] if smooth else []
    if perturbed:
        stack.append(macro_nodes if far is None else macro_nodes + far)
    alphas = lagrange_upsample(np.stack(stack), instrument.supersampling)
    if instrument.supersampling > 1:
        _replace_sie_core_by_exact(alphas, instrument, params.lens, sie_nodes)
    if perturbed:
        add_near(alphas[-1])
    return (alphas[0] if smooth else None), (alphas[-1] if perturbed else None)


def _sie_core_box(instrument: Instrument, lens: dict) -> tuple[slice, slice]:
    """(rows, columns) of the rays within `sie_interpolation_radius` of the SIE centre, where
    the interpolated SIE deflection may miss MACRO_TOLERANCE_ARCSEC (empty slices if none)."""
    n, s, pixel = instrument.n_pix, instrument.supersampling, instrument.pixel_scale_arcsec
    n_rays, step = n * s, pixel / s
    half = sie_interpolation_radius(
        lens["theta_E"], lens["e1"], lens["e2"], pixel, MACRO_TOLERANCE_ARCSEC
    )
    centre = 0.5 * (n_rays - 1)
    box = []
    for c in (lens["center_y"], lens["center_x"]):
        # beyond |c| + the field width every ray is in the box: the same box as any larger
        # (or infinite, for |e| > 0.9) half-width, in integers
        reach = min(half, abs(c) + n_rays * step)
        lo = max(0, int(np.ceil(min((c - reach) / step + centre, n_rays))))
        hi = min(n_rays, int(np.floor(max((c + reach) / step + centre, -1.0))) + 1)
        box.append(slice(lo, max(lo, hi)))
    return box[0], box[1]


def _replace_sie_core_by_exact(
    alphas: np.ndarray, instrument: Instrument, lens: dict, sie_nodes: np.ndarray
) -> None:
    """In the rays of `_sie_core_box`, replace the interpolated SIE deflection in every
    (2, N s, N s) deflection of `alphas` by the exact one, in place. sie_nodes: the SIE
    deflection [arcsec] at the pixel centres plus MARGIN nodes (what was interpolated)."""
    rows, cols = _sie_core_box(instrument, lens)
    if rows.stop <= rows.start or cols.stop <= cols.start:
        return
    n, s = instrument.n_pix, instrument.supersampling
    matrix = lagrange_matrix(n, s)
    interpolated = matrix[rows] @ sie_nodes @ matrix[cols].T
    ray = pixel_coordinates(n * s, instrument.pixel_scale_arcsec / s)
    exact = np.stack(sie_deflection_inplace(ray[None, cols], ray[rows, None], **lens))
    exact -= interpolated
    alphas[:, :, rows, cols] += exact


def render_models(
    instrument: Instrument,
    params: ImageParameters,
    substructure: Substructure,
    rays: tuple[np.ndarray, np.ndarray],
    sub_deflection: tuple[np.ndarray, np.ndarray] | None = None,
    with_smooth: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Noiseless images [counts/s per pixel] with and without the substructure: (model, smooth).

    rays: the instrument's ray grid (x, y) [arcsec]. sub_deflection: the substructure's
    deflection on it (from `Substructure.ray_field` when not given; see `ray_deflections`).
    Without substructure both are the same array; `with_smooth=False` skips the image
    without substructure (smooth is then None unless there is no substructure). Deflections
    and ray positions are float64; surface brightnesses are evaluated in float32 (relative
    error ~1e-6).
    """
    x, y = rays
    source = SersicEllipse(**params.source)
    lens_light = SersicEllipse(**params.lens_light) if params.lens_light is not None else None
    macro, total = ray_deflections(instrument, params, substructure, sub_deflection, with_smooth)
    alphas = [a for a in (macro, total) if a is not None]
    sb = np.empty((len(alphas),) + x.shape, dtype=np.float32)
    for start in range(0, x.shape[0], ROW_BLOCK):
        rows = slice(start, start + ROW_BLOCK)
        for index, alpha in enumerate(alphas):
            sb[index, rows] = source.surface_brightness(
                x[rows] - alpha[0, rows], y[rows] - alpha[1, rows], np.float32
            )
        if lens_light is not None:
            sb[:, rows] += lens_light.surface_brightness(x[rows], y[rows], np.float32)
    images = instrument.convolve(instrument.bin(sb))
    return images[-1], (images[0] if macro is not None else None)


@dataclass
class SimulatedImage:
    """Everything about one image: drawn parameters, substructure, noiseless and noisy images."""

    params: ImageParameters
    substructure: Substructure
    model: np.ndarray
    smooth: np.ndarray
    noisy: np.ndarray
    record: dict


def simulate_image_details(
    instrument: Instrument,
    common: dict,
    class_name: str,
    class_settings: dict,
    rng: np.random.Generator,
    rays: tuple[np.ndarray, np.ndarray],
) -> SimulatedImage:
    """Draw and render one image; the noise is drawn last from the same generator."""
    params = draw_macro_model(rng, common["lens"], common["source"], common["lens_light"])
    substructure: Substructure = SUBSTRUCTURE_MODELS[class_name](
        rng, class_settings, params, common, instrument
    )
    model, smooth = render_models(instrument, params, substructure, rays)
    chi = 0.0 if substructure.is_empty else instrument.signal_chi(model, smooth)
    noisy = instrument.add_noise(model, rng)
    snr, peak_snr = instrument.snr(model)
    record = {**params.record, **substructure.record, "snr": snr, "peak_snr": peak_snr}
    record["substructure_chi"] = chi
    return SimulatedImage(params, substructure, model, smooth, noisy, record)
