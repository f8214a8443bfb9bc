"""Flat LambdaCDM distances and the lensing scales derived from them.

Conventions (docs/physics.md): ``chi(z) = (c/H0) int_0^z dz'/E(z')``,
``E = sqrt(Om (1+z)^3 + 1 - Om)`` (no radiation, as astropy's ``FlatLambdaCDM`` with
``Tcmb0 = 0``), ``D_A(z) = chi/(1+z)``,
``D_ls = (chi_s - chi_l)/(1+z_s)``, ``Sigma_crit = c^2 D_s / (4 pi G D_l D_ls)``.
The distance integral is a fixed Gauss-Legendre rule (exact to ~1e-14 relative for z < 20)
and accepts numpy arrays of redshift.

Physical constants: darklens uses the values of lenstronomy 1.14.2 (``lenstronomy.Util.constants``
and its ``NFWParam.rhoc``), so that its numbers equal lenstronomy's and docs/physics.md's to every
digit given there. Note that lenstronomy's G * M_sun (CODATA 2010 G times M_sun = 1.9891e30 kg)
is 2.8e-4 larger than the IAU 2015 / CODATA 2018 value that astropy uses, while its critical
density constant follows the astropy value; Sigma_crit is therefore 2.8e-4 smaller than with
astropy's constants (theta_E of a point mass 1.4e-4 larger). This is far below any effect
the project measures; the distances themselves agree with astropy to ~1e-12.

Units: redshift dimensionless, distances Mpc, masses Msun, angles arcsec, velocities km/s.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

#: Speed of light. Unit: km/s.
C_KM_S = 299792.458
#: Newton's constant as in lenstronomy 1.14.2. Unit: m^3 kg^-1 s^-2.
G_SI = 6.67384e-11
#: Solar mass as in lenstronomy 1.14.2. Unit: kg.
M_SUN_KG = 1.9891e30
#: One megaparsec as in lenstronomy 1.14.2. Unit: m.
MPC_M = 3.08567758e22
#: One kiloparsec. Unit: Mpc.
KPC_MPC = 1e-3
#: Newton's constant. Unit: Mpc (km/s)^2 / Msun.
G_MPC_KM2_S2_PER_MSUN = G_SI * M_SUN_KG / MPC_M / 1e6
#: Critical density today divided by h^2 (lenstronomy's ``NFWParam.rhoc``).
#: Unit: Msun / Mpc^3 (times h^2, h = H0 / (100 km/s/Mpc)).
RHO_CRIT0_H2_MSUN_MPC3 = 2.77536627e11
#: One arcsec. Unit: radian.
ARCSEC_RAD = np.pi / 648000.0
#: Planck constant times the speed of light (exact in SI 2019). Unit: eV m.
H_C_EV_M = 1.239841984e-6
#: One kiloparsec (IAU). Unit: m.
KPC_M = 3.0856775814913673e19

#: Gauss-Legendre rule on [-1, 1] for the comoving-distance integral. Unit: dimensionless.
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(64)


def concentration_subhalo(
    m200_msun: ArrayLike, c_pivot: float = 12.0, m_pivot_msun: float = 1e8, slope: float = -0.08
) -> FloatArray:
    """Concentration-mass relation used for subhalos: c200 = 12 (M200 / 1e8 Msun)^-0.08.

    A power law with the slope of Duffy et al. 2008 (-0.084 for c200 of relaxed and full
    samples) and normalised to c200 = 12 at 1e8 Msun; it gives docs/physics.md's table values
    17.345 (1e6 Msun), 12.0 (1e8), 8.302 (1e10). Field-halo relation, no tidal evolution.

    Args:
        m200_msun: M200 (w.r.t. the critical density). Unit: Msun.
        c_pivot: c200 at ``m_pivot_msun``. Unit: dimensionless.
        m_pivot_msun: pivot mass. Unit: Msun.
        slope: logarithmic slope d ln c / d ln M. Unit: dimensionless.

    Returns:
        c200 = r200 / Rs. Unit: dimensionless.
    """
    return c_pivot * (np.asarray(m200_msun, dtype=np.float64) / m_pivot_msun) ** slope


def de_broglie_wavelength_kpc(m_a_ev: ArrayLike, v_km_s: ArrayLike = 200.0) -> FloatArray:
    """de Broglie wavelength h / (m_a v) of an ultralight boson.

    0.602 kpc * (1e-22 eV / m_a) * (200 km/s / v).

    Args:
        m_a_ev: boson mass m_a c^2. Unit: eV.
        v_km_s: velocity (typical halo velocity dispersion). Unit: km/s.

    Returns:
        wavelength. Unit: kpc.
    """
    return H_C_EV_M / np.asarray(m_a_ev, dtype=np.float64) * (C_KM_S / v_km_s) / KPC_M


@dataclasses.dataclass(frozen=True)
class Cosmology:
    """Flat LambdaCDM background.

    Attributes:
        H0: Hubble constant. Unit: km/s/Mpc.
        Om0: matter density today over the critical density. Unit: dimensionless.
    """

    H0: float = 70.0
    Om0: float = 0.3

    @property
    def hubble_distance_mpc(self) -> float:
        """c / H0. Unit: Mpc."""
        return C_KM_S / self.H0

    def efunc(self, z: ArrayLike) -> FloatArray:
        """E(z) = H(z) / H0 = sqrt(Om (1+z)^3 + 1 - Om). Unit: dimensionless."""
        zp1 = 1.0 + np.asarray(z, dtype=np.float64)
        return np.sqrt(self.Om0 * zp1**3 + (1.0 - self.Om0))

    def comoving_distance(self, z: ArrayLike) -> FloatArray:
        """Line-of-sight comoving distance chi(z) = (c/H0) int_0^z dz'/E(z'). Unit: Mpc."""
        z = np.asarray(z, dtype=np.float64)
        half = 0.5 * z[..., None]
        integrand = 1.0 / self.efunc(half * (1.0 + _GL_NODES))
        return self.hubble_distance_mpc * np.sum(_GL_WEIGHTS * integrand, axis=-1) * half[..., 0]

    def angular_diameter_distance(self, z: ArrayLike) -> FloatArray:
        """D_A(z) = chi(z) / (1 + z). Unit: Mpc."""
        return self.comoving_distance(z) / (1.0 + np.asarray(z, dtype=np.float64))

    def angular_diameter_distance_z1z2(self, z1: ArrayLike, z2: ArrayLike) -> FloatArray:
        """D_12 = (chi(z2) - chi(z1)) / (1 + z2) (flat universe), for z2 > z1. Unit: Mpc."""
        chi1 = self.comoving_distance(z1)
        chi2 = self.comoving_distance(z2)
        return (chi2 - chi1) / (1.0 + np.asarray(z2, dtype=np.float64))

    def critical_density(self, z: ArrayLike) -> FloatArray:
        """Critical density of the universe 3 H(z)^2 / (8 pi G). Unit: Msun / Mpc^3."""
        h = self.H0 / 100.0
        return RHO_CRIT0_H2_MSUN_MPC3 * h**2 * self.efunc(z) ** 2

    def kpc_per_arcsec(self, z: ArrayLike) -> FloatArray:
        """Proper transverse size of one arcsec at redshift z. Unit: kpc / arcsec."""
        return self.angular_diameter_distance(z) / KPC_MPC * ARCSEC_RAD

    def sigma_crit(self, z_l: ArrayLike, z_s: ArrayLike) -> FloatArray:
        """Critical surface density c^2 D_s / (4 pi G D_l D_ls) per lens-plane arcsec^2.

        Unit: Msun / arcsec^2.
        """
        d_l = self.angular_diameter_distance(z_l)
        d_s = self.angular_diameter_distance(z_s)
        d_ls = self.angular_diameter_distance_z1z2(z_l, z_s)
        sigma_mpc2 = C_KM_S**2 / (4.0 * np.pi * G_MPC_KM2_S2_PER_MSUN) * d_s / (d_l * d_ls)
        return sigma_mpc2 * (d_l * ARCSEC_RAD) ** 2

    def theta_E_point_mass(
        self, mass_msun: ArrayLike, z_l: ArrayLike, z_s: ArrayLike
    ) -> FloatArray:
        """Einstein radius sqrt(M / (pi Sigma_crit)) of a point mass (mass in Msun).

        Unit: arcsec.
        """
        return np.sqrt(
            np.asarray(mass_msun, dtype=np.float64) / (np.pi * self.sigma_crit(z_l, z_s))
        )

    def theta_E_sis(self, sigma_v_km_s: ArrayLike, z_l: ArrayLike, z_s: ArrayLike) -> FloatArray:
        """Einstein radius 4 pi (sigma_v / c)^2 D_ls / D_s of an SIS (sigma_v in km/s).

        Unit: arcsec.
        """
        ratio = self.angular_diameter_distance_z1z2(z_l, z_s) / self.angular_diameter_distance(z_s)
        sigma = np.asarray(sigma_v_km_s, dtype=np.float64)
        return 4.0 * np.pi * (sigma / C_KM_S) ** 2 * ratio / ARCSEC_RAD

    def nfw_angles(
        self, m200_msun: ArrayLike, c200: ArrayLike, z_l: ArrayLike, z_s: ArrayLike
    ) -> tuple[FloatArray, FloatArray]:
        """Lensing parameters (Rs, alpha_Rs) of an NFW halo, as lenstronomy's
        ``LensCosmo.nfw_physical2angle``.

        r200 = (3 M200 / (4 pi 200 rho_crit(z_l)))^(1/3), Rs = r200 / c200,
        rho0 = (200/3) rho_crit c^3 / (ln(1+c) - c/(1+c)),
        alpha_Rs = 4 rho0 Rs^2 (1 - ln 2) / Sigma_crit (the deflection at R = Rs).

        Args:
            m200_msun: mass within r200 (200 times the critical density at z_l). Unit: Msun.
            c200: concentration r200 / Rs. Unit: dimensionless.
            z_l, z_s: lens and source redshifts.

        Returns:
            (Rs_arcsec, alpha_Rs_arcsec). Unit: arcsec.
        """
        c = np.asarray(c200, dtype=np.float64)
        rho_crit = self.critical_density(z_l)
        r200_mpc = (3.0 * np.asarray(m200_msun, dtype=np.float64) / (800.0 * np.pi * rho_crit)) ** (
            1.0 / 3.0
        )
        rs_mpc = r200_mpc / c
        rho0 = 200.0 / 3.0 * rho_crit * c**3 / (np.log1p(c) - c / (1.0 + c))
        d_l = self.angular_diameter_distance(z_l)
        sigma_mpc2 = self.sigma_crit(z_l, z_s) / (d_l * ARCSEC_RAD) ** 2
        alpha_rs_mpc = 4.0 * rho0 * rs_mpc**2 * (1.0 - np.log(2.0)) / sigma_mpc2
        return rs_mpc / d_l / ARCSEC_RAD, alpha_rs_mpc / d_l / ARCSEC_RAD

    def axion_de_broglie_arcsec(
        self, m_a_ev: ArrayLike, z_l: ArrayLike, v_km_s: ArrayLike = 200.0
    ) -> FloatArray:
        """de Broglie wavelength h / (m_a v) seen at the lens redshift.

        0.602 kpc * (1e-22 eV / m_a) * (200 km/s / v), divided by kpc_per_arcsec(z_l);
        0.0987 arcsec for m_a = 1e-22 eV at z_l = 0.5.

        Args:
            m_a_ev: boson mass. Unit: eV.
            z_l: lens redshift.
            v_km_s: velocity. Unit: km/s.

        Returns:
            wavelength. Unit: arcsec.
        """
        return de_broglie_wavelength_kpc(m_a_ev, v_km_s) / self.kpc_per_arcsec(z_l)


#: The project default: flat LambdaCDM with H0 = 70 km/s/Mpc, Om0 = 0.3.
DEFAULT_COSMOLOGY = Cosmology()

efunc = DEFAULT_COSMOLOGY.efunc
comoving_distance = DEFAULT_COSMOLOGY.comoving_distance
angular_diameter_distance = DEFAULT_COSMOLOGY.angular_diameter_distance
angular_diameter_distance_z1z2 = DEFAULT_COSMOLOGY.angular_diameter_distance_z1z2
critical_density = DEFAULT_COSMOLOGY.critical_density
kpc_per_arcsec = DEFAULT_COSMOLOGY.kpc_per_arcsec
sigma_crit = DEFAULT_COSMOLOGY.sigma_crit
theta_E_point_mass = DEFAULT_COSMOLOGY.theta_E_point_mass
theta_E_sis = DEFAULT_COSMOLOGY.theta_E_sis
nfw_angles = DEFAULT_COSMOLOGY.nfw_angles
axion_de_broglie_arcsec = DEFAULT_COSMOLOGY.axion_de_broglie_arcsec
