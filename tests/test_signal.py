"""evaluation.signal: recall per quantile bin of the substructure signal; its figure."""

import numpy as np
import pytest
from darklens.evaluation.signal import accuracy_vs_signal
from darklens.io.class_files import DataError, write_image_file
from darklens.io.fit_files import write_fit_file
from darklens.io.tables import write_predictions

NAMES = ["no_sub", "cdm"]
CHI = {"no_sub": np.zeros(4), "cdm": np.array([0.5, 1.0, 2.0, 4.0])}


def class_files(tmp_path):
    paths = []
    for name, chi in CHI.items():
        paths.append(tmp_path / f"{name}.h5")
        data = {
            "images": np.zeros((4, 4, 4), np.float32),
            "image_index": np.arange(4),
            "params": {"snr": np.ones(4), "substructure_chi": chi},
            "subhalos": {},
            "subhalo_offsets": np.zeros(5, dtype=np.int64),
        }
        write_image_file(paths[-1], data, {"class_name": name})
    return paths


def predictions(tmp_path, model, seed, cdm_right, index=None):
    """All no_sub images right; cdm images (global index 4..7) right where `cdm_right`."""
    index = np.arange(8) if index is None else index
    labels = index // 4
    right = np.r_[np.ones(4, bool), cdm_right][index]
    probs = np.where(right[:, None], np.eye(2)[labels], np.eye(2)[1 - labels]) * 0.8 + 0.1
    path = tmp_path / "runs" / model / f"seed_{seed}" / "predictions.csv"
    write_predictions(path, index, labels, probs, NAMES)
    return path


def test_recall_per_signal_bin(tmp_path):
    runs = [
        predictions(tmp_path, "m", 0, [False, False, True, True]),
        predictions(tmp_path, "m", 1, [True, False, True, False]),
    ]
    result = accuracy_vs_signal(runs, class_files(tmp_path), n_bins=2)
    assert list(result) == ["cdm"]  # no_sub has no signal
    cdm = result["cdm"]
    np.testing.assert_allclose(cdm["edges"], [0.5, 1.5, 4.0])
    np.testing.assert_allclose(cdm["centres"], [0.75, 3.0])
    assert cdm["counts"].tolist() == [2, 2]
    np.testing.assert_allclose(cdm["recall"], [[0.0, 1.0], [0.5, 0.5]])


def test_runs_on_other_test_images_are_refused(tmp_path):
    runs = [
        predictions(tmp_path, "m", 0, [True] * 4),
        predictions(tmp_path, "m", 1, [True] * 4, index=np.array([0, 1, 4, 5, 6])),
    ]
    with pytest.raises(ValueError, match="same test images"):
        accuracy_vs_signal(runs, class_files(tmp_path), n_bins=2)


def test_signal_figure_groups_runs_by_model(tmp_path):
    from darklens.reporting.figures import accuracy_vs_signal_figure

    runs = [predictions(tmp_path, m, 0, [True, False, True, False]) for m in ("a", "b")]
    accuracy_vs_signal_figure(runs, class_files(tmp_path), tmp_path / "signal.png")
    assert (tmp_path / "signal.png").stat().st_size > 1000


#: substructure_chi_refit of the fit files: a different order than CHI's, so the bins differ.
REFIT = {"no_sub": np.zeros(4), "cdm": np.array([3.0, 0.2, 0.4, 1.0])}


def fit_files(tmp_path, refit=REFIT):
    paths = []
    for name, chi in refit.items():
        paths.append(tmp_path / "fits" / f"{name}.h5")
        n = len(chi)
        fit = {
            "chi2": np.ones(n),
            "chi2_reduced": np.ones(n),
            "model": np.zeros((n, 4, 4), np.float32),
            "converged": np.ones(n, bool),
            "reason": [""] * n,
            "iterations": np.ones(n, np.int64),
            "start": np.zeros(n, np.int64),
            "substructure_chi_refit": chi,
        }
        write_fit_file(paths[-1], {"theta_E": np.ones(n)}, fit, np.arange(n), {"class_name": name})
    return paths


def test_recall_per_bin_of_the_refit_signal_when_fit_files_are_given(tmp_path):
    runs = [predictions(tmp_path, "m", 0, [False, False, True, True])]
    result = accuracy_vs_signal(
        runs, class_files(tmp_path), n_bins=2, fit_files=fit_files(tmp_path)
    )
    cdm = result["cdm"]
    assert cdm["signal"] == "substructure_chi_refit"
    np.testing.assert_allclose(cdm["edges"], [0.2, 0.7, 3.0])
    # bin 1 (0.2, 0.4): images 1 and 2 (one right); bin 2 (1.0, 3.0): images 0 and 3
    np.testing.assert_allclose(cdm["recall"], [[0.5, 0.5]])
    plain = accuracy_vs_signal(runs, class_files(tmp_path), n_bins=2)
    assert plain["cdm"]["signal"] == "substructure_chi"


def test_fit_files_that_do_not_match_the_class_files_are_refused(tmp_path):
    runs = [predictions(tmp_path, "m", 0, [True] * 4)]
    short = fit_files(tmp_path, {"no_sub": np.zeros(4), "cdm": np.ones(3)})
    with pytest.raises(DataError, match="3 images"):
        accuracy_vs_signal(runs, class_files(tmp_path), fit_files=short)
    with pytest.raises(DataError, match="no fit file of class 'no_sub'"):
        accuracy_vs_signal(runs, class_files(tmp_path), fit_files=short[1:])


def test_signal_figure_labels_the_signal_it_uses(tmp_path):
    from darklens.reporting.figures import build_accuracy_vs_signal

    runs = [predictions(tmp_path, "a", 0, [True, False, True, False])]
    for fits, signal in (
        (None, "substructure_chi"),
        (fit_files(tmp_path), "substructure_chi_refit"),
    ):
        fig = build_accuracy_vs_signal(runs, class_files(tmp_path), fits)
        assert f"`{signal}`" in fig.axes[0].get_xlabel().replace("\n", " ")


def test_plot_signal_command_takes_fit_files_or_none(tmp_path):
    from darklens.cli import main

    runs = [str(predictions(tmp_path, "a", 0, [True, False, True, False]))]
    images = [str(p) for p in class_files(tmp_path)]
    fits = [str(p) for p in fit_files(tmp_path)]
    for option in ([], fits):
        out = tmp_path / f"signal_{len(option)}.png"
        main(
            [
                "plot",
                "signal",
                "--output",
                str(out),
                "--fits",
                *option,
                "--images",
                *images,
                "--",
                *runs,
            ]
        )
        assert out.stat().st_size > 1000
