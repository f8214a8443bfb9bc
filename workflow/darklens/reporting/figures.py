"""Figures: confusion matrices, training curves, sample images, ROC curves, accuracy against the
substructure signal, sensitivity and attributions. Images use `origin="lower"` (x grows with the
column, y with the row, docs/physics.md)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from darklens.evaluation.metrics import binary_auc, roc_curve  # noqa: E402
from darklens.evaluation.signal import accuracy_vs_signal  # noqa: E402
from darklens.io.atomic import atomic_path  # noqa: E402
from darklens.io.class_files import (  # noqa: E402
    read_class_name,
    read_images,
    read_params,
    read_residual,
)
from darklens.io.tables import group_by_model, read_csv, read_predictions, run_identity  # noqa: E402


def _save(fig, output) -> None:
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=Path(output).suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)


def confusion_counts(prediction_csvs) -> tuple[np.ndarray, list[str]]:
    """Confusion counts (rows true, columns predicted) summed over the given prediction files."""
    total, names = None, None
    for path in prediction_csvs:
        rows = read_csv(path)
        if not rows:
            raise ValueError(f"{path}: no predictions")
        file_names = [key.removeprefix("prob_") for key in rows[0] if key.startswith("prob_")]
        if names is None:
            names, total = file_names, np.zeros((len(file_names),) * 2, dtype=np.int64)
        elif file_names != names:
            raise ValueError(f"{path}: classes {file_names} differ from {names}")
        for row in rows:
            total[int(row["label"]), int(row["pred"])] += 1
    return total, names


def confusion_matrix_figure(prediction_csvs, output, title: str = "") -> None:
    """Test-set confusion matrix: counts summed over seeds, and row-normalised (recall)."""
    counts, names = confusion_counts(prediction_csvs)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    panels = ((counts, "counts (summed over seeds)", "d"), (rates, "row-normalised", ".2f"))
    for ax, (matrix, label, fmt) in zip(axes, panels, strict=True):
        ax.imshow(matrix, cmap="Blues", vmin=0)
        for i in range(len(names)):
            for j in range(len(names)):
                colour = "white" if matrix[i, j] > 0.6 * matrix.max() else "black"
                ax.text(j, i, format(matrix[i, j], fmt), ha="center", va="center", color=colour)
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(label)
    n_seeds = len(list(prediction_csvs))
    fig.suptitle(f"{title} test set, {n_seeds} seed(s), {int(counts.sum())} predictions".strip())
    fig.tight_layout()
    _save(fig, output)


def training_curves_figure(history_csvs, output) -> None:
    """Train/validation loss and validation accuracy per epoch; mean and min-max over seeds.

    Each history file lives at `runs/{model}/seed_{k}/history.csv`.
    """
    by_model = defaultdict(list)
    for path in history_csvs:
        rows = read_csv(path)
        by_model[run_identity(path)[0]].append(
            {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}
        )
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    panels = (
        ("train_loss", "training loss"),
        ("val_loss", "validation loss"),
        ("val_acc", "validation accuracy"),
    )
    for colour, (model, runs) in zip(plt.cm.tab10.colors, sorted(by_model.items()), strict=False):
        n_epochs = min(len(run["epoch"]) for run in runs)
        epochs = runs[0]["epoch"][:n_epochs]
        for ax, (key, label) in zip(axes, panels, strict=True):
            values = np.stack([run[key][:n_epochs] for run in runs])
            ax.plot(epochs, values.mean(axis=0), color=colour, label=f"{model} ({len(runs)} seeds)")
            ax.fill_between(epochs, values.min(axis=0), values.max(axis=0), color=colour, alpha=0.2)
            ax.set_xlabel("epoch")
            ax.set_title(label)
    axes[2].axhline(1 / 3, color="grey", ls=":", label="chance (3 classes)")
    axes[2].legend()
    fig.suptitle("Training curves: mean over seeds, band = min..max")
    fig.tight_layout()
    _save(fig, output)


def percentile_limits(image: np.ndarray, low: float = 1.0, high: float = 99.5):
    return np.percentile(image, low), np.percentile(image, high)


def log_scaled(image: np.ndarray) -> np.ndarray:
    """log10 of the image shifted to be positive: the noise floor maps to ~0."""
    floor = np.percentile(image, 50)
    scale = max(np.std(image), 1e-12)
    return np.log10(1.0 + np.maximum(image - floor, 0.0) / scale)


def samples_figure(class_files, residual_files, output, per_class: int = 3) -> None:
    """Per class: `per_class` images in log scale, percentile (1-99.5%) scale, and residuals."""
    residual_files = residual_files or [None] * len(class_files)
    n_cols = 3 if any(residual_files) else 2
    fig, axes = plt.subplots(
        len(class_files) * per_class, n_cols, figsize=(3 * n_cols, 3 * per_class * len(class_files))
    )
    axes = np.atleast_2d(axes)
    for c, (path, res_path) in enumerate(zip(class_files, residual_files, strict=True)):
        name = read_class_name(path)
        images = read_images(path, count=per_class)
        params = read_params(path, count=per_class)
        residuals = read_residual(res_path, count=per_class) if res_path else None
        for k in range(len(images)):
            row = axes[c * per_class + k]
            chi = params.get("substructure_chi", np.zeros(per_class))[k]
            row[0].imshow(log_scaled(images[k]), origin="lower", cmap="magma")
            row[0].set_title(f"{name} #{k} log  (chi_sub={chi:.1f})", fontsize=8)
            lo, hi = percentile_limits(images[k])
            row[1].imshow(images[k], origin="lower", cmap="gray", vmin=lo, vmax=hi)
            row[1].set_title(f"percentile 1-99.5%  snr={params['snr'][k]:.0f}", fontsize=8)
            if residuals is not None:
                limit = np.percentile(np.abs(residuals[k]), 99.5)
                row[2].imshow(residuals[k], origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
                row[2].set_title("residual", fontsize=8)
            for ax in row:
                ax.set_xticks([])
                ax.set_yticks([])
    fig.tight_layout()
    _save(fig, output)


def roc_figure(prediction_csvs, output, title: str = "") -> None:
    """One-vs-rest ROC curves per class: one thin line per seed, the vertical mean over seeds
    (interpolated on a common false-positive-rate grid) and the min..max band of the seeds."""
    runs = [read_predictions(p) for p in prediction_csvs]
    names = runs[0][3]
    grid = np.linspace(0.0, 1.0, 201)
    fig, axes = plt.subplots(1, len(names), figsize=(4.3 * len(names), 4.3))
    for k, (ax, name) in enumerate(zip(np.atleast_1d(axes), names, strict=True)):
        curves, aucs = [], []
        for path, (_, labels, probs, _) in zip(prediction_csvs, runs, strict=True):
            positive = labels == k
            if positive.all() or not positive.any():
                continue
            fpr, tpr = roc_curve(positive, probs[:, k])
            auc = binary_auc(positive, probs[:, k])
            seed = run_identity(path)[1]
            ax.plot(fpr, tpr, lw=0.8, alpha=0.6, label=f"seed {seed}: AUC {auc:.3f}")
            curves.append(np.interp(grid, fpr, tpr))
            aucs.append(auc)
        if curves:
            curves = np.stack(curves)
            spread = f" ± {np.std(aucs, ddof=1):.3f}" if len(aucs) > 1 else ""
            ax.plot(
                grid,
                curves.mean(axis=0),
                color="black",
                lw=2,
                label=f"mean: AUC {np.mean(aucs):.3f}{spread}",
            )
            ax.fill_between(grid, curves.min(axis=0), curves.max(axis=0), color="grey", alpha=0.25)
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{name} vs rest")
        ax.legend(fontsize=7, loc="lower right")
        ax.set_aspect("equal")
    fig.suptitle(
        f"{title} one-vs-rest ROC, {len(runs)} seed(s); band = min..max over seeds".strip()
    )
    fig.tight_layout()
    _save(fig, output)


def accuracy_vs_signal_figure(prediction_csvs, class_files, output) -> None:
    """Recall of cdm and axion test images against their substructure signal chi, per model
    (mean over seeds, error bar = standard deviation over seeds); `prediction_csvs` are
    `runs/{model}/seed_{k}/predictions.csv` of any models."""
    by_model = group_by_model(prediction_csvs)
    results = {m: accuracy_vs_signal(paths, class_files) for m, paths in by_model.items()}
    classes = sorted({c for r in results.values() for c in r}, key=lambda c: c != "cdm")
    fig, axes = plt.subplots(1, max(len(classes), 1), figsize=(5.5 * max(len(classes), 1), 4.2))
    for ax, name in zip(np.atleast_1d(axes), classes, strict=False):
        for colour, (model, result) in zip(plt.cm.tab10.colors, results.items(), strict=False):
            r = result[name]
            std = r["recall"].std(axis=0, ddof=1) if len(r["recall"]) > 1 else None
            ax.errorbar(
                r["centres"],
                r["recall"].mean(axis=0),
                yerr=std,
                marker="o",
                capsize=3,
                color=colour,
                label=f"{model} ({len(r['recall'])} seeds)",
            )
        r = next(iter(results.values()))[name]
        ax.set_xscale("log")
        ax.axvline(1.0, color="grey", ls=":", lw=1)
        ax.axhline(1 / 3, color="grey", ls="--", lw=1, label="chance (3 classes)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("substructure signal chi (median of bin; noise-weighted, 1 = noise level)")
        ax.set_ylabel(f"recall of {name}")
        ax.set_title(
            f"{name}: {int(r['counts'].sum())} test images in {len(r['counts'])} quantile bins"
        )
        ax.legend(fontsize=8)
    if not classes:
        ax = np.atleast_1d(axes)[0]
        ax.text(0.5, 0.5, "no substructure signal stored\n(imported images?)", ha="center")
        ax.set_axis_off()
    fig.suptitle("Accuracy against the per-image substructure signal (test set)")
    fig.tight_layout()
    _save(fig, output)


def sensitivity_figure(sensitivity_csv, output) -> None:
    """Macro AUC and the swept class's one-vs-rest AUC against the swept setting, per model
    (mean over seeds, error bar = standard deviation); the swept class's median substructure
    signal is written along the top axis."""
    rows = read_csv(sensitivity_csv)
    parameter = rows[0]["parameter"]
    points = list(dict.fromkeys(r["point"] for r in rows))
    labels = {r["point"]: r["value"] for r in rows}
    numeric = all(_is_number(labels[p]) for p in points)
    x = {p: float(labels[p]) if numeric else i for i, p in enumerate(points)}
    focus = rows[0].get("class") or ""
    panels = [("auc_macro_ovr", "macro AUC")]
    if focus:
        panels.append((f"auc_{focus}", f"AUC {focus} vs rest"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    models = list(dict.fromkeys(r["model"] for r in rows))
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for colour, model in zip(plt.cm.tab10.colors, models, strict=False):
            mean, std = [], []
            for p in points:
                values = [
                    float(r[key])
                    for r in rows
                    if r["model"] == model and r["point"] == p and r[key] != ""
                ]
                mean.append(np.mean(values) if values else np.nan)
                std.append(np.std(values, ddof=1) if len(values) > 1 else 0.0)
            ax.errorbar(
                [x[p] for p in points],
                mean,
                yerr=std,
                marker="o",
                capsize=3,
                color=colour,
                label=model,
            )
        ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance")
        low, high = min(x.values()), max(x.values())
        if numeric and low > 0 and high / low >= 10:
            ax.set_xscale("log")
            ax.set_xlim(low / 1.5, high * 1.5)
        else:
            pad = 0.08 * (high - low) or 0.5
            ax.set_xlim(low - pad, high + pad)
        chi = {r["point"]: r.get("chi_median", "") for r in rows}
        ticks = [f"{labels[p]}\n(chi {float(chi[p]):.1f})" if chi[p] else labels[p] for p in points]
        ax.set_xticks([x[p] for p in points], ticks)
        ax.minorticks_off()
        chi_note = f"; in brackets the median substructure chi of {focus}" if focus else ""
        ax.set_xlabel(f"{parameter}{chi_note}", fontsize=8)
        ax.set_ylabel(label)
        ax.set_ylim(0.4, 1.02)
        ax.legend(fontsize=8)
    fig.suptitle("Sensitivity: where does substructure become detectable?")
    fig.tight_layout()
    _save(fig, output)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def attribution_figure(result: dict, output, title: str = "") -> None:
    """Per shown test image: the input channels, Grad-CAM, and the integrated-gradients map of each
    channel (same colour scale for all channels of an image, red = towards the predicted class)."""
    channels, names = result["channels"], result["class_names"]
    n, n_ch = len(result["labels"]), len(channels)
    n_cols = n_ch + 1 + n_ch
    fig, axes = plt.subplots(n, n_cols, figsize=(2.3 * n_cols, 2.4 * n), squeeze=False)
    for i in range(n):
        row = axes[i]
        raw = result["raw"][i]
        for c, channel in enumerate(channels):
            if channel == "image":
                row[c].imshow(log_scaled(raw[c]), origin="lower", cmap="magma")
            else:
                limit = np.percentile(np.abs(raw[c]), 99.5) or 1.0
                row[c].imshow(raw[c], origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
            row[c].set_title(f"{channel}", fontsize=8)
        true, pred = names[result["labels"][i]], names[result["target"][i]]
        row[0].set_ylabel(f"true {true}\npred {pred} ({result['probs'][i].max():.2f})", fontsize=8)
        row[n_ch].imshow(log_scaled(raw[0]), origin="lower", cmap="gray")
        row[n_ch].imshow(
            result["grad_cam"][i], origin="lower", cmap="jet", alpha=0.45, vmin=0, vmax=1
        )
        row[n_ch].set_title("Grad-CAM", fontsize=8)
        ig = result["integrated_gradients"][i]
        limit = np.abs(ig).max() or 1.0
        for c, channel in enumerate(channels):
            ax = row[n_ch + 1 + c]
            ax.imshow(ig[c], origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
            share = result["channel_share"][i][c]
            ax.set_title(f"IG {channel} ({100 * share:.0f}%)", fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    shares = "; ".join(
        f"{name}: "
        + ", ".join(f"{ch} {100 * s:.0f}%" for ch, s in zip(channels, share, strict=True))
        for name, share in result["share_by_class"].items()
    )
    fig.suptitle(
        f"{title} attributions on test images (integrated gradients from the training-mean "
        f"baseline; % = share of |IG|)\nmean share over all test images of each class: {shares}",
        fontsize=9,
    )
    fig.tight_layout()
    _save(fig, output)
