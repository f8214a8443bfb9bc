"""Figures: confusion matrices, training curves, sample images, ROC curves, accuracy against the
substructure signal, sensitivity and attributions. Images use `origin="lower"` (x grows with the
column, y with the row, docs/physics.md)."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from darklens.evaluation.metrics import binary_auc, roc_curve  # noqa: E402
from darklens.evaluation.sensitivity import (  # noqa: E402
    BELOW_GRID,
    CROSSED,
    NOT_REACHED,
    auc_metric,
    axis_unit,
)
from darklens.evaluation.signal import SIGNAL_LABELS, accuracy_vs_signal  # noqa: E402
from darklens.features.channels import CHANNELS  # noqa: E402
from darklens.io.atomic import atomic_path  # noqa: E402
from darklens.io.class_files import (  # noqa: E402
    read_class_name,
    read_images,
    read_params,
    read_pixel_scale,
    read_residual,
)
from darklens.io.tables import group_by_model, read_csv, read_predictions, run_identity  # noqa: E402

#: Resolution of the saved figures (dots per inch); figures are created at this dpi, so what
#: `fig.canvas.draw()` lays out is what is saved.
DPI = 110
#: Width and height of one panel in inches, independent of the image size in pixels.
PANEL_IN = 2.8
IMAGE_UNIT = "counts/s per pixel"
LOG_LABEL = "log10(1 + excess/rms)\n(dimensionless)"


def _save(fig, output) -> None:
    with atomic_path(output) as tmp:
        fig.savefig(tmp, format=Path(output).suffix.lstrip(".") or "png", dpi=DPI)
    plt.close(fig)


def _subplots(n_rows: int, n_cols: int, width_in: float = PANEL_IN, height_in: float = PANEL_IN):
    """A constrained-layout grid of panels of `width_in` x `height_in` inches each (plus room for
    titles and labels), at the dpi the figure is saved with."""
    return plt.subplots(
        n_rows,
        n_cols,
        figsize=(width_in * n_cols + 0.6, height_in * n_rows + 0.8),
        squeeze=False,
        layout="constrained",
        dpi=DPI,
    )


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """`text` wrapped at about the number of characters that fit into `width_in` inches."""
    return textwrap.fill(text, max(int(width_in * 72 / (0.6 * fontsize)), 12))


def _limits(values, include=(), margin: float = 0.05) -> tuple[float, float]:
    """Axis limits that hold every finite value of `values` and `include`, with a margin."""
    values = np.asarray([*np.ravel(np.asarray(values, float)), *include], float)
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    lo, hi = float(values.min()), float(values.max())
    pad = margin * (hi - lo) or 0.05 * max(abs(hi), 1.0)
    return lo - pad, hi + pad


def _image_extent(n_pix: int, pixel_scale_arcsec: float | None):
    """imshow extent in arcsec centred on the image, or None (pixel axes) when unknown."""
    if not pixel_scale_arcsec:
        return None
    half = 0.5 * n_pix * pixel_scale_arcsec
    return (-half, half, -half, half)


def _image_panel(fig, ax, data, extent, colour_label: str, title: str = "", **imshow):
    """imshow with origin lower, a colour bar labelled `colour_label` and labelled axes (arcsec
    when `extent` is given, else pixel)."""
    shown = ax.imshow(data, origin="lower", extent=extent, **imshow)
    bar = fig.colorbar(shown, ax=ax, shrink=0.9)
    bar.set_label(colour_label, fontsize=7)
    bar.ax.tick_params(labelsize=6)
    unit = "arcsec" if extent is not None else "pixel"
    ax.set_xlabel(f"x [{unit}]", fontsize=7)
    ax.set_ylabel(f"y [{unit}]", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.locator_params(nbins=4)
    if title:
        ax.set_title(title, fontsize=8)
    return shown


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


def build_confusion_matrix(prediction_csvs, title: str = ""):
    """The figure of `confusion_matrix_figure`, not saved."""
    prediction_csvs = list(prediction_csvs)
    counts, names = confusion_counts(prediction_csvs)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(PANEL_IN, 0.7 * len(names) + 1.2)
    fig, axes = _subplots(1, 2, size + 0.8, size)
    panels = (
        (counts, "counts (summed over seeds)", "d", "test images"),
        (rates, "row-normalised (recall)", ".2f", "fraction of the true class"),
    )
    for ax, (matrix, label, fmt, unit) in zip(axes[0], panels, strict=True):
        shown = ax.imshow(matrix, cmap="Blues", vmin=0)
        fig.colorbar(shown, ax=ax, shrink=0.9).set_label(unit, fontsize=8)
        for i in range(len(names)):
            for j in range(len(names)):
                colour = "white" if matrix[i, j] > 0.6 * matrix.max() else "black"
                ax.text(
                    j,
                    i,
                    format(matrix[i, j], fmt),
                    ha="center",
                    va="center",
                    color=colour,
                    fontsize=8,
                )
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(label, fontsize=9)
    suptitle = f"{title} test set, {len(prediction_csvs)} seed(s), {int(counts.sum())} predictions"
    fig.suptitle(_wrap(suptitle.strip(), 2 * size, 10), fontsize=10)
    return fig


def confusion_matrix_figure(prediction_csvs, output, title: str = "") -> None:
    """Test-set confusion matrix: counts summed over seeds, and row-normalised (recall)."""
    _save(build_confusion_matrix(prediction_csvs, title), output)


def build_training_curves(history_csvs):
    """The figure of `training_curves_figure`, not saved."""
    by_model = defaultdict(list)
    for path in history_csvs:
        rows = read_csv(path)
        by_model[run_identity(path)[0]].append(
            {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}
        )
    fig, axes = _subplots(1, 3, 1.3 * PANEL_IN, PANEL_IN)
    axes = axes[0]
    panels = (
        ("train_loss", "training loss", "cross-entropy loss"),
        ("val_loss", "validation loss", "cross-entropy loss"),
        ("val_acc", "validation accuracy", "accuracy (fraction correct)"),
    )
    for colour, (model, runs) in zip(plt.cm.tab10.colors, sorted(by_model.items()), strict=False):
        # early stopping ends seeds at different epochs: pad with NaN, average those still running
        n_epochs = max(len(run["epoch"]) for run in runs)
        epochs = np.arange(1, n_epochs + 1)
        for ax, (key, _, _) in zip(axes, panels, strict=True):
            values = np.full((len(runs), n_epochs), np.nan)
            for row, run in zip(values, runs, strict=True):
                row[: len(run[key])] = run[key]
            ax.plot(
                epochs,
                np.nanmean(values, axis=0),
                color=colour,
                label=f"{model} ({len(runs)} seeds)",
            )
            low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
            ax.fill_between(epochs, low, high, color=colour, alpha=0.2)
            last = [len(run[key]) - 1 for run in runs]
            ax.plot(
                [e + 1 for e in last],
                [run[key][e] for run, e in zip(runs, last, strict=True)],
                "x",
                color=colour,
                ms=4,
            )
    for ax, (_, label, unit) in zip(axes, panels, strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(unit)
        ax.set_title(label, fontsize=9)
    axes[2].axhline(1 / 3, color="grey", ls=":", label="chance (3 classes)")
    axes[2].legend(fontsize=7)
    fig.suptitle(
        "Training curves: mean over the seeds still training, band = min..max, x = a seed's last "
        "epoch",
        fontsize=9,
    )
    return fig


def training_curves_figure(history_csvs, output) -> None:
    """Train/validation loss and validation accuracy per epoch; mean and min-max over seeds.

    Each history file lives at `runs/{model}/seed_{k}/history.csv`.
    """
    _save(build_training_curves(history_csvs), output)


def percentile_limits(image: np.ndarray, low: float = 1.0, high: float = 99.5):
    return np.percentile(image, low), np.percentile(image, high)


def log_scaled(image: np.ndarray) -> np.ndarray:
    """log10 of the image shifted to be positive: the noise floor maps to ~0."""
    floor = np.percentile(image, 50)
    scale = max(np.std(image), 1e-12)
    return np.log10(1.0 + np.maximum(image - floor, 0.0) / scale)


def build_samples(class_files, residual_files, per_class: int = 3):
    """The figure of `samples_figure`, not saved."""
    residual_files = residual_files or [None] * len(class_files)
    n_cols = 3 if any(residual_files) else 2
    fig, axes = _subplots(len(class_files) * per_class, n_cols, PANEL_IN + 0.6, PANEL_IN)
    for c, (path, res_path) in enumerate(zip(class_files, residual_files, strict=True)):
        name = read_class_name(path)
        images = read_images(path, count=per_class)
        params = read_params(path, count=per_class)
        residuals = read_residual(res_path, count=per_class) if res_path else None
        extent = _image_extent(images.shape[-1], read_pixel_scale(path))
        for k in range(len(images)):
            row = axes[c * per_class + k]
            chi = params.get("substructure_chi", np.zeros(per_class))[k]
            _image_panel(
                fig,
                row[0],
                log_scaled(images[k]),
                extent,
                LOG_LABEL,
                _wrap(f"{name} #{k} log (chi_sub={chi:.1f})", PANEL_IN, 8),
                cmap="magma",
            )
            lo, hi = percentile_limits(images[k])
            _image_panel(
                fig,
                row[1],
                images[k],
                extent,
                IMAGE_UNIT,
                _wrap(f"1-99.5 percentile, snr={params['snr'][k]:.0f}", PANEL_IN, 8),
                cmap="gray",
                vmin=lo,
                vmax=hi,
            )
            if residuals is not None:
                limit = np.percentile(np.abs(residuals[k]), 99.5) or 1.0
                _image_panel(
                    fig,
                    row[2],
                    residuals[k],
                    extent,
                    f"residual {IMAGE_UNIT}",
                    "residual",
                    cmap="RdBu_r",
                    vmin=-limit,
                    vmax=limit,
                )
        for k in range(len(images), per_class):
            for ax in axes[c * per_class + k]:
                ax.set_axis_off()
    return fig


def samples_figure(class_files, residual_files, output, per_class: int = 3) -> None:
    """Per class: `per_class` images in log scale, percentile (1-99.5%) scale, and residuals."""
    _save(build_samples(class_files, residual_files, per_class), output)


def build_roc(prediction_csvs, title: str = ""):
    """The figure of `roc_figure`, not saved."""
    prediction_csvs = list(prediction_csvs)
    runs = [read_predictions(p) for p in prediction_csvs]
    names = runs[0][3]
    grid = np.linspace(0.0, 1.0, 201)
    fig, axes = _subplots(1, len(names), 1.3 * PANEL_IN, 1.3 * PANEL_IN)
    for k, (ax, name) in enumerate(zip(axes[0], names, strict=True)):
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
        ax.set_xlim(-0.02, 1.02)  # rates lie in 0..1
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(f"{name} vs rest", fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
        ax.set_aspect("equal")
    suptitle = f"{title} one-vs-rest ROC, {len(runs)} seed(s); band = min..max over seeds"
    fig.suptitle(_wrap(suptitle.strip(), 1.3 * PANEL_IN * len(names), 10), fontsize=10)
    return fig


def roc_figure(prediction_csvs, output, title: str = "") -> None:
    """One-vs-rest ROC curves per class: one thin line per seed, the vertical mean over seeds
    (interpolated on a common false-positive-rate grid) and the min..max band of the seeds."""
    _save(build_roc(prediction_csvs, title), output)


def build_accuracy_vs_signal(prediction_csvs, class_files, fit_files=None):
    """The figure of `accuracy_vs_signal_figure`, not saved."""
    by_model = group_by_model(prediction_csvs)
    results = {
        m: accuracy_vs_signal(paths, class_files, fit_files=fit_files)
        for m, paths in by_model.items()
    }
    classes = sorted({c for r in results.values() for c in r}, key=lambda c: c != "cdm")
    width = 1.6 * PANEL_IN
    fig, axes = _subplots(1, max(len(classes), 1), width, 1.3 * PANEL_IN)
    for ax, name in zip(axes[0], classes, strict=False):
        shown = [1 / 3]
        for colour, (model, result) in zip(plt.cm.tab10.colors, results.items(), strict=False):
            r = result[name]
            mean = r["recall"].mean(axis=0)
            std = r["recall"].std(axis=0, ddof=1) if len(r["recall"]) > 1 else None
            ax.errorbar(
                r["centres"],
                mean,
                yerr=std,
                marker="o",
                capsize=3,
                color=colour,
                label=f"{model} ({len(r['recall'])} seeds)",
            )
            spread = 0.0 if std is None else std
            shown += [*(mean - spread), *(mean + spread)]
        r = next(iter(results.values()))[name]
        ax.set_xscale("log")
        # labels at 1, 2, 5 x 10^k only: the default minor labels overlap within a decade
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.axvline(1.0, color="grey", ls=":", lw=1)
        ax.axhline(1 / 3, color="grey", ls="--", lw=1, label="chance (3 classes)")
        ax.set_ylim(*_limits(shown, include=(0.0, 1.0), margin=0.03))
        label = f"{SIGNAL_LABELS[r['signal']]}, `{r['signal']}` (median of bin; noise-weighted, "
        ax.set_xlabel(_wrap(label + "1 = noise level)", width, 9), fontsize=8)
        ax.set_ylabel(f"recall of {name} (fraction)")
        ax.set_title(
            _wrap(
                f"{name}: {int(r['counts'].sum())} test images in {len(r['counts'])} quantile bins",
                width,
                9,
            ),
            fontsize=9,
        )
        ax.legend(fontsize=7)
    if not classes:
        ax = axes[0][0]
        ax.text(0.5, 0.5, "no substructure signal stored\n(imported images?)", ha="center")
        ax.set_axis_off()
    fig.suptitle(
        _wrap(
            "Accuracy against the per-image substructure signal (test set)",
            width * max(len(classes), 1),
            10,
        ),
        fontsize=10,
    )
    return fig


def accuracy_vs_signal_figure(prediction_csvs, class_files, output, fit_files=None) -> None:
    """Recall of cdm and axion test images against their substructure signal chi, per model
    (mean over seeds, error bar = standard deviation over seeds); `prediction_csvs` are
    `runs/{model}/seed_{k}/predictions.csv` of any models. The signal is the fit files'
    `substructure_chi_refit` when `fit_files` are given, else the class files'
    `substructure_chi`; the axis label says which."""
    _save(build_accuracy_vs_signal(prediction_csvs, class_files, fit_files), output)


def _seed_stats(rows, model, points, key):
    """Per point: the mean and the sample standard deviation over seeds of a column (NaN / 0)."""
    mean, std = [], []
    for p in points:
        values = [
            float(r[key]) for r in rows if r["model"] == model and r["point"] == p and r[key] != ""
        ]
        mean.append(np.mean(values) if values else np.nan)
        std.append(np.std(values, ddof=1) if len(values) > 1 else 0.0)
    return np.array(mean), np.array(std)


def _x_axis(ax, x_values, log_ok: bool = True):
    """Log x (positive values over at least a decade) or linear x; limits hold every value."""
    low, high = float(np.min(x_values)), float(np.max(x_values))
    if log_ok and low > 0 and high / low >= 10:
        ax.set_xscale("log")
        ax.set_xlim(low / 1.6, high * 1.6)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decades labelled only
    else:
        pad = 0.08 * (high - low) or 0.5
        ax.set_xlim(low - pad, high + pad)


def _draw_thresholds(ax, thresholds, colours, level: float) -> None:
    """Each model's threshold at the level line, with its interval (an open end drawn to the
    axis edge); a threshold below / above the grid as an arrow head at the grid's end."""
    x_lo, x_hi = ax.get_xlim()
    for row in thresholds:
        colour = colours.get(row["model"], "black")
        if row["status"] not in (CROSSED, BELOW_GRID, NOT_REACHED):
            continue
        grid_min, grid_max = float(row["grid_min"]), float(row["grid_max"])
        ends = []
        for key in ("ci_low", "ci_high"):
            status = row[f"{key}_status"]
            ends.append(x_lo if status == BELOW_GRID else x_hi if status == NOT_REACHED else None)
            ends[-1] = float(row[key]) if ends[-1] is None else ends[-1]
        ax.plot(ends, [level, level], color=colour, lw=4, alpha=0.35, solid_capstyle="butt")
        if row["status"] == CROSSED:
            ax.plot([float(row["threshold"])], [level], marker="D", color=colour, ms=6, ls="")
        else:
            at, marker = (grid_min, "<") if row["status"] == BELOW_GRID else (grid_max, ">")
            ax.plot([at], [level], marker=marker, color=colour, ms=8, ls="")


def build_sensitivity(sensitivity_csv, threshold_csv=None):
    """The figure of `sensitivity_figure`, not saved."""
    rows = read_csv(sensitivity_csv)
    thresholds = read_csv(threshold_csv) if threshold_csv else []
    parameter = rows[0]["parameter"]
    metric = auc_metric(rows)
    level = float(thresholds[0]["level"]) if thresholds else None
    points = list(dict.fromkeys(r["point"] for r in rows))
    labels = {r["point"]: r["value"] for r in rows}
    numeric = all(_is_number(labels[p]) for p in points)
    x = np.array([float(labels[p]) if numeric else i for i, p in enumerate(points)], float)
    focus = rows[0].get("class") or ""
    auc_label = {
        f"auc_{focus}_vs_no_sub": f"AUC {focus} vs no_sub",
        f"auc_{focus}": f"AUC {focus} vs rest",
    }.get(metric, "macro AUC")
    signal = next((k for k in ("chi_refit_median", "chi_median") if rows[0].get(k)), None)
    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = dict(zip(models, plt.cm.tab10.colors, strict=False))
    width = max(1.6 * PANEL_IN, 0.75 * len(points) + 1.0)
    fig, axes = _subplots(1, 2 if signal else 1, width, 1.3 * PANEL_IN)
    stats = {m: _seed_stats(rows, m, points, metric) for m in models}
    # every mean +- spread, chance (0.5), a perfect score and the threshold level stay inside
    shown = [v for mean, std in stats.values() for v in (*(mean - std), *(mean + std))]
    y_limits = _limits(shown, include=(0.5, 1.0, *([level] if level else [])), margin=0.04)
    x_panels = [(axes[0][0], x, True)]
    if signal:
        chi = np.array([float(next(r for r in rows if r["point"] == p)[signal]) for p in points])
        x_panels.append((axes[0][1], chi, False))
    for ax, xs, is_sweep_axis in x_panels:
        _x_axis(ax, xs, log_ok=numeric or not is_sweep_axis)
        for model in models:
            mean, std = stats[model]
            order = np.argsort(xs)
            ax.errorbar(
                xs[order],
                mean[order],
                yerr=std[order],
                marker="o",
                capsize=3,
                color=colours[model],
                label=f"{model} (mean ± sd over seeds)",
            )
        ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance")
        if level:
            ax.axhline(level, color="black", ls=":", lw=1, label=f"AUC {level:g}")
        ax.set_ylim(*y_limits)
        ax.set_ylabel(f"{auc_label} (0.5 = chance)")
    ax = axes[0][0]
    ax.set_xticks(x, [labels[p] if not numeric else f"{float(labels[p]):.3g}" for p in points])
    ax.tick_params(axis="x", labelsize=7)
    ax.minorticks_off()
    unit = axis_unit(parameter)
    others = [s.split("=")[0] for s in (rows[0].get("settings") or "").split("; ")[1:]]
    label = f"{parameter} ({unit})" if unit else f"{parameter} (as configured)"
    if others:
        label += f", set with {', '.join(others)}"
    ax.set_xlabel(_wrap(label, width, 8), fontsize=8)
    if thresholds and numeric:
        _draw_thresholds(ax, thresholds, colours, level)
        ax.plot([], [], marker="D", color="grey", ls="", label="threshold; band: its CI")
    ax.legend(fontsize=6)
    if signal:
        ax = axes[0][1]
        what = "substructure_chi_refit" if signal == "chi_refit_median" else "substructure_chi"
        ax.set_xlabel(
            _wrap(f"median {what} of the point's {focus} images (dimensionless)", width, 8),
            fontsize=8,
        )
    fig.suptitle(
        _wrap(
            "Sensitivity: where does substructure become detectable?",
            width * len(x_panels),
            10,
        ),
        fontsize=10,
    )
    return fig


def sensitivity_figure(sensitivity_csv, output, threshold_csv=None) -> None:
    """The swept class's one-vs-rest AUC (mean over seeds, error bar = standard deviation)
    against the swept setting (log axis over a decade or more) and against the median
    substructure signal of the swept class (substructure_chi_refit where fitted); with
    `threshold_csv` (sensitivity_threshold.csv) the level line and each model's threshold with
    its interval."""
    _save(build_sensitivity(sensitivity_csv, threshold_csv), output)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def build_attribution(result: dict, title: str = ""):
    """The figure of `attribution_figure`, not saved."""
    channels, names = result["channels"], result["class_names"]
    n, n_ch = len(result["labels"]), len(channels)
    n_cols = n_ch + 1 + n_ch
    size = result["raw"].shape[-1] if n else 1
    extent = _image_extent(size, result.get("pixel_scale_arcsec"))
    fig, axes = _subplots(n, n_cols, PANEL_IN + 0.5, PANEL_IN)
    for i in range(n):
        row = axes[i]
        raw = result["raw"][i]
        for c, channel in enumerate(channels):
            if channel == "image":
                _image_panel(
                    fig, row[c], log_scaled(raw[c]), extent, LOG_LABEL, channel, cmap="magma"
                )
            else:
                limit = np.percentile(np.abs(raw[c]), 99.5) or 1.0
                _image_panel(
                    fig,
                    row[c],
                    raw[c],
                    extent,
                    f"{channel} [{CHANNELS[channel].unit}]" if channel in CHANNELS else channel,
                    channel,
                    cmap="RdBu_r",
                    vmin=-limit,
                    vmax=limit,
                )
        true, pred = names[result["labels"][i]], names[result["target"][i]]
        row[0].set_ylabel(
            f"true {true}, pred {pred} ({result['probs'][i].max():.2f})\n" + row[0].get_ylabel(),
            fontsize=7,
        )
        row[n_ch].imshow(log_scaled(raw[0]), origin="lower", cmap="gray", extent=extent)
        _image_panel(
            fig,
            row[n_ch],
            result["grad_cam"][i],
            extent,
            "Grad-CAM weight\n(dimensionless, 0..1)",
            "Grad-CAM",
            cmap="jet",
            alpha=0.45,
            vmin=0,
            vmax=1,
        )
        ig = result["integrated_gradients"][i]
        limit = np.abs(ig).max() or 1.0
        for c, channel in enumerate(channels):
            share = result["channel_share"][i][c]
            _image_panel(
                fig,
                row[n_ch + 1 + c],
                ig[c],
                extent,
                "IG (logit of the\npredicted class per pixel)",
                f"IG {channel} ({100 * share:.0f}%)",
                cmap="RdBu_r",
                vmin=-limit,
                vmax=limit,
            )
    shares = "; ".join(
        f"{name}: "
        + ", ".join(f"{ch} {100 * s:.0f}%" for ch, s in zip(channels, share, strict=True))
        for name, share in result["share_by_class"].items()
    )
    text = (
        f"{title} attributions on test images (integrated gradients from the training-mean "
        f"baseline; % = share of |IG|). Mean share over all test images of each class: {shares}"
    )
    fig.suptitle(_wrap(text.strip(), (PANEL_IN + 0.5) * n_cols, 9), fontsize=9)
    return fig


def attribution_figure(result: dict, output, title: str = "") -> None:
    """Per shown test image: the input channels, Grad-CAM, and the integrated-gradients map of each
    channel (same colour scale for all channels of an image, red = towards the predicted class).
    Axes are in arcsec when `result` holds "pixel_scale_arcsec", else in pixels."""
    _save(build_attribution(result, title), output)
