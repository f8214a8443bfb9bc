"""Shortcut controls: simple classifiers trained on the CNNs' split, to ask what else than
substructure could tell the classes apart.

- `radial_profile`: the azimuthally averaged radial profile of each noisy image, annuli of 1 pixel
  around the image centre ((H - 1) / 2, (W - 1) / 2) out to the edge (annulus k holds the pixels
  with k <= r < k + 1, k = 0 .. min(H, W) // 2 - 1; the corners are left out), in the class file's
  image units (counts/s per pixel). The profile is *not* normalised by the total flux: the CNNs see
  absolute brightness (one normalisation for the whole training split), so the control does too.
- `nuisance`: the fitted smooth-lens parameters (every `/params/<name>` of `data/fits/{class}.h5`,
  lens and source) and the image's total flux (the sum of its pixels).
- `fit_chi2`: the goodness of the smooth-lens fit alone, log10 of its reduced chi^2
  (`/chi2_reduced` of the fit file). Not a shortcut but the simplest physics detector: a chi^2
  test of the smooth model. A CNN given the fitted residual has to beat it to show that it uses
  the residual's morphology, not only its amplitude.

Each is a multinomial logistic regression (lbfgs) on standardised features (mean and std of the
training split). The inverse regularisation C is chosen from `C_GRID` by the lowest validation
log loss (a tie goes to the smaller C); the model fitted on the training split with that C scores
the test split once. No random number is drawn anywhere: the same inputs give the same outputs, so
there is no seed. The outputs are a run's: `predictions.csv` and `metrics.json` (the keys training
writes; `seed` and `best_epoch` are null).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from darklens import __version__
from darklens.evaluation.metrics import classification_metrics
from darklens.io.class_files import (
    DataError,
    class_counts,
    read_class_name,
    read_images,
    read_params,
)
from darklens.io.fit_files import read_fit_chi2_reduced
from darklens.io.split_file import read_split
from darklens.io.tables import write_metrics, write_predictions
from darklens.learning.dataset import class_paths

CONTROLS = {
    "radial_profile": "radial light profile of the image",
    "nuisance": "fitted smooth-lens parameters and total flux",
    "fit_chi2": "goodness of the smooth-lens fit (log10 reduced chi²)",
}
#: The controls whose features come from the fit files.
FIT_CONTROLS = ("nuisance", "fit_chi2")
C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
MAX_ITERATIONS = 5000


def annulus_weights(height: int, width: int) -> np.ndarray:
    """(H * W, K) matrix that averages a flattened image over annuli of 1 pixel around the
    image centre: column k weights the pixels with k <= r < k + 1 by 1 / (their number)."""
    y, x = np.indices((height, width), dtype=np.float64)
    r = np.hypot(y - (height - 1) / 2.0, x - (width - 1) / 2.0).ravel()
    n_annuli = min(height, width) // 2
    k = np.floor(r).astype(np.int64)
    inside = k < n_annuli
    weights = np.zeros((height * width, n_annuli))
    weights[np.flatnonzero(inside), k[inside]] = 1.0
    return weights / weights.sum(axis=0, keepdims=True)


def radial_profile(images: np.ndarray) -> np.ndarray:
    """(N, K) mean of each (N, H, W) image over annuli of 1 pixel around its centre
    (`annulus_weights`), in the images' units per pixel."""
    images = np.asarray(images)
    n, height, width = images.shape
    return images.reshape(n, -1).astype(np.float64) @ annulus_weights(height, width)


def total_flux(images: np.ndarray) -> np.ndarray:
    """(N,) sum of each image's pixels."""
    return np.asarray(images, dtype=np.float64).sum(axis=(1, 2))


def profile_features(image_paths) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features (N, K), labels (N,), feature names) of class files, one class at a time."""
    blocks, labels = [], []
    for label, (name, path) in enumerate(class_paths(image_paths, None)[0].items()):
        profile = radial_profile(read_images(path, expected_class=name))
        blocks.append(profile)
        labels.append(np.full(len(profile), label, dtype=np.int64))
    widths = {b.shape[1] for b in blocks}
    if len(widths) != 1:
        raise DataError(f"class files have different image sizes ({sorted(widths)} annuli)")
    names = [f"profile_r{k}" for k in range(widths.pop())]
    return np.concatenate(blocks), np.concatenate(labels), names


def nuisance_features(image_paths, fit_paths) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features (N, P + 1), labels (N,), feature names): every fitted parameter of the fit files
    (same order as the class files) and the total flux of each image."""
    images = class_paths(image_paths, None)[0]
    fits = dict(zip(images, map(str, fit_paths), strict=True))
    names, blocks, labels = None, [], []
    for label, (name, path) in enumerate(images.items()):
        fit_path = fits[name]
        if read_class_name(fit_path) != name:
            raise DataError(
                f"{fit_path}: holds the fit of {read_class_name(fit_path)!r}, not {name}"
            )
        params = read_params(fit_path)
        if names is None:
            names = sorted(params)
        elif sorted(params) != names:
            raise DataError(f"{fit_path}: fitted parameters differ from those of the first class")
        flux = total_flux(read_images(path, expected_class=name))
        if len(params[names[0]]) != len(flux):
            raise DataError(
                f"{fit_path}: fits {len(params[names[0]])} images, {path} has {len(flux)}"
            )
        blocks.append(np.column_stack([*(params[k].astype(np.float64) for k in names), flux]))
        labels.append(np.full(len(flux), label, dtype=np.int64))
    return np.concatenate(blocks), np.concatenate(labels), [*(names or []), "total_flux"]


def fit_chi2_features(image_paths, fit_paths) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features (N, 1): log10 of each image's reduced chi^2 of the smooth-lens fit, labels (N,),
    feature names) of the fit files (same order as the class files)."""
    images = class_paths(image_paths, None)[0]
    counts = class_counts(images)
    blocks, labels = [], []
    for label, (name, fit_path) in enumerate(zip(images, map(str, fit_paths), strict=True)):
        fit_name, chi2_reduced = read_fit_chi2_reduced(fit_path)
        if fit_name != name:
            raise DataError(f"{fit_path}: holds the fit of {fit_name!r}, not {name}")
        if len(chi2_reduced) != counts[name]:
            raise DataError(
                f"{fit_path}: fits {len(chi2_reduced)} images, {name} has {counts[name]}"
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            blocks.append(np.log10(chi2_reduced)[:, None])
        labels.append(np.full(len(chi2_reduced), label, dtype=np.int64))
    return np.concatenate(blocks), np.concatenate(labels), ["log10_chi2_reduced"]


def _log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    picked = np.clip(probs[np.arange(len(labels)), labels], 1e-300, None)
    return float(-np.mean(np.log(picked)))


def fit_control(
    features: np.ndarray, labels: np.ndarray, split: dict, n_classes: int, c_grid=C_GRID
) -> tuple[np.ndarray, dict]:
    """Standardise on the training split, fit a multinomial logistic regression per C of
    `c_grid` on it, keep the C of the lowest validation log loss; returns the test split's
    class probabilities (in split["test"] order) and what was chosen."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = np.array(features, dtype=np.float64)
    train, val, test = (np.asarray(split[k]) for k in ("train", "val", "test"))
    if len(np.unique(labels[train])) != n_classes:
        raise ValueError("the training split lacks a class; a control needs every class")
    bad = ~np.isfinite(features)
    if bad.any():  # a failed fit: the training split's median of that feature
        median = np.nanmedian(np.where(bad[train], np.nan, features[train]), axis=0)
        features = np.where(bad, np.nan_to_num(median)[None, :], features)
    candidates = []
    for c in sorted(c_grid):
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=c, solver="lbfgs", max_iter=MAX_ITERATIONS)
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(features[train], labels[train])
        val_probs = _full_probs(model, features[val], n_classes)
        candidates.append(
            {
                "C": c,
                "val_log_loss": _log_loss(labels[val], val_probs),
                "val_acc": float(np.mean(val_probs.argmax(axis=1) == labels[val])),
                "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
                "model": model,
            }
        )
    best = min(candidates, key=lambda c: c["val_log_loss"])  # first of equals: smaller C
    probs = _full_probs(best["model"], features[test], n_classes)
    info = {
        "C": best["C"],
        "C_grid": [c["C"] for c in candidates],
        "val_log_loss_by_C": [c["val_log_loss"] for c in candidates],
        "best_val_acc": best["val_acc"],
        "best_val_loss": best["val_log_loss"],
        "converged": best["converged"],
        "n_parameters": int(n_classes * (features.shape[1] + 1)),
        "n_non_finite_features": int(bad.sum()),
    }
    return probs, info


def _full_probs(model, features: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, K) probabilities in label order 0..K-1 (the model knows only the classes it saw)."""
    out = np.zeros((len(features), n_classes))
    out[:, model.classes_] = model.predict_proba(features)
    return out


def train_control(
    control: str,
    image_paths,
    split_path,
    out_dir,
    fit_paths=None,
    log: Callable[[str], None] = print,
) -> dict:
    """`darklens control`: features of the class files (named {class}.h5, in class order; for
    `nuisance` and `fit_chi2` also their fit files, same order), the split file, `fit_control`;
    writes predictions.csv and metrics.json into `out_dir` and returns the metrics."""
    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}; known: {', '.join(CONTROLS)}")
    class_names = list(class_paths(image_paths, None)[0])
    split = read_split(split_path, class_counts(class_paths(image_paths, None)[0]))
    if control == "radial_profile":
        x, y, names = profile_features(image_paths)
    else:
        if not fit_paths or len(fit_paths) != len(class_names):
            raise ValueError(f"the {control} control needs one fit file per class file")
        features = nuisance_features if control == "nuisance" else fit_chi2_features
        x, y, names = features(image_paths, fit_paths)
    log(f"{control}: {x.shape[1]} features of {len(y)} images ({', '.join(names[:4])}, ...)")
    probs, info = fit_control(x, y, split, len(class_names))
    if info["n_non_finite_features"]:
        log(f"{info['n_non_finite_features']} non-finite feature values: training medians used")
    log(
        "C by validation log loss: "
        + ", ".join(
            f"{c:g}: {v:.4f}"
            for c, v in zip(info["C_grid"], info["val_log_loss_by_C"], strict=True)
        )
        + f"; kept C = {info['C']:g}"
        + ("" if info["converged"] else " (lbfgs not converged)")
    )
    y_test = y[split["test"]]
    metrics = classification_metrics(y_test, probs, class_names)
    metrics.update(
        model="logistic_regression",
        channels=[control],
        seed=None,
        best_epoch=None,
        best_val_acc=info["best_val_acc"],
        best_val_loss=info["best_val_loss"],
        n_train=len(split["train"]),
        n_val=len(split["val"]),
        n_test=len(y_test),
        n_parameters=info["n_parameters"],
        darklens_version=__version__,
        control=control,
        features=names,
        C=info["C"],
        C_grid=info["C_grid"],
        val_log_loss_by_C=info["val_log_loss_by_C"],
        converged=info["converged"],
        n_non_finite_features=info["n_non_finite_features"],
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_predictions(out_dir / "predictions.csv", split["test"], y_test, probs, class_names)
    write_metrics(out_dir / "metrics.json", metrics)
    auc = metrics["auc_macro_ovr"]
    log(
        f"{control}: test accuracy {metrics['accuracy']:.3f}, macro AUC "
        + ("n/a" if auc is None else f"{auc:.3f}")
    )
    return metrics
