"""evaluation.comparisons: runs read back, means over seeds, the ablation grid and the plan."""

import json

import numpy as np
import pytest
from darklens import CLASS_NAMES
from darklens.evaluation.comparisons import (
    Run,
    ablation_grid,
    compare,
    comparison_plan,
    load_runs,
    mean_std,
    model_rows,
)
from darklens.evaluation.metrics import classification_metrics
from darklens.io.class_files import DataError
from test_summary import SPECS, write_run


def test_load_runs_keys_runs_by_model_and_seed(tmp_path):
    path, metrics = write_run(tmp_path, "physics", 4, 2.0, n=9)
    runs = load_runs([path])
    run = runs[("physics", 4)]
    assert run.index.tolist() == list(range(100, 109))
    assert run.labels.tolist() == [0, 1, 2] * 3 and run.probs.shape == (9, 3)
    assert run.metrics["accuracy"] == metrics["accuracy"]
    rows = model_rows(runs, SPECS)
    assert [r["model"] for r in rows] == ["physics"]
    assert rows[0]["accuracy_mean"] == metrics["accuracy"] and np.isnan(rows[0]["accuracy_std"])
    (path.parent / "metrics.json").unlink()
    with pytest.raises(DataError, match="metrics.json: metrics file not found"):
        load_runs([path])


def test_ablation_grid_and_plan_from_specs():
    grid, columns = ablation_grid(SPECS)
    assert columns == ["image", "image + residual"]
    assert grid["plain_cnn"] == {"image": "baseline", "image + residual": "baseline_residual"}
    assert grid["physics_cnn + flips"] == {"image": "physics_image", "image + residual": "physics"}
    assert grid["resnet18 + flips"] == {"image": "resnet18"}
    plan = comparison_plan(SPECS, ("physics", "baseline"))
    assert plan[0] == ("headline", "physics", "baseline")
    pairs = [(a, b) for _, a, b in plan]
    assert len(pairs) == len(set(pairs))
    assert ("baseline_residual", "baseline") in pairs and ("physics", "physics_image") in pairs
    assert ("physics", "baseline_residual") in pairs and ("resnet18", "baseline") in pairs


def test_every_lens_model_channel_set_is_a_column_compared_with_its_rows_image_model():
    specs = {
        "baseline": {"architecture": "plain_cnn", "channels": ["image"]},
        "physics": {"architecture": "plain_cnn", "channels": ["image", "fit_residual"]},
        "oracle": {"architecture": "plain_cnn", "channels": ["image", "oracle_residual"]},
        "fit_only": {"architecture": "plain_cnn", "channels": ["fit_residual"]},
        "odd": {"architecture": "plain_cnn", "channels": ["source_residual"]},
    }
    grid, columns = ablation_grid(specs)
    assert columns == [
        "image",
        "image + fit_residual",
        "fit_residual",
        "image + oracle_residual (upper bound)",
    ]
    plan = comparison_plan(specs, ("physics", "baseline"))
    kinds = {(a, b): kind for kind, a, b in plan}
    assert kinds[("physics", "baseline")] == "headline"
    assert kinds[("oracle", "baseline")] == kinds[("fit_only", "baseline")] == "channel effect"
    assert kinds[("odd", "baseline")] == "vs reference"


def test_mean_std_ignores_undefined_values():
    assert mean_std([0.5, None, 0.7]) == (
        pytest.approx(0.6),
        pytest.approx(np.std([0.5, 0.7], ddof=1)),
    )
    mean, std = mean_std([0.5])
    assert mean == 0.5 and np.isnan(std)
    assert all(np.isnan(mean_std([None, None])))


def fake_run(model, seed, labels, probs):
    metrics = classification_metrics(labels, probs, CLASS_NAMES)
    return Run(model, seed, np.arange(len(labels)), labels, probs, list(CLASS_NAMES), metrics)


def noisy_probs(labels, skill, rng):
    logits = rng.normal(size=(len(labels), 3))
    logits[np.arange(len(labels)), labels] += skill
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def accuracy_comparison(runs):
    out = compare(runs, [("headline", "a", "b")], n_bootstrap=2000, confidence=0.95, seed=3)
    return next(c for _, c in out if c.metric == "accuracy")


def test_the_seed_t_test_decides_when_the_seeds_disagree():
    """Big test set, A better on every seed but by very different margins: the bootstrap is
    sure (every replicate favours A), the t-test over 3 seeds is not; p is the t-test's."""
    labels = np.arange(900) % 3
    rng = np.random.default_rng(0)
    runs = {}
    for seed, skill in enumerate([3.0, 1.3, 3.0]):
        runs[("a", seed)] = fake_run("a", seed, labels, noisy_probs(labels, skill, rng))
        runs[("b", seed)] = fake_run("b", seed, labels, noisy_probs(labels, 1.0, rng))
    c = accuracy_comparison(runs)
    assert c.p_seed_t_test > 0.05 > c.p_bootstrap
    assert (c.p_value, c.p_source) == (c.p_seed_t_test, "seed t-test")


def test_the_bootstrap_decides_when_few_test_images_carry_the_effect():
    """On every seed A fixes 2 or 3 of B's errors, the same test images: steady over seeds
    (small t-test p), but carried by 3 of 60 test images (large bootstrap p); p is the
    bootstrap's."""
    labels = np.arange(60) % 3
    rng = np.random.default_rng(1)
    runs = {}
    for seed, n_fixed in enumerate([2, 3, 2]):
        probs_b = noisy_probs(labels, 0.5, rng)
        probs_b[:3] = 0.1
        probs_b[np.arange(3), (labels[:3] + 1) % 3] = 0.8  # B is wrong on images 0, 1 and 2
        probs_a = probs_b.copy()
        wrong = np.arange(n_fixed)
        probs_a[wrong] = 0.1
        probs_a[wrong, labels[wrong]] = 0.8
        runs[("a", seed)] = fake_run("a", seed, labels, probs_a)
        runs[("b", seed)] = fake_run("b", seed, labels, probs_b)
    c = accuracy_comparison(runs)
    assert c.p_bootstrap > 0.05 > c.p_seed_t_test
    assert (c.p_value, c.p_source) == (c.p_bootstrap, "bootstrap")
    assert c.effect == pytest.approx(7 / 180)


def test_model_rows_count_the_seeds_that_stopped_at_max_epochs(tmp_path):
    paths = []
    for seed, (reason, epochs) in enumerate([("early_stopping", 20), ("max_epochs", 60)]):
        path, metrics = write_run(tmp_path, "physics", seed, 2.0, n=9)
        metrics.update(stop_reason=reason, epochs_run=epochs, best_epoch=epochs - 6)
        (path.parent / "metrics.json").write_text(json.dumps(metrics))
        paths.append(path)
    path, _ = write_run(tmp_path, "baseline", 0, 2.0, n=9)  # an older run: no stop_reason
    rows = {r["model"]: r for r in model_rows(load_runs([*paths, path]), SPECS)}
    assert rows["physics"]["n_max_epochs"] == 1 and rows["baseline"]["n_max_epochs"] == 0
    assert rows["physics"]["epochs_run_mean"] == 40 and rows["physics"]["best_epoch_mean"] == 34
