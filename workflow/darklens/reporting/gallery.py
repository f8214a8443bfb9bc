"""A gallery figure of one class: what the simulator drew and what it changed.

The first images of a class are simulated again from the config and seed (each image has its
own generator, so they are the images of the data set, which `gallery_figure` checks against
the class file when given). One row per image:
  1. the noisy image, log scaling (log10 of the counts/s, floored at the background rms);
  2. the same, linear between its 1st and 99.5th percentiles;
  3. the convergence of the lens on the pixel grid (log10): SIE plus TNFW subhalos or granule
     field; point masses (subhalos, vortex) are drawn as dots whose area grows with log mass;
  4. the substructure signal: (noiseless image with substructure - without) / noise sigma, the
     per-pixel terms of `substructure_chi`.
The row title lists the drawn parameters.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from darklens.io.atomic import atomic_path  # noqa: E402
from darklens.reporting.figures import DPI, PANEL_IN  # noqa: E402
from darklens.simulation.presets import resolve  # noqa: E402
from darklens.simulation.render import (  # noqa: E402
    build_instrument,
    image_rng,
    simulate_image_details,
)


def convergence_map(image, instrument) -> np.ndarray:
    """Convergence of the macro lens plus the substructure at the pixel centres (pixel-averaged
    for a granule field), with the mass-compensating disk; point masses are not included (delta
    functions)."""
    from darklens.physics.lensing import SIE, TNFW

    x, y = instrument.pixel_grid()
    kappa = SIE(**image.params.lens).convergence(x, y)
    substructure = image.substructure
    if substructure.population is not None and substructure.population[0] is TNFW:
        _, members = substructure.population
        for k in range(len(members["Rs"])):
            kappa = kappa + TNFW(**{name: v[k] for name, v in members.items()}).convergence(x, y)
    if substructure.field_convergence is not None:
        s, n = instrument.supersampling, instrument.n_pix
        field = substructure.field_convergence.reshape(n, s, n, s).mean(axis=(1, 3))
        kappa = kappa + field
    if substructure.compensation is not None:  # the (negative) mass-compensating disk
        kappa = kappa + substructure.compensation.convergence(x, y)
    return kappa


def _title(class_name: str, index: int, record: dict) -> str:
    parts = [f"{class_name} #{index}", f'theta_E {record["theta_E"]:.2f}"']
    parts.append(f'src R {record["source_R_sersic"]:.2f}" n {record["source_n_sersic"]:.1f}')
    if record.get("n_subhalos"):
        parts.append(f"N_sub {record['n_subhalos']}, M {record['substructure_mass_msun']:.1e} Msun")
    if "axion_mass_ev" in record:
        parts.append(f"m_a {record['axion_mass_ev']:.1e} eV")
    if "kappa_rms" in record:
        parts.append(f"kappa_rms {record['kappa_rms']:.3f}")
    parts.append(f"snr {record['snr']:.0f}, chi {record['substructure_chi']:.1f}")
    return ", ".join(parts)


def gallery_figure(
    common: dict,
    class_name: str,
    class_settings: dict,
    seed: int,
    output,
    n_images: int = 4,
    image_file=None,
    psf_kernel: np.ndarray | None = None,
) -> None:
    """Draw the gallery of `class_name` (see the module docstring) into `output` (PNG).

    common, class_settings: as for `simulation.shards.simulate_shard`. image_file: the class
    file; its first images must equal the ones simulated here (ValueError otherwise).
    """
    fig = build_gallery(common, class_name, class_settings, seed, n_images, image_file, psf_kernel)
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=Path(output).suffix.lstrip(".") or "png", dpi=DPI)
    plt.close(fig)


def build_gallery(
    common: dict,
    class_name: str,
    class_settings: dict,
    seed: int,
    n_images: int = 4,
    image_file=None,
    psf_kernel: np.ndarray | None = None,
):
    """The gallery figure of `gallery_figure`, not saved (the caller closes it)."""
    common, class_settings = resolve(common, class_name, class_settings)
    instrument = build_instrument(common["instrument"], psf_kernel)
    rays = instrument.ray_grid()
    n_images = min(n_images, common["images_per_class"])
    stored = None
    if image_file is not None:
        from darklens.io.class_files import read_images

        stored = read_images(image_file, expected_class=class_name)
    half = 0.5 * instrument.n_pix * instrument.pixel_scale_arcsec
    extent = (-half, half, -half, half)
    # sized in inches per panel, whatever the image size: readable for 24 px and 256 px images
    size = (4 * PANEL_IN + 0.5, (PANEL_IN + 0.9) * n_images + 0.5)
    fig = plt.figure(figsize=size, layout="constrained", dpi=DPI)
    rows = np.atleast_1d(fig.subfigures(n_images, 1))
    for row in range(n_images):
        image = simulate_image_details(
            instrument, common, class_name, class_settings, image_rng(seed, class_name, row), rays
        )
        if stored is not None and not np.array_equal(stored[row], image.noisy.astype(np.float32)):
            plt.close(fig)
            raise ValueError(f"{image_file}: image {row} differs from its simulation")
        _draw_row(fig, rows[row], image, instrument, extent, class_name, row)
    preset = common.get("preset", "default")
    fig.suptitle(f"{class_name} gallery, preset {preset}, seed {seed}", fontsize=12)
    return fig


def _draw_row(fig, subfig, image, instrument, extent, class_name: str, row: int) -> None:
    """One image's row: the image in log and percentile scaling, its convergence with the
    subhalos marked, and the substructure signal (with - without) / sigma."""
    half = extent[1]
    noisy = image.noisy
    floor = instrument.background_rms
    panels = subfig.subplots(1, 4)
    shown = panels[0].imshow(
        np.log10(np.maximum(noisy, floor)), origin="lower", extent=extent, cmap="magma"
    )
    _colour_bar(fig, shown, panels[0], "log10(counts/s per pixel)")
    lo, hi = np.percentile(noisy, [1.0, 99.5])
    shown = panels[1].imshow(noisy, origin="lower", extent=extent, cmap="gray", vmin=lo, vmax=hi)
    _colour_bar(fig, shown, panels[1], "counts/s per pixel\n(1-99.5 percentile)")
    kappa = convergence_map(image, instrument)
    shown = panels[2].imshow(
        np.log10(np.maximum(kappa, 1e-3)), origin="lower", extent=extent, cmap="viridis"
    )
    _colour_bar(fig, shown, panels[2], "log10 kappa\n(kappa dimensionless)")
    subhalos = image.substructure.subhalos
    if len(subhalos["mass_msun"]):
        inside = (np.abs(subhalos["x_arcsec"]) <= half) & (np.abs(subhalos["y_arcsec"]) <= half)
        size = 4.0 * np.maximum(np.log10(subhalos["mass_msun"][inside]) - 5.0, 0.5)
        panels[2].scatter(
            subhalos["x_arcsec"][inside],
            subhalos["y_arcsec"][inside],
            s=size,
            c="red",
            linewidths=0,
        )
        panels[2].set_xlim(extent[:2])
        panels[2].set_ylim(extent[2:])
    signal = (image.model - image.smooth) / np.sqrt(instrument.variance(image.model))
    limit = max(float(np.abs(signal).max()), 1e-12)
    shown = panels[3].imshow(
        signal, origin="lower", extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit
    )
    _colour_bar(fig, shown, panels[3], "(with - without) / sigma\n(dimensionless)")
    labels = ["image (log)", "image (percentiles)", "convergence", "substructure signal"]
    for panel, label in zip(panels, labels, strict=True):
        panel.set_title(label, fontsize=9)
        panel.set_xlabel("x [arcsec]", fontsize=8)
        panel.set_ylabel("y [arcsec]", fontsize=8)
        panel.tick_params(labelsize=7)
        panel.locator_params(nbins=4)
    subfig.suptitle(
        textwrap.fill(_title(class_name, row, image.record), int(4 * PANEL_IN * 72 / 5.4)),
        fontsize=9,
        x=0.02,
        ha="left",
    )


def _colour_bar(fig, shown, ax, label: str) -> None:
    bar = fig.colorbar(shown, ax=ax, shrink=0.9)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=6)
