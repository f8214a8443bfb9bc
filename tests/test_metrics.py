import json

import numpy as np
import pytest
from darklens import CLASS_NAMES
from darklens.evaluation.metrics import classification_metrics
from sklearn.metrics import accuracy_score, confusion_matrix, recall_score, roc_auc_score

# Hand-made predictions: 10 images, 3 classes, with tied scores and cdm <-> axion mistakes.
Y = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
P = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.6, 0.3, 0.1],
        [0.3, 0.3, 0.4],  # no_sub predicted axion
        [0.1, 0.7, 0.2],
        [0.2, 0.5, 0.3],
        [0.1, 0.3, 0.6],  # cdm predicted axion
        [0.3, 0.4, 0.3],
        [0.1, 0.3, 0.6],
        [0.2, 0.5, 0.3],  # axion predicted cdm
        [0.1, 0.1, 0.8],
    ]
)


def test_matches_scikit_learn():
    m = classification_metrics(Y, P, CLASS_NAMES)
    pred = P.argmax(axis=1)
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(accuracy_score(Y, pred))
    assert m["auc_macro_ovr"] == pytest.approx(roc_auc_score(Y, P, multi_class="ovr"))
    for i, name in enumerate(CLASS_NAMES):
        assert m[f"auc_{name}"] == pytest.approx(roc_auc_score(Y == i, P[:, i]))
    recalls = recall_score(Y, pred, average=None)
    for i, name in enumerate(CLASS_NAMES):
        assert m[f"recall_{name}"] == pytest.approx(recalls[i])
    cm = confusion_matrix(Y, pred, labels=[0, 1, 2])
    assert m["confusion_matrix"] == cm.tolist()
    assert m["cdm_to_axion"] == pytest.approx(cm[1, 2] / cm[1].sum())
    assert m["axion_to_cdm"] == pytest.approx(cm[2, 1] / cm[2].sum())
    assert m["auc_undefined_classes"] == []
    json.dumps(m, allow_nan=False)


def test_ties_count_one_half():
    m = classification_metrics(np.array([0, 1]), np.array([[0.5, 0.5], [0.5, 0.5]]), ["a", "b"])
    assert m["auc_a"] == 0.5 and m["auc_b"] == 0.5


def test_missing_class_gives_none_not_nan():
    keep = Y != 1  # no true cdm
    y, p = Y[keep], P[keep]
    m = classification_metrics(y, p, CLASS_NAMES)
    assert m["auc_cdm"] is None and m["recall_cdm"] is None and m["cdm_to_axion"] is None
    assert m["auc_undefined_classes"] == ["cdm"]
    expected = np.mean([roc_auc_score(y == 0, p[:, 0]), roc_auc_score(y == 2, p[:, 2])])
    assert m["auc_macro_ovr"] == pytest.approx(expected)
    cm = confusion_matrix(y, p.argmax(axis=1), labels=[0, 1, 2])
    assert m["confusion_matrix"] == cm.tolist()
    json.dumps(m, allow_nan=False)


def test_single_class_has_no_auc():
    m = classification_metrics(np.zeros(3, dtype=int), P[:3], CLASS_NAMES)
    assert m["auc_macro_ovr"] is None
    assert m["auc_undefined_classes"] == list(CLASS_NAMES)
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        (Y[:5], P, "probs"),
        (Y + 1, P, "labels"),
        (Y, np.where(np.eye(10, 3, dtype=bool), np.nan, P), "NaN"),
        (Y[:0], P[:0], "no samples"),
    ],
)
def test_bad_input_raises(y, p, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(y, p, CLASS_NAMES)


def test_roc_curve_matches_scikit_learn():
    from darklens.evaluation.metrics import roc_curve
    from sklearn.metrics import roc_curve as sk_roc_curve

    for k in range(3):
        fpr, tpr = roc_curve(Y == k, P[:, k])  # P has tied scores
        sk_fpr, sk_tpr, _ = sk_roc_curve(Y == k, P[:, k], drop_intermediate=False)
        np.testing.assert_allclose(fpr, sk_fpr)
        np.testing.assert_allclose(tpr, sk_tpr)
