"""How much of an upper bound's gain a model recovers: the oracle-recovery fraction.

An oracle model sees information that real data does not have (the `oracle_residual` channel: the
image minus the TRUE smooth lens model). Its gain over a reference model is what that information
can buy; a model that sees a fitted version of it recovers the fraction

    f = (metric(model) - metric(reference)) / (metric(oracle) - metric(reference)),

each term the mean over the seeds the three models share, on the full test set. f = 1: the fitted
model is as good as the truth; f = 0: the channel bought nothing; f < 0: it hurt.

The interval is the crossed paired bootstrap of `statistics.paired_bootstrap` applied to the ratio:
each replicate draws the test images with replacement (the same draw for the three models) and the
seeds with replacement, and recomputes f. It is reported only when the oracle's gain is clearly
positive (its own interval above zero); otherwise the ratio is undefined and said so.
"""

from __future__ import annotations

import numpy as np

from darklens.evaluation.statistics import bootstrap_draws, replicate_metrics, seed_positions


def oracle_recovery(
    runs: dict,
    model: str,
    reference: str,
    oracle: str,
    metric: str = "auc_macro_ovr",
    n_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict | None:
    """The recovery fraction of `model` between `reference` and `oracle`.

    runs: {(model, seed): comparisons.Run}. Returns None when one of the three has no run on a
    shared seed, else {"model", "reference", "oracle", "metric", "n_seeds", "gain_model",
    "gain_oracle", "gain_oracle_low", "gain_oracle_high", "fraction", "fraction_low",
    "fraction_high"}; the fraction and its interval are NaN when the oracle's gain interval does
    not lie above zero.
    """
    names = (model, reference, oracle)
    seeds = sorted(set.intersection(*({s for (m, s) in runs if m == name} for name in names)))
    if not seeds:
        return None
    first = runs[(model, seeds[0])]
    for name in names:
        for s in seeds:
            run = runs[(name, s)]
            if not np.array_equal(run.index, first.index):
                raise ValueError(f"{name} seed {s} was not scored on the same test images")
    image_draws, uniforms = bootstrap_draws(len(first.labels), len(seeds), n_bootstrap, seed)
    positions = seed_positions(uniforms, len(seeds))  # (B, S)

    def per_seed(name: str) -> np.ndarray:
        return np.array([float(runs[(name, s)].metrics[metric]) for s in seeds])

    def replicates(name: str) -> np.ndarray:  # (B, S): the metric per image draw and seed
        return np.stack(
            [
                replicate_metrics(runs[(name, s)].labels, runs[(name, s)].probs, image_draws)[
                    metric
                ]
                for s in seeds
            ],
            axis=1,
        )

    ref = replicates(reference)
    gain_model = np.take_along_axis(replicates(model) - ref, positions, axis=1).mean(axis=1)
    gain_oracle = np.take_along_axis(replicates(oracle) - ref, positions, axis=1).mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    oracle_low, oracle_high = np.quantile(gain_oracle, [tail, 1.0 - tail])
    full_model = float(np.mean(per_seed(model) - per_seed(reference)))
    full_oracle = float(np.mean(per_seed(oracle) - per_seed(reference)))
    fraction = low = high = float("nan")
    if oracle_low > 0:
        fraction = full_model / full_oracle
        low, high = np.quantile(gain_model / gain_oracle, [tail, 1.0 - tail])
    return {
        "model": model,
        "reference": reference,
        "oracle": oracle,
        "metric": metric,
        "n_seeds": len(seeds),
        "gain_model": full_model,
        "gain_oracle": full_oracle,
        "gain_oracle_low": float(oracle_low),
        "gain_oracle_high": float(oracle_high),
        "fraction": float(fraction),
        "fraction_low": float(low),
        "fraction_high": float(high),
    }
