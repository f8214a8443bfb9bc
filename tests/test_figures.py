"""Figures read well: no overlapping text, image panels wide enough, every plotted value inside
its axes, colour bars and labelled axes. Each figure is built from small synthetic inputs."""

import matplotlib
import numpy as np
import pytest
from darklens.io.class_files import write_image_file
from darklens.io.tables import write_csv, write_predictions
from darklens.reporting import figures
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = ["no_sub", "cdm", "axion"]
MIN_IMAGE_PX = 150


def _texts(fig):
    """The visible, non-empty texts of `fig` that are drawn: titles, axis and tick labels inside
    the view limits, colour-bar labels, texts in axes, legends, (sub)figure titles."""
    texts = []
    for ax in fig.get_axes():
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, *ax.texts]
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                texts += [axis.label, axis.get_offset_text()]
                lo, hi = sorted(axis.get_view_interval())
                tol = 1e-9 * max(abs(lo), abs(hi), 1.0)
                for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                    if lo - tol <= tick.get_loc() <= hi + tol:
                        texts += [tick.label1, tick.label2]
        legend = ax.get_legend()
        if legend is not None:
            texts += legend.get_texts()
    for sub in [fig, *fig.subfigs]:
        texts += list(sub.texts)
        if sub._suptitle is not None:
            texts.append(sub._suptitle)
    unique = list({id(t): t for t in texts}.values())
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def _image_axes(fig):
    return [ax for ax in fig.get_axes() if ax.images and not hasattr(ax, "_colorbar")]


def check_figure(fig, min_image_px: float = MIN_IMAGE_PX) -> None:
    """The checks of this module on an unsaved figure (drawn here at its own dpi)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    # (1) no two text boxes overlap (shrunk by 1 px: touching is not overlapping)
    boxes = [(t, t.get_window_extent(renderer).expanded(1.0, 1.0)) for t in _texts(fig)]
    boxes = [(t, b.padded(-1.0)) for t, b in boxes if b.width > 2 and b.height > 2]
    for i, (text_a, a) in enumerate(boxes):
        for text_b, b in boxes[i + 1 :]:
            assert not a.overlaps(b), f"{text_a.get_text()!r} overlaps {text_b.get_text()!r}"
    # (2) image panels wide enough; (4) a colour bar and axis labels on each
    for ax in _image_axes(fig):
        width = ax.get_window_extent(renderer).width
        assert width >= min_image_px, f"image panel {ax.get_title()!r} is {width:.0f} px wide"
        assert any(im.colorbar is not None for im in ax.images), f"{ax.get_title()!r}: no bar"
        for im in ax.images:
            if im.colorbar is not None:
                assert im.colorbar.ax.get_ylabel().strip(), "colour bar without a label"
    for ax in fig.get_axes():
        if ax.axison and not hasattr(ax, "_colorbar"):
            assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), ax.get_title()
    # (3) every plotted value inside its axes' limits
    for ax in fig.get_axes():
        x_lo, x_hi = sorted(ax.get_xlim())
        y_lo, y_hi = sorted(ax.get_ylim())
        for artist in ax.get_children():
            if isinstance(artist, Line2D):
                points = np.column_stack([artist.get_xdata(), artist.get_ydata()]).astype(float)
            elif isinstance(artist, LineCollection):
                segments = artist.get_segments()
                points = np.concatenate(segments) if segments else np.zeros((0, 2))
            else:
                continue
            in_x, in_y = artist.get_transform().contains_branch_seperately(ax.transData)
            points = points[np.isfinite(points).all(axis=1)]
            if in_x:
                assert ((points[:, 0] >= x_lo) & (points[:, 0] <= x_hi)).all(), ax.get_title()
            if in_y:
                outside = points[(points[:, 1] < y_lo) | (points[:, 1] > y_hi), 1]
                assert not len(outside), f"{ax.get_title()!r}: y {outside} outside {y_lo, y_hi}"


def _class_file(path, name, n=3, n_pix=32, seed=0):
    rng = np.random.default_rng(seed)
    data = {
        "images": rng.normal(1.0, 0.2, (n, n_pix, n_pix)).astype(np.float32),
        "image_index": np.arange(n),
        "params": {"snr": np.full(n, 20.0), "substructure_chi": np.linspace(0.3, 5.0, n)},
        "subhalos": {},
        "subhalo_offsets": np.zeros(n + 1, dtype=np.int64),
    }
    config = {"simulation": {"instrument": {"pixel_scale_arcsec": 0.1, "n_pix": n_pix}}}
    write_image_file(path, data, {"class_name": name, "config": config})
    return path


def _predictions(tmp_path, model, seed, n=30):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) * 3 // n  # classes in file order, as the global image index
    probs = rng.dirichlet(np.ones(3), n)
    probs[np.arange(n), labels] += rng.uniform(0, 1, n)
    probs /= probs.sum(axis=1, keepdims=True)
    path = tmp_path / "runs" / model / f"seed_{seed}" / "predictions.csv"
    write_predictions(path, np.arange(n), labels, probs, NAMES)
    return path


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_confusion_matrix(tmp_path):
    runs = [_predictions(tmp_path, "cnn", s) for s in (0, 1)]
    check_figure(figures.build_confusion_matrix(runs, title="cnn"))
    figures.confusion_matrix_figure(runs, tmp_path / "c.png", title="cnn")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_training_curves(tmp_path):
    paths = []
    for model in ("cnn", "resnet"):
        for seed in (0, 1):
            epochs = np.arange(1, 6 + 3 * seed)  # early stopping: seeds end at different epochs
            rows = [
                {
                    "epoch": int(e),
                    "train_loss": 1.5 / e + 0.1 * seed,
                    "val_loss": 1.6 / e,
                    "val_acc": 0.2 + 0.12 * e,
                }
                for e in epochs
            ]
            paths.append(tmp_path / "runs" / model / f"seed_{seed}" / "history.csv")
            paths[-1].parent.mkdir(parents=True, exist_ok=True)
            write_csv(paths[-1], rows)
    fig = figures.build_training_curves(paths)
    check_figure(fig)
    mean_line = fig.axes[1].lines[0]  # validation loss of the first model: every epoch of seed 1
    assert list(mean_line.get_xdata()) == list(range(1, 9))
    assert mean_line.get_ydata()[-1] == pytest.approx(1.6 / 8)  # seed 1 alone at its last epoch


@pytest.mark.parametrize("n_pix", [16, 64])
def test_samples_with_residuals(tmp_path, n_pix):
    files = [_class_file(tmp_path / f"{n}.h5", n, n_pix=n_pix) for n in NAMES]
    residuals = []
    for name in NAMES:
        path = tmp_path / f"{name}_res.h5"
        from darklens.io.class_files import write_features_file

        write_features_file(path, np.random.default_rng(1).normal(0, 1, (3, n_pix, n_pix)), {})
        residuals.append(path)
    fig = figures.build_samples(files, residuals, per_class=2)
    check_figure(fig)
    assert all(ax.get_xlabel() == "x [arcsec]" for ax in _image_axes(fig))


def test_roc(tmp_path):
    runs = [_predictions(tmp_path, "cnn", s) for s in (0, 1, 2)]
    check_figure(figures.build_roc(runs, title="cnn"))


def test_accuracy_vs_signal(tmp_path):
    files = [_class_file(tmp_path / f"{n}.h5", n, n=10, seed=k) for k, n in enumerate(NAMES)]
    runs = [_predictions(tmp_path, m, s) for m in ("cnn", "resnet") for s in (0, 1)]
    check_figure(figures.build_accuracy_vs_signal(runs, files))


def _sensitivity_csv(path, aucs):
    rows = []
    for point, value, chi in (("1", "1", 0.4), ("5", "5", 1.3), ("25", "25", 4.0)):
        for seed in (0, 1):
            rows.append(
                {
                    "parameter": "simulation.classes.cdm.n_subhalos.mean",
                    "class": "cdm",
                    "point": point,
                    "value": value,
                    "model": "cnn",
                    "seed": seed,
                    "auc_macro_ovr": aucs[point][seed],
                    "auc_cdm": aucs[point][seed] - 0.05,
                    "chi_median": chi,
                    "chi_refit_median": chi / 2,  # the ticks then carry both signals
                }
            )
    write_csv(path, rows)
    return path


def test_sensitivity_keeps_low_aucs_on_the_plot(tmp_path):
    aucs = {"1": (0.3, 0.32), "5": (0.7, 0.75), "25": (0.95, 0.99)}
    path = _sensitivity_csv(tmp_path / "sensitivity.csv", aucs)
    fig = figures.build_sensitivity(path)
    check_figure(fig)
    for ax in fig.get_axes():
        lo, hi = ax.get_ylim()
        assert lo < 0.3 and 1.0 <= hi  # the AUCs of about 0.3 and a perfect score are shown


def test_sensitivity_check_catches_fixed_limits(tmp_path):
    """The old fixed y-limits 0.4..1.02 hide an AUC of 0.3: the check must notice."""
    aucs = {"1": (0.3, 0.3), "5": (0.7, 0.7), "25": (0.9, 0.9)}
    fig = figures.build_sensitivity(_sensitivity_csv(tmp_path / "s.csv", aucs))
    for ax in fig.get_axes():
        ax.set_ylim(0.4, 1.02)
    with pytest.raises(AssertionError, match="outside"):
        check_figure(fig)


def test_attribution(tmp_path):
    rng = np.random.default_rng(0)
    n, size = 3, 24
    channels = ["image", "residual"]
    result = {
        "channels": channels,
        "class_names": NAMES,
        "labels": np.array([0, 1, 2]),
        "target": np.array([0, 2, 2]),
        "probs": rng.dirichlet(np.ones(3), n),
        "raw": rng.normal(1.0, 0.3, (n, 2, size, size)),
        "grad_cam": rng.uniform(0, 1, (n, size, size)),
        "integrated_gradients": rng.normal(0, 0.1, (n, 2, size, size)),
        "channel_share": np.array([[0.6, 0.4]] * n),
        "share_by_class": {name: np.array([0.5, 0.5]) for name in NAMES},
    }
    check_figure(figures.build_attribution(result, title="cnn seed_0"))
    figures.attribution_figure(result, tmp_path / "a.png", title="cnn seed_0")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
