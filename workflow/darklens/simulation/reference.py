"""lenstronomy as the reference renderer of darklens's tests and benchmarks.

lenstronomy (1.14.2, a test dependency: ``pip install -e ".[test]"``) is imported inside these
functions only, so darklens itself never needs it. The same instrument and the same drawn
parameters go to both codes: darklens's `ImageParameters` and population arrays become
lenstronomy's keyword lists here.
"""

from __future__ import annotations

from darklens.simulation.render import ImageParameters


def image_model(
    n_pix: int,
    pixel_scale_arcsec: float,
    supersampling: int,
    fwhm_arcsec: float,
    exposure_time_s: float,
    background_rms: float,
    lens_names: list[str],
    lens_light: bool = False,
):
    """lenstronomy's ``ImageModel`` of this instrument (Gaussian PSF truncated at 5 sigma, as
    darklens's kernel) for the lens models ``lens_names`` and an elliptical Sersic source (and
    lens light)."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from lenstronomy.Util import simulation_util

    data = simulation_util.data_configure_simple(
        n_pix, pixel_scale_arcsec, exposure_time_s, background_rms
    )
    psf = PSF(psf_type="GAUSSIAN", fwhm=fwhm_arcsec, pixel_size=pixel_scale_arcsec, truncation=5)
    return ImageModel(
        ImageData(**data),
        psf,
        lens_model_class=LensModel(lens_names),
        source_model_class=LightModel(["SERSIC_ELLIPSE"]),
        lens_light_model_class=LightModel(["SERSIC_ELLIPSE"]) if lens_light else None,
        kwargs_numerics={"supersampling_factor": supersampling},
    )


def lens_names(population, compensation=None) -> list[str]:
    """lenstronomy's lens model list: SIE, SHEAR, then one entry per population member
    (``population``: None or (profile class, parameter arrays)), then one ``ElliSLICE`` per disk
    of a mass compensation (None, a `UniformDisk` or `ConcentricDisks`)."""
    names = ["SIE", "SHEAR"]
    if population is not None:
        profile, members = population
        names += [profile.lenstronomy_name] * len(members["center_x"])
    return names + ["ElliSLICE"] * len(_disks(compensation))


def _disks(compensation) -> tuple:
    if compensation is None:
        return ()
    return getattr(compensation, "disks", (compensation,))


def compensation_kwargs(compensation) -> list[dict]:
    """lenstronomy keywords of a compensation's disks: lenstronomy 1.14.2 has no circular
    uniform disk, and ``ElliSLICE`` with a = r_trunc (1 + 1e-7), b = r_trunc is the same disk to
    ~1e-7 (its map is linear in sigma_0, so a negative kappa works)."""
    return [
        {
            "a": float(disk.r_trunc) * (1 + 1e-7),
            "b": float(disk.r_trunc),
            "psi": 0.0,
            "sigma_0": float(disk.kappa),
            "center_x": float(disk.center_x),
            "center_y": float(disk.center_y),
        }
        for disk in _disks(compensation)
    ]


def render(model, params: ImageParameters, population, compensation=None):
    """The noiseless image [counts/s per pixel] of ``model`` (from `image_model`, whose lens
    names are ``lens_names(population, compensation)``) for darklens's parameters, population
    (None or (profile class, parameter arrays)) and mass compensation (None or its disks)."""
    kwargs = [params.lens, {**params.shear, "ra_0": 0.0, "dec_0": 0.0}]
    if population is not None:
        _, members = population
        size = len(members["center_x"])
        kwargs += [{k: float(v[i]) for k, v in members.items()} for i in range(size)]
    kwargs += compensation_kwargs(compensation)
    light = [params.lens_light] if params.lens_light else None
    return model.image(kwargs, [params.source], kwargs_lens_light=light)
