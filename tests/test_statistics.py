"""Paired comparisons: the crossed bootstrap over test images and seeds, and the seed t-test."""

import numpy as np
import pytest
from darklens import CLASS_NAMES
from darklens.evaluation.metrics import classification_metrics
from darklens.evaluation.statistics import (
    bootstrap_draws,
    conservative_p,
    paired_bootstrap,
    replicate_metrics,
    seed_positions,
    seed_t_test,
)
from scipy.stats import ttest_rel
from sklearn.metrics import accuracy_score, roc_auc_score
from test_metrics import P, Y


def predictions(n: int, skill: float, seed: int):
    """Labels and probabilities of a 3-class classifier whose true-class logit gets `skill`."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), labels] += skill
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, probs


def compare(skill_a, skill_b, n=300, seeds=(0, 1, 2), n_bootstrap=1000, metric="accuracy"):
    images, uniforms = bootstrap_draws(n, len(seeds), n_bootstrap, seed=11)
    draws = seed_positions(uniforms, len(seeds))
    per_a, per_b, rep_a, rep_b = [], [], [], []
    for s in seeds:
        labels, pa = predictions(n, skill_a, 100 + s)
        _, pb = predictions(n, skill_b, 200 + s)
        full = np.arange(n)[None]
        per_a.append(replicate_metrics(labels, pa, full)[metric][0])
        per_b.append(replicate_metrics(labels, pb, full)[metric][0])
        rep_a.append(replicate_metrics(labels, pa, images)[metric])
        rep_b.append(replicate_metrics(labels, pb, images)[metric])
    return paired_bootstrap(per_a, per_b, np.stack(rep_a), np.stack(rep_b), draws)


def test_a_model_against_itself_has_no_effect_and_p_one():
    labels, probs = predictions(90, 1.0, 0)
    images, uniforms = bootstrap_draws(90, 3, 500, seed=1)
    rep = np.stack([replicate_metrics(labels, probs, images)["auc_macro_ovr"]] * 3)
    effect, low, high, p = paired_bootstrap(
        [0.8] * 3, [0.8] * 3, rep, rep, seed_positions(uniforms, 3)
    )
    assert (effect, low, high, p) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("metric", ["accuracy", "auc_macro_ovr"])
def test_a_much_better_model_is_significant(metric):
    effect, low, high, p = compare(3.0, 0.5, metric=metric)
    assert effect > 0.1 and 0 < low <= effect <= high
    assert p < 0.01
    effect, low, high, p = compare(0.5, 3.0, metric=metric)  # and the other way round
    assert effect < -0.1 and low <= effect <= high < 0 and p < 0.01


def test_equal_skill_is_not_significant_and_the_interval_covers_zero():
    effect, low, high, p = compare(1.0, 1.0)
    assert low < 0 < high
    assert p > 0.05


def test_bootstrap_is_deterministic():
    assert compare(1.5, 1.0) == compare(1.5, 1.0)
    a = bootstrap_draws(50, 3, 10, seed=5)
    b = bootstrap_draws(50, 3, 10, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    positions = seed_positions(a[1], 2)
    assert positions.min() >= 0 and positions.max() <= 1


def test_seed_t_test_is_scipy_paired_t_test():
    a, b = [0.9, 0.85, 0.88], [0.8, 0.82, 0.86]
    assert seed_t_test(a, b) == pytest.approx(ttest_rel(a, b).pvalue)
    assert seed_t_test([0.9], [0.8]) is None  # one seed: undefined
    assert seed_t_test([0.9, 0.8], [0.8, 0.7]) is None  # constant difference: undefined


def test_bootstrap_replicate_metrics_match_scikit_learn():
    rng = np.random.default_rng(3)
    index = np.vstack([np.arange(10), rng.integers(0, 10, size=(20, 10))])
    out = replicate_metrics(Y, P, index)
    for row, idx in enumerate(index):
        y, p = Y[idx], P[idx]
        assert out["accuracy"][row] == pytest.approx(accuracy_score(y, p.argmax(axis=1)))
        present = [k for k in range(3) if 0 < np.sum(y == k) < len(y)]
        expected = np.mean([roc_auc_score(y == k, p[:, k]) for k in present])
        assert out["auc_macro_ovr"][row] == pytest.approx(expected)
    first = classification_metrics(Y, P, CLASS_NAMES)
    assert out["auc_macro_ovr"][0] == pytest.approx(first["auc_macro_ovr"])


def test_conservative_p_is_the_larger_and_names_it():
    assert conservative_p(0.001, 0.04) == (0.04, "seed t-test")
    assert conservative_p(0.2, 0.03) == (0.2, "bootstrap")
    assert conservative_p(0.05, 0.05) == (0.05, "bootstrap")  # a tie is the bootstrap's
    assert conservative_p(0.01, None) == (0.01, "bootstrap")  # no t-test (one seed)
    p, source = conservative_p(float("nan"), 0.3)
    assert np.isnan(p) and source == "bootstrap"  # undefined stays undefined
