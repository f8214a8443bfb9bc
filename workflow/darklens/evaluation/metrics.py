"""Test-set classification metrics, as a JSON-ready dict.

AUCs are one-vs-rest ROC AUCs computed as the Mann-Whitney U statistic (average ranks, so tied
scores count one half), which equals scikit-learn's `roc_auc_score` on each binary problem.

Undefined values are `None`, never NaN (NaN is not valid JSON):
- `auc_<class>` is None when the class has no positive or no negative sample in y_true; such classes
  are left out of `auc_macro_ovr` (the mean over the remaining classes) and listed in
  `auc_undefined_classes`; `auc_macro_ovr` is None when no class is defined.
- `recall_<class>` is None when the class is absent from y_true.
- `cdm_to_axion` / `axion_to_cdm` are None when there is no true cdm / axion image, or when the
  class names lack "cdm" or "axion".
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def binary_auc(is_positive: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of `scores` for the boolean labels `is_positive`; None if one side is empty."""
    n_pos = int(is_positive.sum())
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)  # average ranks for ties
    u = ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def classification_metrics(y_true, probs, class_names) -> dict:
    """Metrics of class probabilities `probs` (N, K) against integer labels `y_true` (N,).

    Predictions are `argmax(probs)`. Keys: n, accuracy, auc_macro_ovr, auc_<class>,
    auc_undefined_classes, recall_<class>, confusion_matrix (K x K counts, rows = true class,
    columns = predicted class), cdm_to_axion, axion_to_cdm, class_names.
    """
    class_names = list(class_names)
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    k = len(class_names)
    if y_true.ndim != 1 or probs.shape != (y_true.size, k):
        raise ValueError(
            f"need y_true (N,) and probs (N, {k}); got {y_true.shape} and {probs.shape}"
        )
    if y_true.size == 0:
        raise ValueError("no samples to score")
    if not np.issubdtype(y_true.dtype, np.integer) or y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(f"y_true must hold integer labels in [0, {k - 1}]")
    if not np.isfinite(probs).all():
        raise ValueError("probs contain NaN or inf")

    pred = probs.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, pred), 1)
    support = confusion.sum(axis=1)

    out: dict = {"n": int(y_true.size), "accuracy": float(np.trace(confusion) / y_true.size)}
    aucs = {name: binary_auc(y_true == i, probs[:, i]) for i, name in enumerate(class_names)}
    defined = [a for a in aucs.values() if a is not None]
    out["auc_macro_ovr"] = float(np.mean(defined)) if defined else None
    out["auc_undefined_classes"] = [name for name, a in aucs.items() if a is None]
    for name, auc in aucs.items():
        out[f"auc_{name}"] = auc
    for i, name in enumerate(class_names):
        out[f"recall_{name}"] = float(confusion[i, i] / support[i]) if support[i] else None
    out["confusion_matrix"] = confusion.tolist()
    out["cdm_to_axion"] = _confusion_rate(confusion, class_names, "cdm", "axion")
    out["axion_to_cdm"] = _confusion_rate(confusion, class_names, "axion", "cdm")
    out["class_names"] = class_names
    return out


def _confusion_rate(confusion: np.ndarray, class_names: list[str], true: str, predicted: str):
    """Fraction of images of class `true` predicted as `predicted`, or None if undefined."""
    if true not in class_names or predicted not in class_names:
        return None
    i, j = class_names.index(true), class_names.index(predicted)
    total = confusion[i].sum()
    return float(confusion[i, j] / total) if total else None


def roc_curve(is_positive, scores) -> tuple[np.ndarray, np.ndarray]:
    """ROC curve (false positive rate, true positive rate), one point per distinct score from the
    highest down, starting at (0, 0); as scikit-learn's `roc_curve(drop_intermediate=False)`."""
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(is_positive.sum())
    n_neg = is_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("a ROC curve needs both positive and negative samples")
    order = np.argsort(-scores, kind="mergesort")
    scores, is_positive = scores[order], is_positive[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tp = np.cumsum(is_positive)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    return np.r_[0.0, fp / n_neg], np.r_[0.0, tp / n_pos]
