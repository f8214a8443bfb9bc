"""Accuracy against the per-image substructure signal: the recall of each class with substructure,
per quantile bin of its test images' signal chi (noise-weighted; 1 = the noise level).

The signal is `substructure_chi_refit` of the fit files when they are given (what a smooth refit
of the noiseless image cannot absorb: darklens.fitting.files), else `substructure_chi` of the
class files (the image with minus without substructure, the true smooth image held fixed).
"""

from __future__ import annotations

import numpy as np

from darklens.io.class_files import DataError, read_class_name, read_params
from darklens.io.fit_files import read_substructure_chi_refit
from darklens.io.tables import read_predictions

#: What each signal is, for axis labels.
SIGNAL_LABELS = {
    "substructure_chi": "substructure signal chi against the true smooth image",
    "substructure_chi_refit": "substructure signal chi left by a smooth refit",
}


def substructure_chi_by_class(class_files) -> dict[str, np.ndarray]:
    """Per class, the per-image substructure signal `params/substructure_chi` (class order)."""
    return {
        read_class_name(path): read_params(path, ["substructure_chi"])["substructure_chi"]
        for path in class_files
    }


def signal_by_class(class_files, fit_files=None) -> tuple[str, dict[str, np.ndarray]]:
    """(name of the signal, per class its per-image values in class order): the fit files'
    `substructure_chi_refit` when `fit_files` are given (one per class file), else the class
    files' `substructure_chi`."""
    chi = substructure_chi_by_class(class_files)
    if not fit_files:
        return "substructure_chi", chi
    refit = dict(read_substructure_chi_refit(path) for path in fit_files)
    for name, values in chi.items():
        if name not in refit:
            raise DataError(f"no fit file of class {name!r} among {list(map(str, fit_files))}")
        if len(refit[name]) != len(values):
            raise DataError(
                f"the fit file of {name!r} has {len(refit[name])} images, its class file "
                f"{len(values)}"
            )
    return "substructure_chi_refit", {name: refit[name] for name in chi}


def accuracy_vs_signal(prediction_csvs, class_files, n_bins: int = 5, fit_files=None) -> dict:
    """Recall of each class with substructure, per bin of the per-image substructure signal
    (`signal_by_class`: `substructure_chi_refit` from `fit_files` when given).

    Bins are quantiles of that class's test-set chi (the same for every model). Returns
    {class: {"signal" (its name), "edges", "centres" (median chi per bin), "counts", "recall"
    (runs, bins)}}.
    """
    signal, chi = signal_by_class(class_files, fit_files)
    offsets, start = {}, 0  # global image index of each class's first image
    for name, values in chi.items():
        offsets[name], start = start, start + len(values)
    runs = [read_predictions(p) for p in prediction_csvs]
    names = runs[0][3]
    out = {}
    for k, name in enumerate(names):
        if name not in chi or not np.any(chi[name] > 0):
            continue
        index, labels = runs[0][0], runs[0][1]
        members = index[labels == k]
        values = chi[name][members - offsets[name]]
        edges = np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1)))
        which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        recall = []
        for run_index, run_labels, probs, _ in runs:
            correct = probs.argmax(axis=1)[run_labels == k] == k
            if not np.array_equal(run_index[run_labels == k], members):
                raise ValueError("prediction files were not made on the same test images")
            recall.append([correct[which == b].mean() for b in range(len(edges) - 1)])
        out[name] = {
            "signal": signal,
            "edges": edges,
            "centres": np.array([np.median(values[which == b]) for b in range(len(edges) - 1)]),
            "counts": np.bincount(which, minlength=len(edges) - 1),
            "recall": np.array(recall),
        }
    return out
