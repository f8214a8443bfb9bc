"""Fitting the smooth model to a batch of images: initial guesses, starts, Levenberg-Marquardt.

The objective is the image's own chi^2 (lenstronomy's `ImageData.log_likelihood`, -2 logL):
`chi2 = sum (d - m)^2 / var(m)`, `var(m) = max(m, 0) / exposure_time + background_rms^2`, the
variance the simulator's noise has (`darklens.physics.instrument.Instrument.variance`) with the
model in place of the truth. Levenberg-Marquardt works on the residuals `(d - m) / sqrt(var(m))`
with their exact derivative (the variance depends on the model: `dr/dm = -(1 + (d - m) /
(2 var t)) / sqrt(var)` where m > 0), Marquardt's damping `lambda diag(J^T J)`, steps clipped to
`BOUNDS`, and a step kept only if chi^2 decreases. The amplitudes enter the model linearly: after
every step they are solved by weighted linear least squares (weights 1 / var of the current
model) before chi^2 is evaluated; the Jacobian includes them, so the non-linear step accounts for
their coupling.

Initial guesses come from the data only (`initial_guesses`): the lens centre from the light
centroid, theta_E from the flux-weighted radius of the bright (ring) pixels, the source position
mapped back from the brightest pixel through an SIS, the amplitudes from the flux (the linear
solve). Several starts (source from the brightest pixel, at the centre, from the second brightest
arc, a smaller ring) are run on a coarse ray grid (supersampling `coarse_supersampling`); the best
of each image is refined on ray grids twice as fine in turn (to 1e-5 relative) and last on the
file's own (`_refinement_schedule`: 1 -> 2 -> 4 for the default), until chi^2 changes by less
than `tolerance` (relative) per step. In that last stage the model, its chi^2 and every
accept/reject decision are on the file's own grid, while the step direction uses the Jacobian on
the grid of `jacobian_supersampling` (default 2; 0 = the file's own): four times cheaper at 4, and
the optimum it reaches differs from the exact one by a few percent of the parameters' statistical
errors (median reduced chi^2 of 200 default images equal to 1e-6).

An image converges when a kept step changes chi^2 by less than `tolerance` or when no damped step
lowers it any more (lambda above `LAMBDA_MAX`: a minimum to numerical precision); otherwise
its `reason` says why (iterations exhausted, non-finite model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from darklens.fitting.model import SmoothLensModel

#: Bounds of the non-linear parameters (lenstronomy names, arcsec or dimensionless); centres are
#: bounded by the field of view. Similar to lenstronomy's default bounds of these profiles.
BOUNDS = {
    "theta_E": (0.01, 10.0),
    "e1": (-0.6, 0.6),
    "e2": (-0.6, 0.6),
    "gamma1": (-0.3, 0.3),
    "gamma2": (-0.3, 0.3),
    "source_R_sersic": (0.005, 5.0),
    "source_n_sersic": (0.3, 8.0),
    "source_e1": (-0.6, 0.6),
    "source_e2": (-0.6, 0.6),
    "lens_light_R_sersic": (0.005, 10.0),
    "lens_light_n_sersic": (0.3, 8.0),
    "lens_light_e1": (-0.6, 0.6),
    "lens_light_e2": (-0.6, 0.6),
}
CENTRES = ("lens_center_x", "lens_center_y", "source_center_x", "source_center_y")
#: Marquardt damping: start, factor down after a kept step, up after a rejected one, and the
#: value above which no step lowers chi^2 any more (converged to numerical precision).
LAMBDA_START, LAMBDA_DOWN, LAMBDA_UP, LAMBDA_MAX = 1e-3, 3.0, 6.0, 1e9
#: Relative chi^2 change at which the coarse stage (all starts) and the intermediate stages of
#: the refinement stop: they only choose a start and bring it near the final optimum.
COARSE_TOLERANCE, INTERMEDIATE_TOLERANCE = 1e-3, 1e-5


@dataclass(frozen=True)
class FitSettings:
    """The config's `fitting` section (workflow/schemas/config.schema.yaml)."""

    n_starts: int = 5
    coarse_supersampling: int = 1
    coarse_iterations: int = 25
    max_iterations: int = 40
    tolerance: float = 1e-6
    batch_size: int = 32
    compile: bool = False
    jacobian_supersampling: int = 2

    @classmethod
    def from_config(cls, section: dict) -> FitSettings:
        known = {k: section[k] for k in cls.__dataclass_fields__ if k in section}
        return cls(**known)


def _bounds(model: SmoothLensModel) -> tuple[torch.Tensor, torch.Tensor]:
    half = 0.5 * model.instrument.n_pix * model.instrument.pixel_scale_arcsec
    low, high = [], []
    for name in model.names:
        lo, hi = (-half, half) if name in CENTRES else BOUNDS[name]
        low.append(lo)
        high.append(hi)
    as_tensor = lambda v: torch.tensor(v, dtype=torch.float64, device=model.device)  # noqa: E731
    return as_tensor(low), as_tensor(high)


def _box_smooth(images: np.ndarray) -> np.ndarray:
    """3 x 3 box average (edges continued), to find bright pixels robustly against noise."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="edge")
    n = images.shape[-1]
    return sum(padded[:, i : i + n, j : j + n] for i in range(3) for j in range(3)) / 9.0


def _circle_fit(weight: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Weighted algebraic (Kasa) circle fit to each weight map (B, N, N): (B, 3) centre x,
    centre y, radius [arcsec]."""
    out = np.empty((len(weight), 3))
    design = np.stack([x.reshape(-1), y.reshape(-1), np.ones(x.size)], axis=1)
    target = -(x.reshape(-1) ** 2 + y.reshape(-1) ** 2)
    for k, w in enumerate(weight.reshape(len(weight), -1)):
        root = np.sqrt(w)
        solution = np.linalg.lstsq(design * root[:, None], target * root, rcond=None)[0]
        cx, cy = -0.5 * solution[0], -0.5 * solution[1]
        out[k] = cx, cy, np.sqrt(max(cx * cx + cy * cy - solution[2], 0.0))
    return out


#: Lens-centre offsets of the starts from the ring's centre, away from the brightest pixel, in
#: units of the ring radius (the last start uses the flux asymmetry of the ring instead).
START_OFFSETS = (0.2, 0.08, 0.33)


def initial_guesses(
    images: np.ndarray, pixel_scale_arcsec: float, lens_light: bool, n_starts: int
) -> np.ndarray:
    """Starting parameters (B, n_starts, P) from the images (B, N, N) [counts/s] alone.

    The bright pixels (above 20 % of the 3 x 3-smoothed peak; with lens light, those beyond 3
    pixels of the light centroid) are fitted by a circle, flux-weighted: a source at beta
    behind an isothermal lens of Einstein radius theta_E is imaged near the circle of radius
    theta_E around the source's position, so the circle gives the source centre and theta_E.
    The lens centre lies beyond the circle's centre as seen from the brightest pixel; the
    starts put it there at START_OFFSETS x the radius, then at the offset the flux asymmetry
    of the ring suggests (an SIS: beta = theta_E (F+ - F-) / (F+ + F-), F+- the flux on either
    side), then at the light centroid with the source mapped back from the brightest pixel
    through an SIS. Further starts repeat these with rotated ellipticities. Source shape:
    R_sersic 0.2", n 1.5; small non-zero ellipticities (the SIE's ellipticity derivatives are
    singular at exactly e = 0); amplitudes are solved linearly.
    """
    b, n, _ = images.shape
    coords = (np.arange(n) - 0.5 * (n - 1)) * pixel_scale_arcsec
    x, y = np.meshgrid(coords, coords, indexing="xy")
    smooth = _box_smooth(images.astype(np.float64))
    peak = smooth.reshape(b, -1).max(axis=1)
    mask = smooth > 0.2 * peak[:, None, None]
    weight = np.where(mask, smooth, 0.0)
    total = weight.sum(axis=(1, 2))
    gx = (weight * x).sum(axis=(1, 2)) / total
    gy = (weight * y).sum(axis=(1, 2)) / total
    if lens_light:  # the ring: bright pixels away from the lens galaxy's core
        core = np.hypot(x[None] - gx[:, None, None], y[None] - gy[:, None, None])
        ring = np.where(core > 3 * pixel_scale_arcsec, weight, 0.0)
        weight = np.where(ring.sum(axis=(1, 2))[:, None, None] > 0, ring, weight)
    circle = _circle_fit(weight, x, y)
    ccx, ccy = circle[:, 0], circle[:, 1]
    radius = np.clip(circle[:, 2], 2 * pixel_scale_arcsec, 0.5 * n * pixel_scale_arcsec)
    brightest = np.where(weight > 0, smooth, -np.inf).reshape(b, -1).argmax(axis=1)
    px, py = x.reshape(-1)[brightest], y.reshape(-1)[brightest]
    away = np.hypot(px - ccx, py - ccy)
    ux = np.where(away > 0, (px - ccx) / np.maximum(away, 1e-12), 1.0)
    uy = np.where(away > 0, (py - ccy) / np.maximum(away, 1e-12), 0.0)
    side = (x[None] - ccx[:, None, None]) * ux[:, None, None]
    side = side + (y[None] - ccy[:, None, None]) * uy[:, None, None]
    plus = np.where(side > 0, weight, 0.0).sum(axis=(1, 2))
    minus = np.where(side < 0, weight, 0.0).sum(axis=(1, 2))
    asymmetry = (plus - minus) / np.maximum(plus + minus, 1e-300)

    variants = [(radius * f, ccx, ccy, radius) for f in START_OFFSETS]
    variants.append((radius * np.clip(asymmetry, 0.0, 0.6), ccx, ccy, radius))
    theta_g = np.clip(
        (weight * np.hypot(x[None] - gx[:, None, None], y[None] - gy[:, None, None])).sum(
            axis=(1, 2)
        )
        / total,
        2 * pixel_scale_arcsec,
        None,
    )
    bx, by = px - gx, py - gy
    shrink = 1.0 - theta_g / np.maximum(np.hypot(bx, by), 1e-6)
    centroid_start = (None, gx + bx * shrink, gy + by * shrink, theta_g)
    variants.append(centroid_start)
    starts = []
    full = lambda value: np.full(b, value)  # noqa: E731
    for k in range(n_starts):
        offset, src_x, src_y, theta_e = variants[k % len(variants)]
        if offset is None:
            lens_x, lens_y = gx, gy
        else:
            lens_x, lens_y = ccx - offset * ux, ccy - offset * uy
        angle = np.pi * (k // len(variants)) / 3.0
        row = [theta_e, full(0.02 * np.cos(angle)), full(0.02 * np.sin(angle)), lens_x, lens_y]
        row += [full(1e-3), full(-1e-3)]
        row += [full(0.2), full(1.5), full(0.01), full(-0.01), src_x, src_y]
        if lens_light:
            row += [full(0.6), full(3.0), full(0.01), full(0.01)]
        starts.append(np.stack(row, axis=1))
    return np.stack(starts, axis=1)


class _Problem:
    """The data and noise model of a batch of images on the model's device."""

    def __init__(self, model: SmoothLensModel, images: np.ndarray):
        self.model = model
        self.data = torch.as_tensor(images, dtype=torch.float64, device=model.device).reshape(
            len(images), -1
        )
        self.exposure = float(model.instrument.exposure_time_s)
        self.background_var = float(model.instrument.background_rms) ** 2

    def variance(self, m: torch.Tensor) -> torch.Tensor:
        return torch.clamp(m, min=0.0) / self.exposure + self.background_var

    def chi2(self, m: torch.Tensor, rows) -> torch.Tensor:
        return (((self.data[rows] - m) ** 2) / self.variance(m)).sum(dim=-1)

    def amplitudes(self, basis: torch.Tensor, weights: torch.Tensor, rows) -> torch.Tensor:
        """Weighted linear least squares for the amplitudes: basis (B, K, Npix), weights (B,
        Npix) -> (B, K)."""
        weighted = basis * weights[:, None]
        normal = weighted @ basis.transpose(1, 2)
        ridge = 1e-12 * normal.diagonal(dim1=1, dim2=2).mean(dim=1).clamp(min=1e-300)
        normal = normal + ridge[:, None, None] * torch.eye(basis.shape[1], device=basis.device)
        rhs = (weighted @ self.data[rows][:, :, None]).squeeze(-1)
        return torch.linalg.solve(normal, rhs)


@dataclass
class _State:
    params: torch.Tensor  # (B, P)
    amplitudes: torch.Tensor  # (B, K)
    basis: torch.Tensor  # (B, K, Npix) at the model supersampling
    chi2: torch.Tensor  # (B,)
    lam: torch.Tensor  # (B,)
    done: torch.Tensor  # (B,) bool
    converged: torch.Tensor  # (B,) bool
    change: torch.Tensor  # (B,) relative chi2 change of the last kept step
    iterations: torch.Tensor  # (B,) int
    hessian: torch.Tensor  # (B, K + P, K + P): J^T J of the current point (amplitudes first)
    gradient: torch.Tensor  # (B, K + P): J^T r of the current point
    stale: torch.Tensor  # (B,) bool: the point moved since hessian/gradient were computed


def _initial_state(problem: _Problem, params: torch.Tensor, s: int) -> _State:
    model = problem.model
    b = params.shape[0]
    rows = torch.arange(b, device=params.device)
    basis = model.basis(params, s).reshape(b, model.n_amplitudes, -1)
    weights = 1.0 / problem.variance(problem.data)  # the first linear solve: data variance
    amplitudes = problem.amplitudes(basis, weights, rows)
    chi2 = problem.chi2(torch.einsum("bk,bkp->bp", amplitudes, basis), rows)
    zeros = torch.zeros(b, dtype=torch.float64, device=params.device)
    n_unknowns = model.n_amplitudes + model.n_params
    return _State(
        params,
        amplitudes,
        basis,
        chi2,
        zeros + LAMBDA_START,
        torch.zeros(b, dtype=torch.bool, device=params.device),
        torch.zeros(b, dtype=torch.bool, device=params.device),
        zeros + np.inf,
        torch.zeros(b, dtype=torch.int64, device=params.device),
        torch.zeros((b, n_unknowns, n_unknowns), dtype=torch.float64, device=params.device),
        torch.zeros((b, n_unknowns), dtype=torch.float64, device=params.device),
        torch.ones(b, dtype=torch.bool, device=params.device),
    )


def _gauss_newton(
    problem: _Problem,
    state: _State,
    rows: torch.Tensor,
    m: torch.Tensor,
    var: torch.Tensor,
    s: int,
    jacobian_s: int | None,
) -> None:
    """J^T J and J^T r of the residuals `(d - m) / sqrt(var(m))` at the current point of `rows`
    (model m, variance var), into `state.hessian` and `state.gradient`; the unknowns are the
    amplitudes, then the non-linear parameters."""
    model = problem.model
    n_a = model.n_amplitudes
    n_unknowns = n_a + model.n_params
    p, a, basis = state.params[rows], state.amplitudes[rows], state.basis[rows]
    sigma = torch.sqrt(var)
    d = problem.data[rows]
    r = (d - m) / sigma
    slope = torch.where(m > 0, (d - m) / (2.0 * var * problem.exposure), 0.0)
    factor = -(1.0 + slope) / sigma
    hessian = torch.empty((len(rows), n_unknowns, n_unknowns), dtype=m.dtype, device=m.device)
    gradient = torch.empty((len(rows), n_unknowns), dtype=m.dtype, device=m.device)
    # a few images at a time (`SmoothLensModel.pixel_groups`): the columns stay in the cache
    for i0, i1, columns in model.pixel_groups(jacobian_s or s, p, a, True):
        columns = columns.reshape(i1 - i0, n_unknowns, -1)
        if (jacobian_s or s) != s:
            columns[:, :n_a] = basis[i0:i1]  # the amplitudes' columns on the model's own grid
        jr = columns.mul_(factor[i0:i1, None])
        gradient[i0:i1] = (jr @ r[i0:i1, :, None]).squeeze(-1)
        hessian[i0:i1] = jr @ jr.transpose(1, 2)
    state.gradient[rows] = gradient
    state.hessian[rows] = hessian
    state.stale[rows] = False


def levenberg_marquardt(
    problem: _Problem,
    state: _State,
    s: int,
    iterations: int,
    tolerance: float,
    jacobian_s: int | None = None,
) -> _State:
    """Iterate until every image has converged or `iterations` steps; in place on `state`.
    The model is evaluated at supersampling s, the Jacobian at `jacobian_s` (default s)."""
    model = problem.model
    low, high = _bounds(model)
    n_a = model.n_amplitudes
    for _ in range(iterations):
        rows = torch.nonzero(~state.done).squeeze(1)
        if rows.numel() == 0:
            break
        p, a, basis = state.params[rows], state.amplitudes[rows], state.basis[rows]
        m = torch.einsum("bk,bkp->bp", a, basis)
        var = problem.variance(m)
        stale = state.stale[rows]
        if bool(stale.any()):  # a rejected step leaves the point, so J^T J and J^T r, as they are
            fresh = rows[stale] if not bool(stale.all()) else rows
            _gauss_newton(problem, state, fresh, m[stale], var[stale], s, jacobian_s)
        hessian, gradient = state.hessian[rows], state.gradient[rows]
        diag = hessian.diagonal(dim1=1, dim2=2).clamp(min=1e-30)
        lam = state.lam[rows]
        damped = hessian + torch.diag_embed(lam[:, None] * diag + 1e-12 * diag.amax(1, True))
        step = torch.linalg.solve(damped, -gradient[:, :, None]).squeeze(-1)
        trial = torch.minimum(torch.maximum(p + step[:, n_a:], low), high)
        trial_basis = model.basis(trial, s).reshape(len(rows), model.n_amplitudes, -1)
        trial_amp = problem.amplitudes(trial_basis, 1.0 / var, rows)
        trial_chi2 = problem.chi2(torch.einsum("bk,bkp->bp", trial_amp, trial_basis), rows)
        old = state.chi2[rows]
        kept = torch.isfinite(trial_chi2) & (trial_chi2 < old)
        change = torch.where(kept, (old - trial_chi2) / old, state.change[rows])
        new_lam = torch.where(kept, lam / LAMBDA_DOWN, lam * LAMBDA_UP).clamp(min=1e-12)
        converged = (kept & (change < tolerance)) | (new_lam > LAMBDA_MAX)
        k3 = kept[:, None]
        state.params[rows] = torch.where(k3, trial, p)
        state.amplitudes[rows] = torch.where(k3, trial_amp, a)
        state.basis[rows] = torch.where(kept[:, None, None], trial_basis, basis)
        state.chi2[rows] = torch.where(kept, trial_chi2, old)
        state.lam[rows] = new_lam
        state.change[rows] = change
        state.stale[rows] = kept
        state.iterations[rows] += 1
        state.converged[rows] = converged
        state.done[rows] = converged | ~torch.isfinite(old)
    return state


def _refinement_schedule(coarse: int, fine: int) -> list[int]:
    """Supersampling factors of the refinement: doubling from above `coarse` while below
    `fine`, then `fine` itself (e.g. 1 -> [2, 4]; 1 -> [2, 4, 5] for 5)."""
    steps, s = [], 2 * coarse
    while s < fine:
        steps.append(s)
        s *= 2
    return steps + [fine]


def fit_batch(
    model: SmoothLensModel, images: np.ndarray, settings: FitSettings, starts: np.ndarray
) -> dict:
    """Fit images (B, N, N) [counts/s] from starts (B, S, P); returns numpy arrays: params
    (B, P), amplitudes (B, K), chi2, model (B, N, N) at the file's supersampling, converged,
    iterations (all stages of the kept start), reason (list of str, '' when converged), start
    (the start kept)."""
    b, n_starts, n_p = starts.shape
    device = model.device
    s_fine = model.instrument.supersampling
    s_coarse = min(settings.coarse_supersampling, s_fine)
    repeated = np.repeat(images, n_starts, axis=0)
    problem = _Problem(model, repeated)
    flat = torch.as_tensor(starts.reshape(b * n_starts, n_p), dtype=torch.float64, device=device)
    state = _initial_state(problem, flat, s_coarse)
    coarse_tolerance = max(settings.tolerance, COARSE_TOLERANCE)
    state = levenberg_marquardt(
        problem, state, s_coarse, settings.coarse_iterations, coarse_tolerance
    )
    best = state.chi2.reshape(b, n_starts)
    best = torch.where(torch.isfinite(best), best, torch.inf).argmin(dim=1)
    chosen = torch.arange(b, device=device) * n_starts + best
    problem = _Problem(model, images)
    params = state.params[chosen].clone()
    total_iterations = state.iterations[chosen].clone()
    for s in _refinement_schedule(s_coarse, s_fine):
        state = _initial_state(problem, params, s)
        state.lam[:] = 1e-2
        tolerance = settings.tolerance if s == s_fine else INTERMEDIATE_TOLERANCE
        jacobian_s = None
        if s == s_fine and settings.jacobian_supersampling:
            jacobian_s = min(settings.jacobian_supersampling, s_fine)
        state = levenberg_marquardt(
            problem, state, s, settings.max_iterations, tolerance, jacobian_s
        )
        params = state.params
        total_iterations += state.iterations
    model_images = torch.einsum("bk,bkp->bp", state.amplitudes, state.basis)
    finite = torch.isfinite(state.chi2) & torch.isfinite(model_images).all(dim=1)
    reasons = []
    for k in range(b):
        if not bool(finite[k]):
            reasons.append("non-finite model or chi2")
        elif not bool(state.converged[k]):
            reasons.append(
                f"not converged after {int(state.iterations[k])} iterations "
                f"at supersampling {s_fine} "
                f"(last relative chi2 change {float(state.change[k]):.1e})"
            )
        else:
            reasons.append("")
    n = model.instrument.n_pix
    return {
        "params": state.params.cpu().numpy(),
        "amplitudes": state.amplitudes.cpu().numpy(),
        "chi2": state.chi2.cpu().numpy(),
        "model": model_images.reshape(b, n, n).cpu().numpy(),
        "converged": (state.converged & finite).cpu().numpy(),
        "iterations": total_iterations.cpu().numpy(),
        "reason": reasons,
        "start": best.cpu().numpy(),
    }


def refit_images(
    model: SmoothLensModel,
    images: np.ndarray,
    settings: FitSettings,
    params: np.ndarray,
    log=None,
) -> dict:
    """Fit images (N_img, N, N) [counts/s] from nearby parameters (N_img, P) (e.g. the fits of
    the noisy versions of the same images): only the last stage of `fit_batch` (the file's own
    ray grid, the Jacobian on `jacobian_supersampling`, to `tolerance`), in batches of
    `settings.batch_size`. Returns params (N_img, P), amplitudes, chi2, model (N_img, N, N),
    converged and iterations (numpy)."""
    s_fine = model.instrument.supersampling
    jacobian_s = None
    if settings.jacobian_supersampling:
        jacobian_s = min(settings.jacobian_supersampling, s_fine)
    n = model.instrument.n_pix
    low, high = _bounds(model)
    parts = []
    for start in range(0, len(images), settings.batch_size):
        batch = images[start : start + settings.batch_size]
        problem = _Problem(model, batch)
        p0 = params[start : start + settings.batch_size]
        p0 = torch.as_tensor(p0, dtype=torch.float64, device=model.device)
        p0 = torch.minimum(torch.maximum(p0, low), high)
        state = _initial_state(problem, p0, s_fine)
        state.lam[:] = 1e-2
        state = levenberg_marquardt(
            problem, state, s_fine, settings.max_iterations, settings.tolerance, jacobian_s
        )
        images_out = torch.einsum("bk,bkp->bp", state.amplitudes, state.basis)
        parts.append(
            {
                "params": state.params.cpu().numpy(),
                "amplitudes": state.amplitudes.cpu().numpy(),
                "chi2": state.chi2.cpu().numpy(),
                "model": images_out.reshape(len(batch), n, n).cpu().numpy(),
                "converged": state.converged.cpu().numpy(),
                "iterations": state.iterations.cpu().numpy(),
            }
        )
        if log is not None:
            log(f"refitted {start + len(batch)}/{len(images)} images")
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def fit_images(model: SmoothLensModel, images: np.ndarray, settings: FitSettings, log=None) -> dict:
    """Fit every image (N_img, N, N) [counts/s] in batches of `settings.batch_size`; the same
    arrays as `fit_batch`, concatenated, plus chi2_reduced = chi2 / (pixels - free parameters)."""
    parts = []
    for start in range(0, len(images), settings.batch_size):
        batch = images[start : start + settings.batch_size]
        starts = initial_guesses(
            batch, model.instrument.pixel_scale_arcsec, model.lens_light, settings.n_starts
        )
        parts.append(fit_batch(model, batch, settings, starts))
        if log is not None:
            done = start + len(batch)
            log(f"fitted {done}/{len(images)} images")
    out = {
        key: (
            sum((p[key] for p in parts), [])
            if key == "reason"
            else np.concatenate([p[key] for p in parts])
        )
        for key in parts[0]
    }
    dof = images.shape[1] * images.shape[2] - model.n_params - model.n_amplitudes
    out["chi2_reduced"] = out["chi2"] / dof
    return out
