"""darklens's smooth-lens fitter against lenstronomy's FittingSequence, same images, one thread.

The images: `no_sub` images of the default configuration (config.yaml: 64 x 64 pixels of 0.08",
supersampling 4, Gaussian PSF FWHM 0.16", 1000 s, background 0.02), simulated by darklens with
the config's seed. The model: SIE + SHEAR (about the origin) + SERSIC_ELLIPSE source, in both
codes, with the same noise model (var = model / exposure_time + background_rms^2, lenstronomy's
`ImageData.log_likelihood`) and the same data-driven starting point (darklens's first start,
`darklens.fitting.solver.initial_guesses`; lenstronomy's amplitude is solved linearly, as in
darklens). lenstronomy runs PSO (`--pso-particles`, `--pso-iterations`) then SIMPLEX
(`--simplex-iterations`), its usual sequence; darklens runs `fit_images` with the config's
`fitting` settings (eager torch; `--compile` adds a torch.compile run, timed after a warm-up
call so that compilation is reported separately).

darklens fits `--images` images (default 100) and lenstronomy the first `--lenstronomy-images`
of them (default 3, it is slow); the whole measurement is repeated `--repeats` times (default
2), the codes interleaved so that a busy machine slows both alike, and the spread over the
repeats is printed. Reduced chi^2 = chi^2 / (pixels - 14 free parameters) for both.

`--compare-ref REF` also times darklens's fitter as it was at git revision REF (its
`fitting/model.py` and `fitting/solver.py`, read with `git show`), interleaved with the others,
for a before/after measurement in one invocation.

Usage: python benchmarks/fitting.py [--images N] [--lenstronomy-images M] [--repeats R]
[--compile] [--compare-ref REF]
Prints the median reduced chi^2 of both (on the images both fitted, and darklens's on all),
darklens fits per second per core, lenstronomy seconds per image, and last `ratio: X`:
lenstronomy's time per image over darklens's (eager, the default setting).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from darklens.config import load_config, simulation_common  # noqa: E402
from darklens.fitting.model import SmoothLensModel  # noqa: E402
from darklens.fitting.solver import BOUNDS, FitSettings, fit_images, initial_guesses  # noqa: E402
from darklens.physics.instrument import Instrument  # noqa: E402
from darklens.simulation.presets import resolve  # noqa: E402
from darklens.simulation.render import build_instrument  # noqa: E402
from darklens.simulation.shards import simulate_shard  # noqa: E402

N_FREE = 14  # 13 non-linear parameters + the source amplitude


def simulate(config: dict, n: int) -> tuple[np.ndarray, dict, Instrument, dict]:
    common = simulation_common(config)
    common["images_per_class"] = common["images_per_shard"] = n
    data = simulate_shard(
        common, "no_sub", config["simulation"]["classes"]["no_sub"], 0, config["seed"]
    )
    section = resolve(common)[0]["instrument"]
    inst = build_instrument(section)
    fit_instrument = Instrument(
        inst.n_pix,
        inst.pixel_scale_arcsec,
        inst.supersampling,
        inst.exposure_time_s,
        inst.background_rms,
        inst.psf_kernel,
    )
    return data["images"], data["params"], fit_instrument, section


def load_revision(ref: str) -> tuple[types.ModuleType, types.ModuleType]:
    """darklens.fitting's model and solver modules as they were at git revision `ref`."""
    modules = []
    for name in ("model", "solver"):
        path = f"workflow/darklens/fitting/{name}.py"
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{ref}:{path}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        source = source.replace("from darklens.fitting.model import", "from _ref_model import")
        module = types.ModuleType(f"_ref_{name}")
        sys.modules[module.__name__] = module
        exec(compile(source, f"{ref}:{path}", "exec"), module.__dict__)
        modules.append(module)
    return modules[0], modules[1]


def lenstronomy_fit(image: np.ndarray, start: np.ndarray, section: dict, args) -> float:
    """Fit one image with FittingSequence (PSO then SIMPLEX); returns its reduced chi^2."""
    from lenstronomy.Util import simulation_util
    from lenstronomy.Workflow.fitting_sequence import FittingSequence

    n, pixel = section["n_pix"], section["pixel_scale_arcsec"]
    kwargs_data = simulation_util.data_configure_simple(
        n, pixel, section["exposure_time_s"], section["background_rms"]
    )
    kwargs_data["image_data"] = image.astype(np.float64)
    psf = {
        "psf_type": "GAUSSIAN",
        "fwhm": section["psf_fwhm_arcsec"],
        "pixel_size": pixel,
        "truncation": 5,
    }
    numerics = {"supersampling_factor": section["supersampling"]}
    data_joint = {
        "multi_band_list": [[kwargs_data, psf, numerics]],
        "multi_band_type": "single-band",
    }
    model = {"lens_model_list": ["SIE", "SHEAR"], "source_light_model_list": ["SERSIC_ELLIPSE"]}
    half = 0.5 * n * pixel
    p = dict(
        zip(
            [
                "theta_E",
                "e1",
                "e2",
                "cx",
                "cy",
                "g1",
                "g2",
                "R",
                "n",
                "se1",
                "se2",
                "sx",
                "sy",
            ],
            start,
            strict=True,
        )
    )
    lens_init = [
        {
            "theta_E": p["theta_E"],
            "e1": p["e1"],
            "e2": p["e2"],
            "center_x": p["cx"],
            "center_y": p["cy"],
        },
        {"gamma1": p["g1"], "gamma2": p["g2"], "ra_0": 0.0, "dec_0": 0.0},
    ]
    lens_sigma = [
        {"theta_E": 0.1, "e1": 0.1, "e2": 0.1, "center_x": 0.1, "center_y": 0.1},
        {"gamma1": 0.05, "gamma2": 0.05},
    ]
    lens_low = [
        {
            "theta_E": BOUNDS["theta_E"][0],
            "e1": BOUNDS["e1"][0],
            "e2": BOUNDS["e2"][0],
            "center_x": -half,
            "center_y": -half,
        },
        {"gamma1": BOUNDS["gamma1"][0], "gamma2": BOUNDS["gamma2"][0]},
    ]
    lens_high = [
        {
            "theta_E": BOUNDS["theta_E"][1],
            "e1": BOUNDS["e1"][1],
            "e2": BOUNDS["e2"][1],
            "center_x": half,
            "center_y": half,
        },
        {"gamma1": BOUNDS["gamma1"][1], "gamma2": BOUNDS["gamma2"][1]},
    ]
    source_init = [
        {
            "R_sersic": p["R"],
            "n_sersic": p["n"],
            "e1": p["se1"],
            "e2": p["se2"],
            "center_x": p["sx"],
            "center_y": p["sy"],
        }
    ]
    source_sigma = [
        {"R_sersic": 0.1, "n_sersic": 0.5, "e1": 0.1, "e2": 0.1, "center_x": 0.1, "center_y": 0.1}
    ]
    names = ("R_sersic", "n_sersic", "e1", "e2")
    source_low = [
        {k: BOUNDS[f"source_{k}"][0] for k in names} | {"center_x": -half, "center_y": -half}
    ]
    source_high = [
        {k: BOUNDS[f"source_{k}"][1] for k in names} | {"center_x": half, "center_y": half}
    ]
    params = {
        "lens_model": [
            lens_init,
            lens_sigma,
            [{}, {"ra_0": 0.0, "dec_0": 0.0}],
            lens_low,
            lens_high,
        ],
        "source_model": [source_init, source_sigma, [{}], source_low, source_high],
    }
    sequence = FittingSequence(data_joint, model, {}, {"check_bounds": True}, params)
    with contextlib.redirect_stdout(io.StringIO()):  # lenstronomy prints its progress
        sequence.fit_sequence(
            [
                [
                    "PSO",
                    {
                        "sigma_scale": 1.0,
                        "n_particles": args.pso_particles,
                        "n_iterations": args.pso_iterations,
                    },
                ],
                ["SIMPLEX", {"n_iterations": args.simplex_iterations}],
            ]
        )
    log_l = sequence.best_fit_likelihood()
    return -2.0 * log_l / (n * n - N_FREE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--lenstronomy-images", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pso-particles", type=int, default=50)
    parser.add_argument("--pso-iterations", type=int, default=50)
    parser.add_argument("--simplex-iterations", type=int, default=500)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--compare-ref", help="also time the fitter at this git revision")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(REPO / "config.yaml")
    images, truth, instrument, section = simulate(config, args.images)
    settings = FitSettings.from_config({**config["fitting"], "compile": False})
    model = SmoothLensModel(instrument, False, device="cpu")
    variants = [("eager", model, settings, fit_images)]
    if args.compare_ref:
        ref_model, ref_solver = load_revision(args.compare_ref)
        ref_settings = ref_solver.FitSettings.from_config({**config["fitting"], "compile": False})
        variants.append(
            (
                f"eager at {args.compare_ref}",
                ref_model.SmoothLensModel(instrument, False, device="cpu"),
                ref_settings,
                ref_solver.fit_images,
            )
        )
    if args.compile:
        compiled = SmoothLensModel(instrument, False, device="cpu", compile=True)
        start = time.perf_counter()
        fit_images(compiled, images[:2], FitSettings(**{**settings.__dict__, "compile": True}))
        elapsed = time.perf_counter() - start
        print(f"darklens compiled: first call (compilation or cache load) {elapsed:.1f} s")
        variants.append(("compiled", compiled, settings, fit_images))
    for _, fit_model, fit_settings, fit in variants:
        fit(fit_model, images[:2], fit_settings)  # warm-up (allocations, caches)
    m = args.lenstronomy_images
    starts = initial_guesses(images[:m], instrument.pixel_scale_arcsec, False, 1)[:, 0]
    times = {name: [] for name, _, _, _ in variants}
    chi2 = {}
    lens_times, lens_chi2 = [], []
    for repeat in range(args.repeats):
        for name, fit_model, fit_settings, fit_function in variants:
            start = time.perf_counter()
            fit = fit_function(fit_model, images, fit_settings)
            times[name].append((time.perf_counter() - start) / len(images))
            chi2[name] = fit["chi2_reduced"]
            theta = np.median(np.abs(fit["params"][:, 0] - truth["theta_E"]))
            print(
                f"repeat {repeat} darklens {name}: {times[name][-1]:.3f} s/image, median chi2_red "
                f"{np.median(fit['chi2_reduced']):.4f}, 95th percentile "
                f"{np.percentile(fit['chi2_reduced'], 95):.3f}, converged "
                f'{fit["converged"].mean():.3f}, median |theta_E error| {theta:.5f}"',
                flush=True,
            )
        for k in range(m):
            start = time.perf_counter()
            value = lenstronomy_fit(images[k], starts[k], section, args)
            lens_times.append(time.perf_counter() - start)
            lens_chi2.append(value)
            print(
                f"repeat {repeat} lenstronomy image {k}: {lens_times[-1]:.1f} s, "
                f"chi2_red {value:.4f}",
                flush=True,
            )
    lens_per_image = float(np.mean(lens_times))
    print(
        f"lenstronomy FittingSequence (PSO {args.pso_particles}x{args.pso_iterations} + SIMPLEX "
        f"{args.simplex_iterations}): {lens_per_image:.1f} s/image (min {min(lens_times):.1f}, "
        f"max {max(lens_times):.1f}), median chi2_red {np.median(lens_chi2):.4f} over {m} images "
        f"x {args.repeats} repeats (PSO is random)"
    )
    for name in times:
        per_image = np.array(times[name])
        spread = 100 * (per_image.max() - per_image.min()) / per_image.mean()
        print(
            f"darklens {name}: {1.0 / per_image.mean():.2f} fits/s/core "
            f"(repeats: {', '.join(f'{1 / t:.2f}' for t in per_image)}; spread "
            f"{spread:.0f} %), median chi2_red "
            f"{np.median(chi2[name]):.4f} on {len(images)} images, {np.median(chi2[name][:m]):.4f} "
            f"on lenstronomy's {m}; ratio {lens_per_image / per_image.mean():.0f} "
            f"(range over repeats {lens_per_image / per_image.max():.0f}.."
            f"{lens_per_image / per_image.min():.0f})"
        )
    print(f"ratio: {lens_per_image / np.mean(times['eager']):.0f}")


if __name__ == "__main__":
    main()
