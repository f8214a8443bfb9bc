"""The oracle-recovery fraction (darklens.evaluation.recovery)."""

import math

import numpy as np
from darklens.evaluation.comparisons import Run
from darklens.evaluation.metrics import classification_metrics
from darklens.evaluation.recovery import oracle_recovery

CLASSES = ["no_sub", "cdm", "axion"]


def make_run(model, seed, labels, probs):
    metrics = classification_metrics(labels, probs, CLASSES)
    return Run(model, seed, np.arange(len(labels)), labels, probs, CLASSES, metrics)


def noisy_probs(labels, signal, rng):
    """Class probabilities whose separation grows with `signal` (0: chance)."""
    logits = rng.normal(size=(len(labels), 3)) + signal * np.eye(3)[labels]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def runs_with(signals: dict, seeds=(0, 1, 2), n=240):
    rng = np.random.default_rng(5)
    labels = np.repeat(np.arange(3), n // 3)
    return {
        (name, s): make_run(name, s, labels, noisy_probs(labels, signal, rng))
        for name, signal in signals.items()
        for s in seeds
    }


def test_a_model_equal_to_the_oracle_recovers_all_and_one_equal_to_the_reference_none():
    runs = runs_with({"baseline": 0.2, "oracle": 3.0})
    for s in (0, 1, 2):
        runs[("copy_of_oracle", s)] = runs[("oracle", s)]
        runs[("copy_of_baseline", s)] = runs[("baseline", s)]
    full = oracle_recovery(runs, "copy_of_oracle", "baseline", "oracle", n_bootstrap=300)
    none = oracle_recovery(runs, "copy_of_baseline", "baseline", "oracle", n_bootstrap=300)
    assert math.isclose(full["fraction"], 1.0) and full["fraction_low"] == full["fraction_high"]
    assert none["fraction"] == 0.0 and none["fraction_low"] == 0.0 == none["fraction_high"]
    assert full["gain_oracle_low"] > 0 and full["n_seeds"] == 3


def test_a_model_between_them_recovers_a_fraction_inside_its_interval():
    runs = runs_with({"baseline": 0.2, "physics": 1.2, "oracle": 3.0})
    result = oracle_recovery(runs, "physics", "baseline", "oracle", n_bootstrap=400)
    assert 0.1 < result["fraction"] < 0.9
    assert result["fraction_low"] < result["fraction"] < result["fraction_high"]


def test_without_an_oracle_gain_the_fraction_is_undefined_not_a_number():
    runs = runs_with({"baseline": 1.0, "physics": 1.5, "oracle": 1.0})
    result = oracle_recovery(runs, "physics", "baseline", "oracle", n_bootstrap=300)
    assert math.isnan(result["fraction"]) and math.isnan(result["fraction_low"])
    assert oracle_recovery(runs, "physics", "baseline", "missing") is None
