"""Shards: the images of one class cut into independent, reproducible jobs.

A shard holds images `shard * images_per_shard ..` of its class; each image draws from its own
`SeedSequence(seed, spawn_key=(class index, image index))` (`render.image_rng`), so the bytes of
an image do not depend on the shard it lands in or on how many jobs run at once.

Every shard (and so every merged class file) carries a `conventions` attribute (built by
`simulation.conventions`): what another code needs to re-render each image from the stored
/params and /subhalos, and the darklens recipe (`resimulate_image`) for what is not stored (a
granule field).
"""

from __future__ import annotations

import json

import numpy as np

from darklens.io.class_files import write_image_file
from darklens.physics.instrument import (
    SNR_DEFINITION,
    load_psf_kernel,
)
from darklens.simulation.conventions import file_conventions
from darklens.simulation.presets import resolve
from darklens.simulation.render import (
    UNITS,
    SimulatedImage,
    build_instrument,
    image_rng,
    simulate_image_details,
)
from darklens.simulation.substructure import (
    SUBSTRUCTURE_MODELS,
    compensation_disks,
)


def shard_image_indices(images_per_class: int, images_per_shard: int, shard: int) -> range:
    """Indices (within the class) of the images of shard `shard`."""
    start = shard * images_per_shard
    if shard < 0 or start >= images_per_class:
        raise ValueError(
            f"shard {shard} is out of range for {images_per_class} images per class "
            f"in shards of {images_per_shard}"
        )
    return range(start, min(start + images_per_shard, images_per_class))


def n_shards(images_per_class: int, images_per_shard: int) -> int:
    """Number of shards per class."""
    return -(-images_per_class // images_per_shard)


def simulate_shard(
    common: dict,
    class_name: str,
    class_settings: dict,
    shard: int,
    seed: int,
    psf_kernel: np.ndarray | None = None,
) -> dict:
    """Simulate shard `shard` of `class_name`.

    common: the simulation config without `classes` (preset, instrument, lens, source,
    lens_light, counts); the preset is applied here (`darklens.simulation.presets.resolve`).
    class_settings: `simulation.classes[class_name]`.
    Returns {"images": float32 (n, N, N), "smooth_model": float32 (n, N, N) (each image's
    noiseless model without substructure, counts/s per pixel; for no_sub the noiseless image),
    "params": {name: (n,) array},
    "subhalos": {name: flat array}, "subhalo_offsets": (n+1,) int64, "compensation_disks":
    {"kappa", "radius_arcsec"} flat per-disk arrays (`substructure.compensation_disks`),
    "compensation_offsets": (n+1,) int64, "image_index": (n,),
    "resolved": {"simulation": resolved common, "class_settings": resolved class settings}}.
    Memory: the images of the shard plus one image's working arrays.
    """
    if class_name not in SUBSTRUCTURE_MODELS:
        raise ValueError(f"unknown class {class_name!r}; known: {list(SUBSTRUCTURE_MODELS)}")
    common, class_settings = resolve(common, class_name, class_settings)
    indices = shard_image_indices(common["images_per_class"], common["images_per_shard"], shard)
    instrument = build_instrument(common["instrument"], psf_kernel)
    rays = instrument.ray_grid()
    n_pix = instrument.n_pix
    images = np.empty((len(indices), n_pix, n_pix), dtype=np.float32)
    smooth = np.empty_like(images)  # the true noiseless smooth models (oracle_residual's truth)
    records, subhalo_lists, disk_lists = [], [], []
    for row, k in enumerate(indices):
        image = simulate_image_details(
            instrument, common, class_name, class_settings, image_rng(seed, class_name, k), rays
        )
        images[row] = image.noisy
        smooth[row] = image.smooth
        records.append(image.record)
        subhalo_lists.append(image.substructure.subhalos)
        disk_lists.append(compensation_disks(image.substructure.compensation))
    if not (np.all(np.isfinite(images)) and np.all(np.isfinite(smooth))):
        raise FloatingPointError(f"{class_name} shard {shard}: the simulator produced NaN or inf")
    params = {key: np.array([r[key] for r in records]) for key in records[0]}
    counts = np.array([len(s["mass_msun"]) for s in subhalo_lists], dtype=np.int64)
    subhalos = {
        key: np.concatenate([s[key] for s in subhalo_lists]).astype(np.float64)
        for key in ("mass_msun", "x_arcsec", "y_arcsec")
    }
    return {
        "images": images,
        "smooth_model": smooth,
        "params": params,
        "subhalos": subhalos,
        "subhalo_offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "compensation_disks": {
            key: np.concatenate([d[key] for d in disk_lists]) for key in ("kappa", "radius_arcsec")
        },
        "compensation_offsets": np.cumsum(
            [0] + [len(d["kappa"]) for d in disk_lists], dtype=np.int64
        ),
        "image_index": np.asarray(indices, dtype=np.int64),
        "resolved": {"simulation": common, "class_settings": class_settings},
    }


#: How each image's generator derives from the config seed (`render.image_rng`).
SEED_DERIVATION = "numpy SeedSequence(seed, spawn_key=(class index, image index))"


def resimulate_image(attrs: dict, image_index: int) -> SimulatedImage:
    """Re-run image `image_index` of a class file from its attributes (class_name, seed,
    resolved_config, conventions' stored PSF kernel): the same drawn parameters, substructure
    (a granule field included), noiseless and noisy images as when it was written."""

    def _load(value):
        return json.loads(value) if isinstance(value, str | bytes) else value

    resolved = _load(attrs["resolved_config"])
    common, settings = resolved["simulation"], resolved["class_settings"]
    psf = _load(attrs.get("conventions", "{}")).get("psf", {})
    kernel = psf.get("kernel_values")
    kernel = None if kernel is None else np.asarray(kernel, dtype=np.float64)
    if kernel is None and psf.get("kernel_file"):
        kernel = load_psf_kernel(psf["kernel_file"])
    instrument = build_instrument(common["instrument"], kernel)
    class_name = str(attrs["class_name"])
    rng = image_rng(int(attrs["seed"]), class_name, int(image_index))
    return simulate_image_details(
        instrument, common, class_name, settings, rng, instrument.ray_grid()
    )


def write_shard(
    common: dict,
    class_name: str,
    class_settings: dict,
    shard: int,
    seed: int,
    output,
    psf_kernel_path=None,
) -> dict:
    """Simulate shard `shard` of `class_name` (`simulate_shard`) and write it to `output`
    (`darklens.io.class_files.write_image_file`) with its provenance: class_name, seed, shard,
    the config as given and as resolved by the preset, the units of every dataset, the SNR
    definition, the seed derivation and the re-rendering conventions (`file_conventions`).

    psf_kernel_path: a PSF kernel file (`load_psf_kernel`) overriding the config's PSF, or None.
    Returns what the command line reports: {"n_images", "median_snr", "median_chi",
    "fraction_chi_above_1"} (chi: `substructure_chi`, dimensionless).
    """
    kernel = load_psf_kernel(psf_kernel_path) if psf_kernel_path else None
    data = simulate_shard(common, class_name, class_settings, shard, seed, kernel)
    attrs = {
        "class_name": class_name,
        "seed": seed,
        "shard": shard,
        "config": {"simulation": common, "class_settings": class_settings},
        "resolved_config": data["resolved"],
        "units": {**UNITS, "smooth_model": "counts/s per pixel"},
        "snr_definition": SNR_DEFINITION,
        "seed_derivation": SEED_DERIVATION,
        "conventions": file_conventions(
            data["resolved"]["simulation"],
            class_name,
            data["resolved"]["class_settings"],
            kernel,
            psf_kernel_path,
        ),
    }
    write_image_file(output, data, attrs)
    chi = data["params"]["substructure_chi"]
    return {
        "n_images": len(data["images"]),
        "median_snr": float(np.median(data["params"]["snr"])),
        "median_chi": float(np.median(chi)),
        "fraction_chi_above_1": float(np.mean(chi > 1.0)),
    }
