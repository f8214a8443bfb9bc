"""Physics: the units-bearing pieces every image is made of.

Holds cosmology (distances, critical densities, subhalo concentrations), the ellipticity
convention shared by mass and light (`ellipticity`: lenstronomy's, clamped), light profiles
(elliptical Sersic), the instrument (pixel grid, PSF, noise, SNR definitions), sampling of
populations (power-law masses, positions in a disk) and `lensing/` (one class per lens profile:
SIS, SIE, external shear, point mass, NFW and truncated NFW; FFT deflections of a convergence
map; the supersampled ray grid). Conventions and reference values: docs/physics.md.

May import: nothing else of darklens (it is the bottom of the house).
"""
