"""Dark-matter substructure of each class: none, CDM subhalos, or axion (wave) dark matter.

Each model is a function `(rng, class_settings, macro_params, common, instrument) -> Substructure`
registered in `SUBSTRUCTURE_MODELS` under its class name; adding a class means adding one function
here (and its schema entry), nothing in the workflow.

The subhalo count of `cdm` is Poisson(mean), fixed, or set by a substructure mass fraction
f_sub: N ~ Poisson(f_sub M_lens(< radius) / <m>), where M_lens(< radius) = pi Sigma_crit
theta_E radius is the projected mass of the macro lens (as an SIS of the drawn theta_E) within the
disk where subhalos are placed and <m> the mean of the mass function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from darklens.physics.cosmology import DEFAULT_COSMOLOGY as COSMOLOGY
from darklens.physics.cosmology import concentration_subhalo
from darklens.physics.lensing.grid import DEFAULT_TOLERANCE_ARCSEC
from darklens.physics.sampling import (
    log_uniform,
    power_law_masses,
    power_law_mean_mass,
    uniform_in_disk,
)

POPULATION_CHUNK = 64  # subhalos evaluated at once: bounds memory to chunk x rays float64 arrays
#: Bound on the deflection error of the fast ray-grid evaluation of a population (the grid's own
#: default); images then agree with an exact evaluation to ~1e-6 of their peak
#: (tests/test_image_vs_lenstronomy.py). Unit: arcsec.
GRID_TOLERANCE_ARCSEC = DEFAULT_TOLERANCE_ARCSEC
#: Granule fields are generated on a grid of at most this fraction of the correlation length per
#: node (then interpolated to the rays). Unit: dimensionless.
GRANULE_NODES_PER_LENGTH = 8


def _no_subhalos() -> dict:
    return {key: np.zeros(0) for key in ("mass_msun", "x_arcsec", "y_arcsec")}


@dataclass
class Substructure:
    """Perturbers of one image.

    population: (profile class, {parameter: (K,) array}) summed over K members, or None.
    field_deflection: callable (x, y) -> (alpha_x, alpha_y) for grid-based perturbers, or None;
        it accepts the instrument's ray grid only.
    field_convergence: the convergence of the grid-based perturber on the ray grid, or None.
    record: per-image scalars to store. subhalos: {"mass_msun", "x_arcsec", "y_arcsec"} arrays.
    """

    population: tuple[type, dict] | None = None
    field_deflection: Callable | None = None
    record: dict = field(default_factory=dict)
    subhalos: dict = field(default_factory=_no_subhalos)
    field_convergence: np.ndarray | None = None

    @property
    def is_empty(self) -> bool:
        return self.population is None and self.field_deflection is None

    def ray_field(self, instrument, tolerance_arcsec: float | None = None):
        """The deflection at the ray grid in two parts: (far, add_near).

        far: (2, N + 2 MARGIN, N + 2 MARGIN) float64 [arcsec] on the pixel centres plus
        ``darklens.physics.lensing.grid.MARGIN`` nodes around, to be interpolated to the rays with
        ``lagrange_upsample`` (None if there is none); add_near(alpha): adds the rest to a
        (2, N s, N s) deflection at the rays, in place. Their sum is the summed deflection of
        all perturbers at the rays: populations of point masses and TNFW halos use
        ``darklens.physics.lensing.grid.PopulationGrid`` (within ``tolerance_arcsec``, default
        GRID_TOLERANCE_ARCSEC, of the exact sum at every ray), other profiles and grid fields
        are added exactly.
        """
        from darklens.physics.lensing.grid import PopulationGrid, RadialPopulation

        if tolerance_arcsec is None:
            tolerance_arcsec = GRID_TOLERANCE_ARCSEC
        far, parts = None, []
        if self.population is not None:
            profile, params = self.population
            if RadialPopulation.supports(profile, params):
                grid = PopulationGrid(
                    profile,
                    params,
                    instrument.n_pix,
                    instrument.pixel_scale_arcsec,
                    instrument.supersampling,
                    tolerance_arcsec,
                )
                far = grid.far
                parts.append(grid.add_near)
            else:
                from darklens.physics.lensing import population_deflection

                def exact(x, y):
                    return population_deflection(profile, params, x, y, chunk=POPULATION_CHUNK)

                parts.append(lambda alpha: _add_exact(alpha, exact, instrument))
        if self.field_deflection is not None:
            parts.append(lambda alpha: _add_exact(alpha, self.field_deflection, instrument))

        def add_near(alpha):
            for part in parts:
                part(alpha)

        return far, add_near


def _add_exact(alpha, deflection, instrument):
    fx, fy = deflection(*instrument.ray_grid())
    alpha[0] += fx
    alpha[1] += fy


def no_substructure(rng, class_settings, macro, common, instrument) -> Substructure:
    """The smooth `no_sub` class: nothing beyond the macro lens."""
    return Substructure(record={"n_subhalos": 0, "substructure_mass_msun": 0.0})


def cdm_subhalos(rng, class_settings, macro, common, instrument) -> Substructure:
    """CDM subhalos: N ~ Poisson(mean) (or fixed), dN/dm ~ m^slope, uniform in a disk around the
    lens centre, each a point mass or a truncated NFW (TNFW) halo."""
    from darklens.physics.lensing import PointMass

    lens = common["lens"]
    n = _subhalo_count(rng, class_settings, macro, lens)
    masses = power_law_masses(
        rng,
        n,
        class_settings["mass_min_msun"],
        class_settings["mass_max_msun"],
        class_settings["mass_function_slope"],
    )
    dx, dy = uniform_in_disk(rng, n, class_settings["radius_arcsec"])
    x = dx + macro.lens["center_x"]
    y = dy + macro.lens["center_y"]
    if class_settings["profile"] == "point_mass":
        theta_e = COSMOLOGY.theta_E_point_mass(masses, lens["z_lens"], lens["z_source"])
        population = (PointMass, {"theta_E": theta_e, "center_x": x, "center_y": y})
    else:
        from darklens.physics.lensing import TNFW

        c200 = concentration_subhalo(masses)
        rs, alpha_rs = COSMOLOGY.nfw_angles(masses, c200, lens["z_lens"], lens["z_source"])
        r_trunc = class_settings["truncation_factor"] * rs
        population = (
            TNFW,
            {"Rs": rs, "alpha_Rs": alpha_rs, "r_trunc": r_trunc, "center_x": x, "center_y": y},
        )
    record = {"n_subhalos": n, "substructure_mass_msun": float(masses.sum())}
    subhalos = {"mass_msun": masses, "x_arcsec": x, "y_arcsec": y}
    return Substructure(population=population if n else None, record=record, subhalos=subhalos)


def _subhalo_count(rng, settings, macro, lens) -> int:
    count = settings["n_subhalos"]
    if count["distribution"] == "fixed":
        return int(count["mean"])
    mean = count["mean"]
    if count["distribution"] == "mass_fraction":
        sigma_crit = COSMOLOGY.sigma_crit(lens["z_lens"], lens["z_source"])  # Msun / arcsec^2
        lens_mass = np.pi * sigma_crit * macro.lens["theta_E"] * settings["radius_arcsec"]
        mean_mass = power_law_mean_mass(
            settings["mass_min_msun"], settings["mass_max_msun"], settings["mass_function_slope"]
        )
        mean = count["mass_fraction"] * lens_mass / mean_mass
    return int(rng.poisson(mean))


def axion_substructure(rng, class_settings, macro, common, instrument) -> Substructure:
    """Wave-like (axion) dark matter: a vortex line or a granule field (docs/physics.md)."""
    lens = common["lens"]
    m_a = log_uniform(rng, class_settings["axion_mass_ev"])
    wavelength = COSMOLOGY.axion_de_broglie_arcsec(m_a, lens["z_lens"])
    record = {"axion_mass_ev": m_a, "de_broglie_arcsec": float(wavelength)}
    if class_settings["variant"] == "vortex":
        return _vortex(rng, class_settings, macro, lens, wavelength, record)
    return _granules(rng, class_settings, instrument, wavelength, record)


def _vortex(rng, settings, macro, lens, wavelength, record) -> Substructure:
    from darklens.physics.lensing import PointMass
    from darklens.physics.sampling import line_of_points

    n_points = settings["vortex_points"]
    length = settings["vortex_length_factor"] * wavelength
    cx, cy = uniform_in_disk(rng, 1, settings["radius_arcsec"])
    angle = 2.0 * np.pi * rng.random()
    x, y = line_of_points(
        float(cx[0]) + macro.lens["center_x"],
        float(cy[0]) + macro.lens["center_y"],
        length,
        angle,
        n_points,
    )
    masses = np.full(n_points, settings["vortex_mass_msun"] / n_points)
    theta_e = COSMOLOGY.theta_E_point_mass(masses, lens["z_lens"], lens["z_source"])
    record = {
        **record,
        "n_subhalos": n_points,
        "substructure_mass_msun": float(masses.sum()),
        "vortex_length_arcsec": float(length),
        "vortex_angle_rad": float(angle),
    }
    return Substructure(
        population=(PointMass, {"theta_E": theta_e, "center_x": x, "center_y": y}),
        record=record,
        subhalos={"mass_msun": masses, "x_arcsec": x, "y_arcsec": y},
    )


def _granules(rng, settings, instrument, wavelength, record) -> Substructure:
    """A Gaussian random field of convergence on the field of view, its deflection by FFT.

    The field is made on a grid of n_rays / f nodes of f ray pixels (plus 3 nodes around it),
    f the largest divisor of n_rays with f ray pixels <= length / GRANULE_NODES_PER_LENGTH (a
    field smooth on that grid), solved there and interpolated to the rays (6-point Lagrange).
    """
    from darklens.physics.lensing.fft_poisson import (
        deflection_from_convergence,
        gaussian_random_field,
    )
    from darklens.physics.lensing.grid import MARGIN, lagrange_upsample

    n_rays = instrument.n_pix * instrument.supersampling
    ray_pixel = instrument.pixel_scale_arcsec / instrument.supersampling
    length = settings["correlation_length_factor"] * wavelength
    factor = max(
        f
        for f in range(1, n_rays + 1)
        if n_rays % f == 0 and (f == 1 or f * ray_pixel <= length / GRANULE_NODES_PER_LENGTH)
    )
    nodes = n_rays // factor + 2 * MARGIN
    kappa_nodes = gaussian_random_field(
        nodes, factor * ray_pixel, length, settings["sigma_kappa"], rng
    )
    alpha_nodes = deflection_from_convergence(kappa_nodes, factor * ray_pixel)
    alpha_x, alpha_y = (lagrange_upsample(a, factor) for a in alpha_nodes)
    kappa = lagrange_upsample(kappa_nodes, factor)

    def on_ray_grid(x, y):
        if x.shape != kappa.shape:
            raise ValueError("the granule field is defined on the instrument's ray grid only")
        return alpha_x, alpha_y

    record = {
        **record,
        "n_subhalos": 0,
        "substructure_mass_msun": 0.0,
        "kappa_rms": float(np.sqrt(np.mean(kappa**2))),
        "granule_length_arcsec": float(length),
    }
    return Substructure(field_deflection=on_ray_grid, record=record, field_convergence=kappa)


SUBSTRUCTURE_MODELS = {
    "no_sub": no_substructure,
    "cdm": cdm_subhalos,
    "axion": axion_substructure,
}
