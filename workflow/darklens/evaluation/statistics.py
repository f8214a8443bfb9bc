"""Uncertainty of test metrics and paired comparisons of two models.

Every model is trained on the same seeds and scored on the same test images, so two models are
compared *paired*: on the same images and the same seeds. Two sources of chance move a test metric:
the finite test set (which images were drawn) and the training seed (initialisation, batch order,
flips). `paired_bootstrap` resamples both at once, crossed: each replicate draws the test images
with replacement (the same draw for both models and every seed) and the seeds with replacement,
and recomputes

    delta* = mean over drawn seeds s of [metric_A(s, drawn images) - metric_B(s, drawn images)].

The effect is delta on the full test set (mean over seeds), its confidence interval the percentile
interval of delta*, and the two-sided p-value the smallest level at which that interval excludes
zero: p = 2 min(P*(delta* <= 0), P*(delta* >= 0)), with the (count + 1) / (B + 1) correction.
`seed_t_test` is the classical alternative that ignores test-set noise: a paired t-test over seeds
of the full-test-set metrics. What neither covers: a different simulated training set.

The p-value a comparison is judged by (`Comparison.p_value`, `conservative_p`) is the LARGER of the
two. With few seeds the bootstrap's resampling of seeds underestimates the seed-to-seed spread (3
seeds give only 10 distinct seed draws), so it rejects a true null more often than its level; the
t-test keeps its level across seeds but ignores the test-set noise. Taking the larger p keeps the
level of both; which one it was is recorded (`p_source`), and both stay in the table.

Metrics here are computed for many bootstrap replicates at once (rows of an index matrix); they
equal `metrics.classification_metrics` on each replicate (AUCs are Mann-Whitney U statistics with
average ranks for ties, i.e. scikit-learn's `roc_auc_score`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata, ttest_rel

METRICS = ("accuracy", "auc_macro_ovr")


def replicate_auc(is_positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC AUC of each row of (B, n) boolean labels and scores; NaN where a row has
    no positive or no negative."""
    is_positive = np.atleast_2d(is_positive)
    ranks = rankdata(np.atleast_2d(scores), axis=1)
    n_pos = is_positive.sum(axis=1)
    n_neg = is_positive.shape[1] - n_pos
    u = (ranks * is_positive).sum(axis=1) - n_pos * (n_pos + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def replicate_metrics(labels: np.ndarray, probs: np.ndarray, index: np.ndarray) -> dict:
    """Accuracy and macro one-vs-rest AUC of predictions on each row of an index matrix.

    labels: (n,) integer labels; probs: (n, K) class probabilities; index: (B, n) integer indices
    into the n test images (a bootstrap draw per row). Returns {"accuracy": (B,),
    "auc_macro_ovr": (B,)}; the macro AUC averages the classes defined in that row.
    """
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    index = np.atleast_2d(index)
    y = labels[index]
    correct = probs.argmax(axis=1) == labels
    aucs = np.stack([replicate_auc(y == k, probs[index, k]) for k in range(probs.shape[1])], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no defined class: NaN
        macro = np.nanmean(aucs, axis=1)
    return {"accuracy": correct[index].mean(axis=1), "auc_macro_ovr": macro}


@dataclass(frozen=True)
class Comparison:
    """Paired difference `model - reference` of one metric (see the module docstring)."""

    model: str
    reference: str
    metric: str
    effect: float  # mean over seeds of metric(model) - metric(reference), full test set
    ci_low: float
    ci_high: float
    confidence: float
    p_bootstrap: float
    p_seed_t_test: float | None  # None with fewer than 2 seeds or identical differences
    p_value: float  # the larger of the two (conservative_p): the one a verdict uses
    p_source: str  # which one p_value is: "bootstrap" | "seed t-test"
    seeds_better: int  # seeds where the model beat the reference
    n_seeds: int
    n_test: int
    n_bootstrap: int

    def as_row(self) -> dict:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def seed_t_test(values_a, values_b) -> float | None:
    """Two-sided paired t-test over seeds of per-seed metrics; None if undefined."""
    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    diff = a - b
    if diff.size < 2 or np.allclose(diff, diff[0]):
        return None
    return float(ttest_rel(a, b).pvalue)


def conservative_p(p_bootstrap: float, p_seed_t_test: float | None) -> tuple[float, str]:
    """(p, source): the larger of the crossed bootstrap's p and the seed t-test's, and which one
    it was ("bootstrap" | "seed t-test"; a tie is the bootstrap's). Without a t-test p (fewer than
    2 seeds, identical per-seed differences) the bootstrap's alone; a NaN bootstrap p stays NaN."""
    if p_seed_t_test is None or not p_seed_t_test > p_bootstrap:
        return float(p_bootstrap), "bootstrap"
    return float(p_seed_t_test), "seed t-test"


def bootstrap_draws(n_test: int, max_seeds: int, n_bootstrap: int, seed: int):
    """The crossed resampling shared by every comparison: (B, n_test) image indices and
    (B, max_seeds) uniforms in [0, 1) for drawing seeds (`seed_positions`), from numpy's default
    generator seeded with `seed`."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(4,)))
    images = rng.integers(0, n_test, size=(n_bootstrap, n_test))
    uniforms = rng.random(size=(n_bootstrap, max_seeds))
    return images, uniforms


def seed_positions(uniforms: np.ndarray, n_seeds: int) -> np.ndarray:
    """(B, n_seeds) seed positions drawn with replacement from the uniforms of bootstrap_draws."""
    return np.floor(uniforms[:, :n_seeds] * n_seeds).astype(np.int64)


def paired_bootstrap(
    per_seed_a: np.ndarray,
    per_seed_b: np.ndarray,
    replicates_a: np.ndarray,
    replicates_b: np.ndarray,
    seed_draws: np.ndarray,
    confidence: float = 0.95,
) -> tuple[float, float, float, float]:
    """Effect, CI and two-sided p of a crossed paired bootstrap of one metric.

    per_seed_*: (S,) full-test-set metric per seed; replicates_*: (S, B) the metric on each
    bootstrap draw of test images; seed_draws: (B, S) drawn seed positions.
    Returns (effect, ci_low, ci_high, p).
    """
    effect = float(np.mean(np.asarray(per_seed_a) - np.asarray(per_seed_b)))
    diff = (np.asarray(replicates_a) - np.asarray(replicates_b)).T  # (B, S)
    delta = np.take_along_axis(diff, seed_draws, axis=1).mean(axis=1)
    delta = delta[np.isfinite(delta)]
    if delta.size == 0:
        return effect, float("nan"), float("nan"), float("nan")
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(delta, [tail, 1.0 - tail])
    n = delta.size
    p = 2.0 * min((np.sum(delta <= 0) + 1) / (n + 1), (np.sum(delta >= 0) + 1) / (n + 1))
    return effect, float(low), float(high), float(min(p, 1.0))
