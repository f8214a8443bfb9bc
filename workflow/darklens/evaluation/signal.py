"""Accuracy against the per-image substructure signal: the recall of each class with substructure,
per quantile bin of its test images' `substructure_chi` (noise-weighted; 1 = the noise level)."""

from __future__ import annotations

import numpy as np

from darklens.io.class_files import read_class_name, read_params
from darklens.io.tables import read_predictions


def substructure_chi_by_class(class_files) -> dict[str, np.ndarray]:
    """Per class, the per-image substructure signal `params/substructure_chi` (class order)."""
    return {
        read_class_name(path): read_params(path, ["substructure_chi"])["substructure_chi"]
        for path in class_files
    }


def accuracy_vs_signal(prediction_csvs, class_files, n_bins: int = 5) -> dict:
    """Recall of each class with substructure, per bin of the per-image substructure signal.

    Bins are quantiles of that class's test-set chi (the same for every model). Returns
    {class: {"edges", "centres" (median chi per bin), "counts", "recall" (runs, bins)}}.
    """
    chi = substructure_chi_by_class(class_files)
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
            "edges": edges,
            "centres": np.array([np.median(values[which == b]) for b in range(len(edges) - 1)]),
            "counts": np.bincount(which, minlength=len(edges) - 1),
            "recall": np.array(recall),
        }
    return out
