"""Dark-matter substructure of each class: none, CDM subhalos, or axion (wave) dark matter.

Each model is a function `(rng, class_settings, macro_params, common, instrument) -> Substructure`
registered in `SUBSTRUCTURE_MODELS` under its class name; adding a class means adding one function
here (and its schema entry), nothing in the workflow.

The subhalo count of `cdm` is Poisson(mean), fixed, or set by a substructure mass fraction
f_sub: N ~ Poisson(f_sub M_lens(< radius) / <m>), where M_lens(< radius) = pi Sigma_crit
theta_E radius is the projected mass of the macro lens (as an SIS of the drawn theta_E) within the
disk where subhalos are placed and <m> the mean of the mass function.

Mass compensation (`mass_compensation: sheet`, the default; docs/physics.md): each realisation
of a cdm population or an axion vortex comes with negative convergence centred on the lens centre
that follows the ensemble's mean surface density, so that the mean enclosed mass of the class is
no_sub's at every radius. cdm: one uniform disk (`darklens.physics.lensing.UniformDisk`), the
ensemble mean of members uniform in the disk of radius R = `radius_arcsec`: kappa_c =
M(< R) / (Sigma_crit pi R^2), M(< R) the members' projected mass within that disk, so the
realisation's enclosed mass at R (and, for point masses, beyond) is exactly no_sub's. Point masses
lie inside: M(< R) is their total mass. TNFW members extend past R (r_trunc = 10 Rs is ~1..10" for
1e9..3e10 Msun): M(< R) is their mass within the disk (Gauss's law, `population_mass_in_disk`), not
M200 and not their total truncated mass, which would remove ~2x the mass they hold within the
Einstein radius. Axion vortex: its centre is uniform within R = `radius_arcsec` and its points lie
at offsets s_i along a randomly oriented line, so the ensemble's mean density is the disk R
smeared by the line, not uniform: the compensation is VORTEX_COMPENSATION_DISKS concentric
uniform disks (`ConcentricDisks`) whose stepwise profile removes the ensemble's mean enclosed
mass M(< r_k) exactly at every disk radius r_k (`vortex_enclosed_fraction`: closed form, the
mean over the points of a circle-circle overlap; `vortex_compensation_radii`), total = the vortex
mass, outer radius R + max |s_i|. Granule fields have zero mean by construction (their sample mean
on the field grid is subtracted) and get no compensation. The disks are recorded per image
(`compensation_*` in the record, `compensation_disks` for the stored /compensation_disks rows)
and added to the substructure's deflection exactly at every ray.
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
#: The values of `simulation.classes.<class>.mass_compensation`; the first is the default.
MASS_COMPENSATION_MODES = ("sheet", "none")
#: Concentric disks of a vortex's profile-matched compensation (every compensated vortex has this
#: many; cdm has one). With 16 the stepwise profile is within 0.007 of the vortex mass of the
#: ensemble's mean enclosed mass at every radius (0.1" <= length <= 10", radius_arcsec 1").
VORTEX_COMPENSATION_DISKS = 16


def _no_subhalos() -> dict:
    return {key: np.zeros(0) for key in ("mass_msun", "x_arcsec", "y_arcsec")}


@dataclass
class Substructure:
    """Perturbers of one image.

    population: (profile class, {parameter: (K,) array}) summed over K members, or None.
    field_deflection: callable (x, y) -> (alpha_x, alpha_y) for grid-based perturbers, or None;
        it accepts the instrument's ray grid only.
    field_convergence: the convergence of the grid-based perturber on the ray grid, or None.
    record: per-image scalars to store. subhalos: {"mass_msun", "x_arcsec", "y_arcsec"} arrays
        (stored as /subhalos): absolute positions [arcsec] in the image frame (the lens centre
        already added); a vortex's are its point masses; a granule field has none (it is
        regenerated from the image's seed: `darklens.simulation.shards.resimulate_image`).
    compensation: the negative convergence of mass compensation, or None: a
        `darklens.physics.lensing.UniformDisk` (cdm) or `ConcentricDisks` (a vortex), scalar
        parameters; part of the substructure (the image without substructure has neither).
        `compensation_disks` gives its stored per-disk arrays.
    """

    population: tuple[type, dict] | None = None
    field_deflection: Callable | None = None
    record: dict = field(default_factory=dict)
    subhalos: dict = field(default_factory=_no_subhalos)
    field_convergence: np.ndarray | None = None
    compensation: object | None = None

    @property
    def is_empty(self) -> bool:
        return (
            self.population is None and self.field_deflection is None and self.compensation is None
        )

    def ray_field(self, instrument, tolerance_arcsec: float | None = None):
        """The deflection at the ray grid in two parts: (far, add_near).

        far: (2, N + 2 MARGIN, N + 2 MARGIN) float64 [arcsec] on the pixel centres plus
        ``darklens.physics.lensing.grid.MARGIN`` nodes around, to be interpolated to the rays with
        ``lagrange_upsample`` (None if there is none); add_near(alpha): adds the rest to a
        (2, N s, N s) deflection at the rays, in place. Their sum is the summed deflection of
        all perturbers at the rays: populations of point masses and TNFW halos use
        ``darklens.physics.lensing.grid.PopulationGrid`` (within ``tolerance_arcsec``, default
        GRID_TOLERANCE_ARCSEC, of the exact sum at every ray), other profiles, grid fields and
        the compensating disk are added exactly.
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
        if self.compensation is not None:
            parts.append(lambda alpha: _add_disk(alpha, self.compensation, instrument))

        def add_near(alpha):
            for part in parts:
                part(alpha)

        return far, add_near


def _add_disk(alpha, compensation, instrument):
    """Add the exact deflection of a `UniformDisk` (or of every disk of a `ConcentricDisks`) at
    the ray grid to alpha, in place (numba)."""
    from darklens.physics.instrument import pixel_coordinates
    from darklens.physics.lensing._kernels import add_uniform_disk

    axis = pixel_coordinates(
        instrument.n_pix * instrument.supersampling,
        instrument.pixel_scale_arcsec / instrument.supersampling,
    )
    for disk in getattr(compensation, "disks", (compensation,)):
        add_uniform_disk(
            alpha,
            axis,
            axis,
            float(disk.kappa),
            float(disk.r_trunc),
            float(disk.center_x),
            float(disk.center_y),
        )


def _add_exact(alpha, deflection, instrument):
    fx, fy = deflection(*instrument.ray_grid())
    alpha[0] += fx
    alpha[1] += fy


def mass_compensation(
    settings: dict,
    lens: dict,
    mass_msun: float,
    radius_arcsec: float,
    macro,
    profile: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[object | None, dict]:
    """The compensation of one realisation and its record.

    mass_msun: the members' projected mass [Msun] within the disk of radius radius_arcsec
    [arcsec] (centred on the lens centre) where they were placed. With
    `settings["mass_compensation"]` "sheet" (the default) and mass > 0:
    - profile None: a `UniformDisk` of kappa = -mass / (Sigma_crit pi R^2), R = radius_arcsec;
    - profile (radii [arcsec] (K,) increasing, the last radius_arcsec; enclosed [Msun] (K,), the
      mean enclosed mass M(< r_k) to remove, the last mass_msun): `ConcentricDisks` whose
      stepwise convergence removes M(< r_k) at every r_k (`stepwise_disk_kappas`);
    else None. The record holds the scalars: compensation_kappa (the convergence at the centre,
    the disks' summed kappa, < 0; 0 = no compensation; dimensionless), compensation_radius_arcsec
    (the outer radius), compensation_center_x_arcsec / _y_arcsec and compensation_mass_msun (the
    mass removed, >= 0); `compensation_disks` gives the per-disk arrays stored with it.
    """
    from darklens.physics.lensing import UniformDisk
    from darklens.physics.lensing.uniform_disk import ConcentricDisks

    mode = settings.get("mass_compensation", MASS_COMPENSATION_MODES[0])
    if mode not in MASS_COMPENSATION_MODES:
        raise ValueError(f"mass_compensation must be one of {MASS_COMPENSATION_MODES}: {mode!r}")
    center = {"center_x": macro.lens["center_x"], "center_y": macro.lens["center_y"]}
    compensation, kappa, removed = None, 0.0, 0.0
    if mode == "sheet" and mass_msun > 0.0 and radius_arcsec > 0.0:
        sigma_crit = COSMOLOGY.sigma_crit(lens["z_lens"], lens["z_source"])  # Msun / arcsec^2
        removed = float(mass_msun)
        if profile is None:
            kappa = -float(mass_msun / (sigma_crit * np.pi * radius_arcsec**2))
            compensation = UniformDisk(kappa=kappa, r_trunc=radius_arcsec, **center)
        else:
            radii, enclosed = (np.asarray(a, dtype=np.float64) for a in profile)
            kappas = stepwise_disk_kappas(radii, -enclosed / sigma_crit)
            disks = tuple(
                UniformDisk(kappa=float(k), r_trunc=float(r), **center)
                for k, r in zip(kappas, radii, strict=True)
            )
            compensation = ConcentricDisks(disks)
            kappa = compensation.kappa
    record = {
        "compensation_kappa": kappa,
        "compensation_radius_arcsec": float(radius_arcsec),
        "compensation_center_x_arcsec": float(macro.lens["center_x"]),
        "compensation_center_y_arcsec": float(macro.lens["center_y"]),
        "compensation_mass_msun": removed,
    }
    return compensation, record


def compensation_disks(compensation) -> dict:
    """The per-disk arrays of a compensation (stored as /compensation_disks, one row per disk):
    {"kappa": (K,) dimensionless, "radius_arcsec": (K,) arcsec}, every disk centred on
    (compensation_center_x_arcsec, _y_arcsec); K = 0 without compensation, 1 for cdm's disk,
    VORTEX_COMPENSATION_DISKS for a vortex's."""
    disks = () if compensation is None else getattr(compensation, "disks", (compensation,))
    return {
        "kappa": np.array([float(d.kappa) for d in disks], dtype=np.float64),
        "radius_arcsec": np.array([float(d.r_trunc) for d in disks], dtype=np.float64),
    }


def compensation_from_record(record: dict, disks: dict | None = None):
    """The compensation stored in a record (or HDF5 params row), None if none.

    disks: the image's /compensation_disks rows ({"kappa", "radius_arcsec"} arrays), which
    define it; without them the scalars define one `UniformDisk` (cdm), and a vortex's record
    (several disks) is refused.
    """
    from darklens.physics.lensing import UniformDisk
    from darklens.physics.lensing.uniform_disk import ConcentricDisks

    center = {
        "center_x": float(record.get("compensation_center_x_arcsec", 0.0)),
        "center_y": float(record.get("compensation_center_y_arcsec", 0.0)),
    }
    if disks is not None:
        kappas = np.asarray(disks["kappa"], dtype=np.float64)
        radii = np.asarray(disks["radius_arcsec"], dtype=np.float64)
        made = [
            UniformDisk(kappa=float(k), r_trunc=float(r), **center)
            for k, r in zip(kappas, radii, strict=True)
        ]
        if not made:
            return None
        return made[0] if len(made) == 1 else ConcentricDisks(tuple(made))
    kappa = float(record.get("compensation_kappa", 0.0))
    if kappa == 0.0:
        return None
    if "vortex_length_arcsec" in record:
        raise ValueError("a vortex's compensation is several disks: pass its /compensation_disks")
    return UniformDisk(kappa=kappa, r_trunc=float(record["compensation_radius_arcsec"]), **center)


def stepwise_disk_kappas(radii_arcsec: np.ndarray, enclosed: np.ndarray) -> np.ndarray:
    """kappa of concentric uniform disks of radii r_1 < .. < r_K [arcsec] whose summed
    convergence mass within r_k is enclosed[k] [arcsec^2, convergence mass] at every k.

    The annulus r_(k-1) < R <= r_k (r_0 = 0) holds the uniform convergence c_k =
    (enclosed[k] - enclosed[k-1]) / (pi (r_k^2 - r_(k-1)^2)); disk k has kappa c_k - c_(k+1)
    (c_(K+1) = 0), so the disks' convergence at R is c_k and their total mass enclosed[-1].
    """
    radii = np.asarray(radii_arcsec, dtype=np.float64)
    enclosed = np.asarray(enclosed, dtype=np.float64)
    if radii.ndim != 1 or radii.size == 0 or radii[0] <= 0 or np.any(np.diff(radii) <= 0):
        raise ValueError("disk radii must be positive and strictly increasing")
    annulus = np.diff(np.concatenate([[0.0], enclosed])) / np.diff(
        np.pi * np.concatenate([[0.0], radii]) ** 2
    )
    return annulus - np.concatenate([annulus[1:], [0.0]])


def disk_overlap_area(distance, radius_a, radius_b) -> np.ndarray:
    """Area [arcsec^2] of the intersection of two disks of radii radius_a, radius_b [arcsec]
    whose centres are `distance` [arcsec] apart (broadcast; closed form: within ~1e-10 of
    pi min(a, b)^2, the arccos losing digits near tangency, 1e-15 elsewhere)."""
    d, a, b = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (distance, radius_a, radius_b))
    )
    area = np.zeros(d.shape)
    nested = d <= np.abs(a - b)
    area[nested] = np.pi * np.minimum(a, b)[nested] ** 2
    lens = ~nested & (d < a + b)
    d, a, b = d[lens], a[lens], b[lens]
    cos_a = np.clip((d * d + a * a - b * b) / (2.0 * d * a), -1.0, 1.0)
    cos_b = np.clip((d * d + b * b - a * a) / (2.0 * d * b), -1.0, 1.0)
    kite = np.sqrt(np.maximum((-d + a + b) * (d + a - b) * (d - a + b) * (d + a + b), 0.0))
    area[lens] = a * a * np.arccos(cos_a) + b * b * np.arccos(cos_b) - 0.5 * kite
    return area


def vortex_offsets(length_arcsec: float, n_points: int) -> np.ndarray:
    """The signed distances [arcsec] of a vortex's points from its centre along the line, as
    `darklens.physics.sampling.line_of_points` places them (mid-points of n sub-segments)."""
    return ((np.arange(n_points) + 0.5) / n_points - 0.5) * length_arcsec


def vortex_enclosed_fraction(radii_arcsec, placement_radius_arcsec: float, offsets_arcsec):
    """The ensemble mean fraction of a vortex's mass within radii [arcsec] of the lens centre.

    The ensemble: the line's centre uniform in the disk of radius R = placement_radius_arcsec
    about the lens centre, its orientation u uniform, its (equal-mass) points at the offsets s_i
    [arcsec] along it. Point i lies within r iff the centre lies in the disk of radius r about
    -s_i u: probability area(disk(0, R) & disk(-s_i u, r)) / (pi R^2), whatever u
    (`disk_overlap_area`); the fraction is its mean over the points. Closed form, no quadrature:
    accurate to ~1e-10 (a Monte Carlo of 200,000 lines agrees within its 4 standard errors,
    ~1e-3: tests/test_vortex_compensation.py). R = 0 (a fixed centre): the fraction of points
    with |s_i| < r.
    """
    radii = np.atleast_1d(np.asarray(radii_arcsec, dtype=np.float64))
    offsets = np.abs(np.asarray(offsets_arcsec, dtype=np.float64))
    if placement_radius_arcsec <= 0.0:
        return np.mean(offsets[None, :] < radii[:, None], axis=1)
    area = disk_overlap_area(offsets[None, :], placement_radius_arcsec, radii[:, None])
    return area.mean(axis=1) / (np.pi * placement_radius_arcsec**2)


def vortex_compensation_radii(
    placement_radius_arcsec: float, offsets_arcsec, n_disks: int = VORTEX_COMPENSATION_DISKS
) -> np.ndarray:
    """The n_disks radii [arcsec] of a vortex's compensating disks, increasing, the last
    R + max |s_i| (beyond it the ensemble holds no mass). Within a = R - max |s_i| the
    ensemble's density is uniform (every point of a line centred within R - r .. lies within R),
    so one disk ends at a (when a > 0) and the others are evenly spaced over a < r <= R + max |s_i|,
    where the density falls off; with no such core all n_disks are evenly spaced from 0."""
    reach = float(np.max(np.abs(offsets_arcsec)))
    outer = placement_radius_arcsec + reach
    core = placement_radius_arcsec - reach
    if reach == 0.0:
        return np.array([outer])
    if core > 0.0:
        steps = np.arange(1, n_disks) / (n_disks - 1)
        return np.concatenate([[core], core + (outer - core) * steps])
    return outer * np.arange(1, n_disks + 1) / n_disks


def no_substructure(rng, class_settings, macro, common, instrument) -> Substructure:
    """The smooth `no_sub` class: nothing beyond the macro lens (and no compensation)."""
    _, compensation = mass_compensation({"mass_compensation": "none"}, {}, 0.0, 0.0, macro)
    return Substructure(record={"n_subhalos": 0, "substructure_mass_msun": 0.0, **compensation})


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
        total_mass = float(masses.sum())
    else:
        from darklens.physics.lensing import TNFW

        c200 = concentration_subhalo(masses)
        rs, alpha_rs = COSMOLOGY.nfw_angles(masses, c200, lens["z_lens"], lens["z_source"])
        r_trunc = class_settings["truncation_factor"] * rs
        population = (
            TNFW,
            {"Rs": rs, "alpha_Rs": alpha_rs, "r_trunc": r_trunc, "center_x": x, "center_y": y},
        )
        total_mass = 0.0
        if n and class_settings.get("mass_compensation", MASS_COMPENSATION_MODES[0]) == "sheet":
            from darklens.physics.lensing import population_mass_in_disk

            sigma_crit = COSMOLOGY.sigma_crit(lens["z_lens"], lens["z_source"])  # Msun/arcsec^2
            inside = population_mass_in_disk(
                TNFW,
                population[1],
                class_settings["radius_arcsec"],
                macro.lens["center_x"],
                macro.lens["center_y"],
            )
            total_mass = float(sigma_crit * inside)
    disk, compensation = mass_compensation(
        class_settings, lens, total_mass, class_settings["radius_arcsec"], macro
    )
    record = {"n_subhalos": n, "substructure_mass_msun": float(masses.sum()), **compensation}
    subhalos = {"mass_msun": masses, "x_arcsec": x, "y_arcsec": y}
    return Substructure(
        population=population if n else None,
        record=record,
        subhalos=subhalos,
        compensation=disk,
    )


def _subhalo_count(rng, settings, macro, lens) -> int:
    """The number of subhalos of one image; with `at_least_one`, a Poisson count is drawn from
    the zero-truncated Poisson distribution (redrawn while 0), so that no cdm image lacks one."""
    count = settings["n_subhalos"]
    if count["distribution"] == "fixed":
        if count.get("at_least_one") and count["mean"] < 1:
            raise ValueError("n_subhalos: a fixed count below 1 cannot hold at least one subhalo")
        return int(count["mean"])
    mean = count["mean"]
    if count["distribution"] == "mass_fraction":
        sigma_crit = COSMOLOGY.sigma_crit(lens["z_lens"], lens["z_source"])  # Msun / arcsec^2
        lens_mass = np.pi * sigma_crit * macro.lens["theta_E"] * settings["radius_arcsec"]
        mean_mass = power_law_mean_mass(
            settings["mass_min_msun"], settings["mass_max_msun"], settings["mass_function_slope"]
        )
        mean = count["mass_fraction"] * lens_mass / mean_mass
    if not count.get("at_least_one"):
        return int(rng.poisson(mean))
    if mean <= 0:
        raise ValueError("n_subhalos: at_least_one needs a positive mean number of subhalos")
    while (n := int(rng.poisson(mean))) == 0:
        pass
    return n


def axion_substructure(rng, class_settings, macro, common, instrument) -> Substructure:
    """Wave-like (axion) dark matter: a vortex line or a granule field (docs/physics.md)."""
    lens = common["lens"]
    m_a = log_uniform(rng, class_settings["axion_mass_ev"])
    wavelength = COSMOLOGY.axion_de_broglie_arcsec(m_a, lens["z_lens"])
    record = {"axion_mass_ev": m_a, "de_broglie_arcsec": float(wavelength)}
    if class_settings["variant"] == "vortex":
        return _vortex(rng, class_settings, macro, lens, wavelength, record)
    # granules: zero mean by construction, no sheet (the module docstring)
    _, compensation = mass_compensation({"mass_compensation": "none"}, lens, 0.0, 0.0, macro)
    return _granules(rng, class_settings, instrument, wavelength, {**record, **compensation})


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
    # the ensemble's mean enclosed mass at the disk radii (deterministic: no draw)
    offsets = vortex_offsets(length, n_points)
    radii = vortex_compensation_radii(settings["radius_arcsec"], offsets)
    enclosed = masses.sum() * vortex_enclosed_fraction(radii, settings["radius_arcsec"], offsets)
    enclosed[-1] = masses.sum()  # all of it within R + max |s_i| (the fraction is 1 to rounding)
    disk, compensation = mass_compensation(
        settings, lens, float(masses.sum()), float(radii[-1]), macro, (radii, enclosed)
    )
    record = {
        **record,
        "n_subhalos": n_points,
        "substructure_mass_msun": float(masses.sum()),
        "vortex_length_arcsec": float(length),
        "vortex_angle_rad": float(angle),
        **compensation,
    }
    return Substructure(
        population=(PointMass, {"theta_E": theta_e, "center_x": x, "center_y": y}),
        record=record,
        subhalos={"mass_msun": masses, "x_arcsec": x, "y_arcsec": y},
        compensation=disk,
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
