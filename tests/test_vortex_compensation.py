"""The profile-matched mass compensation of an axion vortex (docs/physics.md, "Mass compensation").

A vortex's centre is uniform within R = radius_arcsec of the lens centre, its orientation uniform
and its points at fixed offsets s_i along it, so the ensemble's mean surface density is the disk
R smeared by the line. `vortex_enclosed_fraction` gives its mean enclosed mass in closed form
(checked here against a Monte Carlo of the line and a direct quadrature of the disk overlap); the
compensation's concentric disks remove it exactly at every disk radius and within 0.01 of the
vortex mass between them; the stored disks re-make it; drawing it takes no random number.
"""

import numpy as np
import pytest
from darklens.config import load_config
from darklens.io.class_files import merge_shards, read_image_file
from darklens.physics.cosmology import DEFAULT_COSMOLOGY
from darklens.physics.instrument import Instrument
from darklens.physics.lensing import UniformDisk
from darklens.physics.lensing.uniform_disk import ConcentricDisks
from darklens.simulation.render import draw_macro_model, image_rng
from darklens.simulation.shards import write_shard
from darklens.simulation.substructure import (
    SUBSTRUCTURE_MODELS,
    VORTEX_COMPENSATION_DISKS,
    compensation_disks,
    compensation_from_record,
    disk_overlap_area,
    stepwise_disk_kappas,
    vortex_compensation_radii,
    vortex_enclosed_fraction,
    vortex_offsets,
)

INSTRUMENT = Instrument(24, 0.1, 3, 1.0, 1.0)
#: Bound on |disks' enclosed mass - ensemble mean enclosed mass| between the disk radii, as a
#: fraction of the vortex mass (measured max 0.0065 over lengths 0.1 .. 10" at R = 1").
STEPWISE_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def sim(repo):
    config = load_config(repo / "config.yaml")["simulation"]
    common = {k: v for k, v in config.items() if k != "classes"}
    return common, config["classes"]


def _draw(sim, index, **overrides):
    common, classes = sim
    rng = image_rng(7, "axion", index)
    params = draw_macro_model(rng, common["lens"], common["source"], common["lens_light"])
    settings = {**classes["axion"], **overrides}
    sub = SUBSTRUCTURE_MODELS["axion"](rng, settings, params, common, INSTRUMENT)
    return params, sub, rng


def test_disk_overlap_area_identities():
    rng = np.random.default_rng(0)
    d, a, b = rng.uniform(0, 3, 500), rng.uniform(0.1, 2, 500), rng.uniform(0.1, 2, 500)
    area = disk_overlap_area(d, a, b)
    np.testing.assert_allclose(area, disk_overlap_area(d, b, a), rtol=0, atol=1e-13)  # symmetric
    assert np.all(area >= 0) and np.all(area <= np.pi * np.minimum(a, b) ** 2 * (1 + 1e-15))
    assert disk_overlap_area(3.0, 1.0, 2.0) == 0.0  # touching from outside
    assert disk_overlap_area(0.5, 0.5, 2.0) == pytest.approx(np.pi * 0.25, rel=1e-15)  # nested
    # quadrature: the chord length of disk b at each x inside disk a, integrated (1e-7)
    x = np.linspace(-1.0, 1.0, 200_001)
    for distance, radius in ((0.7, 0.9), (1.5, 0.8), (0.2, 1.5)):
        half = np.sqrt(np.maximum(radius**2 - (x - distance) ** 2, 0.0))
        chord = np.clip(np.minimum(half, np.sqrt(1 - x**2)), 0, None) * 2
        inside = np.abs(x - distance) < radius
        quad = np.trapezoid(np.where(inside, chord, 0.0), x)
        assert float(disk_overlap_area(distance, 1.0, radius)) == pytest.approx(quad, abs=1e-6)


@pytest.mark.parametrize("length", [0.3, 1.0, 2.5, 6.0])
def test_enclosed_fraction_matches_a_monte_carlo_of_the_line(length):
    """200,000 lines (centre uniform in R = 1", orientation uniform, 100 points): the fraction of
    points within r agrees with the closed form within 4 standard errors (a line's fraction lies
    in [0, 1] with mean p: its variance is at most p (1 - p))."""
    radius, n = 1.0, 200_000
    offsets = vortex_offsets(length, 100)
    rng = np.random.default_rng(1)
    r = radius * np.sqrt(rng.random(n))
    phi, angle = 2 * np.pi * rng.random(n), 2 * np.pi * rng.random(n)
    cx, cy = r * np.cos(phi), r * np.sin(phi)
    radii = np.array([0.2, 0.6, 1.0, 1.4, 2.0, 3.0])
    inside = np.zeros(len(radii))
    for s in offsets[::5]:  # every 5th point: the same symmetric law, cheaper
        distance = np.hypot(cx + s * np.cos(angle), cy + s * np.sin(angle))
        inside += (distance[:, None] < radii).mean(axis=0)
    monte_carlo = inside / len(offsets[::5])
    exact = vortex_enclosed_fraction(radii, radius, offsets[::5])
    error = np.sqrt(np.clip(exact * (1 - exact), 0, None) / n)
    assert np.all(np.abs(monte_carlo - exact) <= 4 * error + 1e-12)
    # inside R - max|s| the density is uniform: fraction r^2 / R^2 (to 1e-9: arccos near
    # the internal tangency at r = R - max|s| loses digits)
    core = radius - np.abs(offsets).max()
    if core > 0:
        r_core = np.linspace(0.01, core, 7)
        np.testing.assert_allclose(
            vortex_enclosed_fraction(r_core, radius, offsets), r_core**2, rtol=1e-9
        )
    outer = radius + np.abs(offsets).max()
    assert vortex_enclosed_fraction([outer], radius, offsets)[0] == pytest.approx(1.0, abs=1e-9)


def test_stepwise_disks_reproduce_the_enclosed_mass_at_every_radius():
    radii = np.array([0.3, 0.5, 1.1, 2.0])
    enclosed = -np.array([0.01, 0.05, 0.06, 0.2])  # convergence mass [arcsec^2]
    kappas = stepwise_disk_kappas(radii, enclosed)
    disks = ConcentricDisks(
        tuple(UniformDisk(kappa=k, r_trunc=r) for k, r in zip(kappas, radii, strict=True))
    )
    for radius, mass in zip(radii, enclosed, strict=True):
        inside = sum(
            np.pi * float(d.kappa) * min(radius, float(d.r_trunc)) ** 2 for d in disks.disks
        )
        assert inside == pytest.approx(mass, rel=1e-12)
    assert float(disks.mass()) == pytest.approx(enclosed[-1], rel=1e-12)
    with pytest.raises(ValueError, match="increasing"):
        stepwise_disk_kappas(radii[::-1], enclosed)


@pytest.mark.parametrize("length", [0.1, 0.5, 1.0, 2.0, 4.0, 9.9])
def test_vortex_disks_follow_the_ensemble_profile(sim, length):
    """At R = 1", the default 100 points and lengths over the default range (0.1 .. 9.9"): the
    disks' enclosed mass equals the ensemble mean at every disk radius (1e-12) and stays within
    STEPWISE_TOLERANCE of it between them; the total is the vortex mass."""
    from darklens.simulation.substructure import mass_compensation

    common, classes = sim
    settings, mass = classes["axion"], classes["axion"]["vortex_mass_msun"]
    offsets = vortex_offsets(length, settings["vortex_points"])
    radii = vortex_compensation_radii(settings["radius_arcsec"], offsets)
    assert len(radii) == VORTEX_COMPENSATION_DISKS and np.all(np.diff(radii) > 0)
    enclosed = mass * vortex_enclosed_fraction(radii, settings["radius_arcsec"], offsets)
    macro = type("Macro", (), {"lens": {"center_x": 0.02, "center_y": -0.03}})()
    disks, record = mass_compensation(
        settings, common["lens"], mass, float(radii[-1]), macro, (radii, enclosed)
    )
    sigma_crit = DEFAULT_COSMOLOGY.sigma_crit(common["lens"]["z_lens"], common["lens"]["z_source"])

    def disk_mass(r):
        return sigma_crit * sum(
            np.pi * float(d.kappa) * np.minimum(r, float(d.r_trunc)) ** 2 for d in disks.disks
        )

    np.testing.assert_allclose(disk_mass(radii), -enclosed, rtol=1e-12, atol=1e-12 * mass)
    fine = np.linspace(0, radii[-1] * 1.2, 3001)
    truth = mass * vortex_enclosed_fraction(fine, settings["radius_arcsec"], offsets)
    assert np.abs(disk_mass(fine) + truth).max() < STEPWISE_TOLERANCE * mass
    assert float(disks.mass()) * sigma_crit == pytest.approx(-mass, rel=1e-12)
    assert record["compensation_mass_msun"] == mass and record["compensation_kappa"] < 0


def test_the_compensation_draws_nothing_and_leaves_the_vortex_unchanged(sim):
    for index in range(5):
        _, sheet, rng_sheet = _draw(sim, index)
        _, none, rng_none = _draw(sim, index, mass_compensation="none")
        for key in ("mass_msun", "x_arcsec", "y_arcsec"):
            np.testing.assert_array_equal(sheet.subhalos[key], none.subhalos[key])
        assert rng_sheet.random() == rng_none.random()
        assert none.compensation is None and sheet.record["compensation_kappa"] < 0
        assert len(compensation_disks(sheet.compensation)["kappa"]) == VORTEX_COMPENSATION_DISKS


def test_the_points_lie_at_the_offsets_the_profile_assumes(sim):
    params, sub, _ = _draw(sim, 0)
    length, angle = sub.record["vortex_length_arcsec"], sub.record["vortex_angle_rad"]
    x, y = sub.subhalos["x_arcsec"], sub.subhalos["y_arcsec"]
    along = (x - x.mean()) * np.cos(angle) + (y - y.mean()) * np.sin(angle)
    np.testing.assert_allclose(along, vortex_offsets(length, len(x)), atol=1e-12)


def test_the_disks_are_added_exactly_to_the_ray_field(sim):
    from darklens.physics.lensing.grid import lagrange_upsample

    _, sheet, _ = _draw(sim, 3)
    _, none, _ = _draw(sim, 3, mass_compensation="none")

    def ray_sum(sub):
        far, add_near = sub.ray_field(INSTRUMENT)
        alpha = lagrange_upsample(far, INSTRUMENT.supersampling)
        add_near(alpha)
        return alpha

    exact = np.stack(sheet.compensation.deflection(*INSTRUMENT.ray_grid()))
    np.testing.assert_allclose(ray_sum(sheet) - ray_sum(none), exact, rtol=0, atol=1e-15)


def test_stored_disks_remake_the_compensation_and_survive_merging(sim, tmp_path):
    common, classes = sim
    common = {**common, "images_per_class": 4, "images_per_shard": 2}
    common["instrument"] = {**common["instrument"], "n_pix": 16, "supersampling": 1}
    for shard in (0, 1):
        write_shard(common, "axion", classes["axion"], shard, 5, tmp_path / f"s{shard}.h5")
    merge_shards([tmp_path / "s0.h5", tmp_path / "s1.h5"], tmp_path / "axion.h5", "axion")
    data = read_image_file(tmp_path / "axion.h5")
    disks, offset = data["compensation_disks"], data["compensation_disks"]["offset"]
    np.testing.assert_array_equal(np.diff(offset), VORTEX_COMPENSATION_DISKS)
    x, y = np.meshgrid(np.linspace(-3, 3, 41), np.linspace(-3, 3, 41))
    from darklens.simulation.shards import resimulate_image

    for row in range(4):
        params = {k: v[row] for k, v in data["params"].items()}
        rows = slice(offset[row], offset[row + 1])
        stored = compensation_from_record(params, {k: disks[k][rows] for k in disks})
        truth = resimulate_image(data["attrs"], row).substructure.compensation
        np.testing.assert_array_equal(np.stack(stored.deflection(x, y)), truth.deflection(x, y))
        assert stored.kappa == pytest.approx(params["compensation_kappa"], rel=1e-12)
        with pytest.raises(ValueError, match="compensation_disks"):
            compensation_from_record(params)
