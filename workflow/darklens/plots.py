"""Figures: confusion matrices, training curves, sample images. Images use `origin="lower"`
(x grows with the column, y with the row, PHYSICS.md)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from darklens.atomic import atomic_path  # noqa: E402


def _read_csv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _save(fig, output) -> None:
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=Path(output).suffix.lstrip(".") or "png", dpi=110)
    plt.close(fig)


def confusion_counts(prediction_csvs) -> tuple[np.ndarray, list[str]]:
    """Confusion counts (rows true, columns predicted) summed over the given prediction files."""
    total, names = None, None
    for path in prediction_csvs:
        rows = _read_csv(path)
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
        rows = _read_csv(path)
        by_model[Path(path).parent.parent.name].append(
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
    import h5py

    residual_files = residual_files or [None] * len(class_files)
    n_cols = 3 if any(residual_files) else 2
    fig, axes = plt.subplots(
        len(class_files) * per_class, n_cols, figsize=(3 * n_cols, 3 * per_class * len(class_files))
    )
    axes = np.atleast_2d(axes)
    for c, (path, res_path) in enumerate(zip(class_files, residual_files, strict=True)):
        with h5py.File(path, "r") as handle:
            name = handle.attrs["class_name"]
            images = handle["images"][:per_class]
            params = {k: handle["params"][k][:per_class] for k in handle["params"]}
        residuals = None
        if res_path:
            with h5py.File(res_path, "r") as handle:
                residuals = handle["residual"][:per_class]
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
