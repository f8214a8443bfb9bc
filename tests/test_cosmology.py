"""Cosmology: docs/physics.md reference values, astropy, lenstronomy's NFW conversion."""

import numpy as np
import pytest
from darklens.physics import cosmology as cosmo

Z_L, Z_S = 0.5, 1.0


def _digits(value, reference, places):
    """True when value rounds to reference at `places` significant digits."""
    return float(f"{value:.{places}g}") == pytest.approx(reference, rel=1e-12)


def test_distances_match_physics_md():
    assert cosmo.angular_diameter_distance(Z_L) == pytest.approx(1259.0836, abs=5e-5)
    assert cosmo.angular_diameter_distance(Z_S) == pytest.approx(1651.9144, abs=5e-5)
    assert cosmo.angular_diameter_distance_z1z2(Z_L, Z_S) == pytest.approx(707.6017, abs=5e-5)
    assert cosmo.kpc_per_arcsec(Z_L) == pytest.approx(6.1042, abs=5e-5)


def test_sigma_crit_and_einstein_radii_match_physics_md():
    assert _digits(cosmo.sigma_crit(Z_L, Z_S), 1.148557e11, 7)
    for mass, theta in [(1e6, 0.0016647), (1e8, 0.016647), (1e10, 0.16647), (1e12, 1.6647)]:
        assert _digits(cosmo.theta_E_point_mass(mass, Z_L, Z_S), theta, 5)
    assert cosmo.theta_E_sis(200.0, Z_L, Z_S) == pytest.approx(0.494146, abs=5e-7)


@pytest.mark.parametrize(
    "mass, c200, rs, alpha_rs",
    [
        (1e6, 17.345, 0.016284, 2.6592e-5),
        (1e8, 12.0, 0.10925, 4.7408e-4),
        (1e10, 8.302, 0.73299, 8.6728e-3),
    ],
)
def test_nfw_table_of_physics_md(mass, c200, rs, alpha_rs):
    assert _digits(cosmo.concentration_subhalo(mass), c200, 5 if mass != 1e8 else 3)
    rs_arcsec, alpha_rs_arcsec = cosmo.nfw_angles(mass, cosmo.concentration_subhalo(mass), Z_L, Z_S)
    assert _digits(rs_arcsec, rs, 5)
    assert _digits(alpha_rs_arcsec, alpha_rs, 5)


def test_axion_de_broglie_wavelength():
    assert cosmo.de_broglie_wavelength_kpc(1e-22) == pytest.approx(0.602, abs=5e-4)
    assert cosmo.de_broglie_wavelength_kpc(1e-23, v_km_s=100.0) == pytest.approx(12.04, abs=1e-2)
    assert cosmo.axion_de_broglie_arcsec(1e-22, Z_L) == pytest.approx(0.0987, abs=5e-5)


def test_arrays_of_redshift():
    z = np.array([[0.1, 0.5], [1.0, 3.0]])
    d = cosmo.angular_diameter_distance(z)
    assert d.shape == (2, 2)
    np.testing.assert_allclose(d[0, 1], cosmo.angular_diameter_distance(0.5), rtol=1e-15)
    assert cosmo.angular_diameter_distance(0.0) == 0.0
    assert cosmo.sigma_crit(np.array([0.3, 0.5]), 1.0).shape == (2,)


def test_other_cosmology():
    """Distances scale as c / H0 at fixed Om0; more matter decelerates: shorter distances."""
    z = np.array([0.5, 1.0, 3.0])
    slow, fast = cosmo.Cosmology(H0=67.0, Om0=0.31), cosmo.Cosmology(H0=70.0, Om0=0.31)
    np.testing.assert_allclose(
        67.0 * slow.angular_diameter_distance(z),
        70.0 * fast.angular_diameter_distance(z),
        rtol=1e-14,
    )
    assert np.all(fast.angular_diameter_distance(z) < cosmo.angular_diameter_distance(z))


def test_distances_match_astropy():
    astropy_cosmology = pytest.importorskip("astropy.cosmology")
    z = np.array([0.01, 0.2, 0.5, 1.0, 2.0, 5.0])
    for h0, om0 in [(70.0, 0.3), (67.7, 0.31)]:
        ref = astropy_cosmology.FlatLambdaCDM(H0=h0, Om0=om0)
        ours = cosmo.Cosmology(H0=h0, Om0=om0)
        np.testing.assert_allclose(
            ours.angular_diameter_distance(z), ref.angular_diameter_distance(z).value, rtol=1e-10
        )
        np.testing.assert_allclose(
            ours.angular_diameter_distance_z1z2(0.5, z[3:]),
            (ref.comoving_distance(z[3:]) - ref.comoving_distance(0.5)).value / (1 + z[3:]),
            rtol=1e-10,
        )
        np.testing.assert_allclose(
            ours.critical_density(z), ref.critical_density(z).to("Msun/Mpc3").value, rtol=1e-8
        )


def test_sigma_crit_vs_astropy_constants():
    """astropy's (CODATA 2018 / IAU 2015) G * M_sun is 2.8e-4 smaller than lenstronomy's."""
    pytest.importorskip("astropy")
    from astropy import constants, units

    d_l = cosmo.angular_diameter_distance(Z_L) * units.Mpc
    d_s = cosmo.angular_diameter_distance(Z_S) * units.Mpc
    d_ls = cosmo.angular_diameter_distance_z1z2(Z_L, Z_S) * units.Mpc
    sigma = constants.c**2 * d_s / (4 * np.pi * constants.G * d_l * d_ls)
    per_arcsec2 = (sigma * (d_l * cosmo.ARCSEC_RAD) ** 2).to("Msun").value
    assert cosmo.sigma_crit(Z_L, Z_S) / per_arcsec2 - 1 == pytest.approx(-2.78e-4, abs=1e-5)


def test_nfw_angles_match_lenstronomy():
    pytest.importorskip("lenstronomy")
    from astropy.cosmology import FlatLambdaCDM
    from lenstronomy.Cosmo.lens_cosmo import LensCosmo

    lens_cosmo = LensCosmo(z_lens=Z_L, z_source=Z_S, cosmo=FlatLambdaCDM(H0=70, Om0=0.3))
    for mass in (1e6, 3e7, 1e9, 1e11):
        c = float(cosmo.concentration_subhalo(mass))
        ref = lens_cosmo.nfw_physical2angle(mass, c)
        np.testing.assert_allclose(cosmo.nfw_angles(mass, c, Z_L, Z_S), ref, rtol=1e-10)
    assert cosmo.sigma_crit(Z_L, Z_S) == pytest.approx(lens_cosmo.sigma_crit_angle, rel=1e-10)
    ref_theta = lens_cosmo.sis_sigma_v2theta_E(200.0)
    assert cosmo.theta_E_sis(200.0, Z_L, Z_S) == pytest.approx(ref_theta, rel=1e-10)
