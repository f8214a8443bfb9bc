"""darklens against lenstronomy on the same physics, side by side, one thread each.

64 x 64 pixels of 0.08", supersampling 4, SIE + external shear + elliptical Sersic source,
Gaussian PSF (FWHM 0.16", 5 sigma), Poisson noise (1000 s) + Gaussian background (0.02);
three cases: no substructure, 25 and 200 TNFW subhalos (1e8..1e10 Msun, m^-1.9, c200 from
`concentration_subhalo`, r_trunc = 10 Rs, uniform within 2"). Both codes render the same drawn
parameters, interleaved image by image so that a busy machine slows both alike.

The ratio compares the same work: one noiseless image (`render_models(with_smooth=False)`) plus
noise. darklens's production path also renders the image without substructure (for
`substructure_chi`); its rate is printed too ("production").

Each case renders `--images` images (default 100) with each code, and the whole measurement is
repeated `--repeats` times (default 3) on new draws; the spread of the ratio over the repeats is
printed beside its mean, so a reader can tell a real difference from the machine's noise.

Usage: python benchmarks/simulator.py [--images N] [--repeats R] [--seed S]
Prints images/s of both and their ratio per case; the last line is `ratio: X`, the mean over the
repeats of the 25 TNFW case's ratio (the same work: one noiseless image plus noise).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "workflow"))

from darklens.physics.cosmology import DEFAULT_COSMOLOGY, concentration_subhalo  # noqa: E402
from darklens.physics.instrument import Instrument, gaussian_psf_kernel  # noqa: E402
from darklens.physics.lensing import TNFW  # noqa: E402
from darklens.physics.sampling import power_law_masses, uniform_in_disk  # noqa: E402
from darklens.simulation import reference  # noqa: E402
from darklens.simulation.render import ImageParameters, render_models  # noqa: E402
from darklens.simulation.substructure import Substructure  # noqa: E402

N_PIX, PIXEL, SUPERSAMPLING, FWHM, EXPOSURE, BACKGROUND = 64, 0.08, 4, 0.16, 1000.0, 0.02


def draw(rng: np.random.Generator, n_subhalos: int):
    """Parameters of one image (lenstronomy keyword names) and its TNFW population."""
    lens = {
        "theta_E": rng.uniform(1.0, 1.4),
        "e1": rng.uniform(-0.2, 0.2),
        "e2": rng.uniform(-0.2, 0.2),
        "center_x": rng.uniform(-0.05, 0.05),
        "center_y": rng.uniform(-0.05, 0.05),
    }
    shear = {"gamma1": rng.uniform(-0.05, 0.05), "gamma2": rng.uniform(-0.05, 0.05)}
    source = {
        "amp": rng.uniform(15, 40),
        "R_sersic": rng.uniform(0.15, 0.35),
        "n_sersic": rng.uniform(0.8, 2.0),
        "e1": rng.uniform(-0.3, 0.3),
        "e2": rng.uniform(-0.3, 0.3),
        "center_x": rng.uniform(-0.3, 0.3),
        "center_y": rng.uniform(-0.3, 0.3),
    }
    masses = power_law_masses(rng, n_subhalos, 1e8, 1e10, -1.9)
    x, y = uniform_in_disk(rng, n_subhalos, 2.0)
    rs, alpha_rs = DEFAULT_COSMOLOGY.nfw_angles(masses, concentration_subhalo(masses), 0.5, 1.0)
    members = {"Rs": rs, "alpha_Rs": alpha_rs, "r_trunc": 10 * rs, "center_x": x, "center_y": y}
    return ImageParameters(lens, shear, source), members


class Lenstronomy:
    """lenstronomy's ImageModel for the benchmark's instrument (`darklens.simulation.reference`),
    built once per lens-model list."""

    def __init__(self):
        self.models = {}

    def image(self, params, members, rng):
        from lenstronomy.Util import image_util

        population = (TNFW, members)
        names = tuple(reference.lens_names(population))
        if names not in self.models:
            self.models[names] = reference.image_model(
                N_PIX, PIXEL, SUPERSAMPLING, FWHM, EXPOSURE, BACKGROUND, list(names)
            )
        model = reference.render(self.models[names], params, population)
        poisson = image_util.add_poisson(model, exp_time=EXPOSURE)
        return model + poisson + rng.normal(0.0, BACKGROUND, model.shape)


class Darklens:
    """darklens's rendering for the same instrument: one image, or (production) also the
    image without substructure, the SNR and substructure_chi."""

    def __init__(self, production: bool = False):
        kernel = gaussian_psf_kernel(FWHM, PIXEL)
        self.instrument = Instrument(N_PIX, PIXEL, SUPERSAMPLING, EXPOSURE, BACKGROUND, kernel)
        self.rays = self.instrument.ray_grid()
        self.production = production

    def image(self, params, members, rng):
        population = (TNFW, members) if len(members["center_x"]) else None
        substructure = Substructure(population=population)
        model, smooth = render_models(
            self.instrument, params, substructure, self.rays, with_smooth=self.production
        )
        if self.production:
            if not substructure.is_empty:
                self.instrument.signal_chi(model, smooth)
            self.instrument.snr(model)
        return self.instrument.add_noise(model, rng)


def run_case(n_subhalos: int, n_images: int, seed: int) -> dict[str, float]:
    """Images per second of each code, interleaved over the same draws."""
    rng = np.random.default_rng(seed)
    draws = [draw(rng, n_subhalos) for _ in range(n_images + 1)]
    codes = {
        "lenstronomy": Lenstronomy(),
        "darklens": Darklens(),
        "production": Darklens(production=True),
    }
    seconds = dict.fromkeys(codes, 0.0)
    for code in codes.values():  # warm-up (tables, kernels, imports)
        code.image(*draws[0], np.random.default_rng(0))
    for params, members in draws[1:]:
        for name, code in codes.items():
            start = time.perf_counter()
            image = code.image(params, members, np.random.default_rng(1))
            seconds[name] += time.perf_counter() - start
            assert np.all(np.isfinite(image))
    return {name: n_images / value for name, value in seconds.items()}


def spread(values) -> str:
    return f"{np.mean(values):6.1f} (min {np.min(values):.1f}, max {np.max(values):.1f})"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images per case and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats on new draws")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    mean_ratio = {}
    for n_subhalos in (0, 200, 25):
        rates = [run_case(n_subhalos, args.images, args.seed + r) for r in range(args.repeats)]
        ratio = [r["darklens"] / r["lenstronomy"] for r in rates]
        production = [r["production"] / r["lenstronomy"] for r in rates]
        mean_ratio[n_subhalos] = float(np.mean(ratio))
        print(
            f"{n_subhalos:4d} TNFW subhalos ({args.images} images x {args.repeats} repeats): "
            f"lenstronomy {np.mean([r['lenstronomy'] for r in rates]):8.2f} images/s, "
            f"darklens {np.mean([r['darklens'] for r in rates]):8.2f} images/s; "
            f"ratio {spread(ratio)}; production (+ smooth image, chi) ratio {spread(production)}",
            flush=True,
        )
    print(f"ratio: {mean_ratio[25]:.1f}")


if __name__ == "__main__":
    main()
