"""The results summary: per-model statistics over seeds, the comparison plan, the ablation grid."""

import csv
import json
import zlib

import numpy as np
import pytest
from darklens import CLASS_NAMES
from darklens.evaluation.comparisons import control_intervals, load_controls, load_runs
from darklens.evaluation.metrics import classification_metrics
from darklens.io.tables import write_metrics, write_predictions
from darklens.reporting.summary import (
    comparison_lines,
    stopping_lines,
    summarize,
    training_description,
)

SPECS = {
    "baseline": {"architecture": "plain_cnn", "channels": ["image"], "augment_flips": False},
    "physics": {
        "architecture": "physics_cnn",
        "channels": ["image", "residual"],
        "augment_flips": True,
    },
    "baseline_residual": {
        "architecture": "plain_cnn",
        "channels": ["image", "residual"],
        "augment_flips": False,
    },
    "physics_image": {"architecture": "physics_cnn", "channels": ["image"], "augment_flips": True},
    "resnet18": {"architecture": "resnet18", "channels": ["image"], "augment_flips": True},
}
EVALUATION = {"comparison": ["physics", "baseline"], "bootstrap_samples": 300, "confidence": 0.95}


def write_run(root, model, seed, skill, n=60):
    """A fake run directory: predictions.csv and metrics.json of a classifier of given skill."""
    rng = np.random.default_rng([zlib.crc32(model.encode()), seed])
    labels = np.arange(n) % 3
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), labels] += skill
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    run = root / "runs" / model / f"seed_{seed}"
    run.mkdir(parents=True)
    with open(run / "predictions.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "label", "label_name", *[f"prob_{c}" for c in CLASS_NAMES]])
        for i in range(n):
            writer.writerow([100 + i, labels[i], CLASS_NAMES[labels[i]], *probs[i]])
    metrics = classification_metrics(labels, probs, CLASS_NAMES)
    metrics.update(n_parameters=1000, best_epoch=seed + 1)
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run / "predictions.csv", metrics


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    root = tmp_path_factory.mktemp("summary")
    skills = {"baseline": 0.5, "physics": 3.0, "baseline_residual": 0.5, "physics_image": 3.0}
    skills["resnet18"] = 1.0
    paths, metrics = [], {}
    for model, skill in skills.items():
        for seed in (0, 1, 2):
            path, m = write_run(root, model, seed, skill)
            paths.append(path)
            metrics[(model, seed)] = m
    outputs = {k: root / f"out.{k}" for k in ("csv", "comparisons", "md", "html")}
    comparisons = summarize(paths, SPECS, EVALUATION, 5, outputs, "Toy runs.")
    return root, outputs, comparisons, metrics, paths


def read(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_model_rows_are_mean_and_sample_std_over_seeds(summary):
    _, outputs, _, metrics, _ = summary
    rows = {r["model"]: r for r in read(outputs["csv"])}
    assert list(rows) == list(SPECS)
    for model, row in rows.items():
        for key in ("accuracy", "auc_macro_ovr", "auc_cdm", "cdm_to_axion", "recall_axion"):
            values = [metrics[(model, s)][key] for s in (0, 1, 2)]
            assert float(row[f"{key}_mean"]) == pytest.approx(np.mean(values))
            assert float(row[f"{key}_std"]) == pytest.approx(np.std(values, ddof=1))
        assert row["n_seeds"] == "3" and row["seeds"] == "0 1 2"


def test_comparisons_find_the_better_model_and_not_the_equal_one(summary):
    _, outputs, comparisons, _, _ = summary
    by = {(c.model, c.reference, c.metric): (k, c) for k, c in comparisons}
    kind, headline = by[("physics", "baseline", "auc_macro_ovr")]
    assert kind == "headline" and comparisons[0][0] == "headline"
    assert headline.effect > 0.2 and headline.ci_low > 0 and headline.p_bootstrap < 0.01
    assert headline.n_seeds == 3 and headline.seeds_better == 3
    kind, residual = by[("physics", "physics_image", "auc_macro_ovr")]
    assert kind == "channel effect" and residual.ci_low < 0 < residual.ci_high
    assert by[("physics_image", "baseline", "accuracy")][0] == "architecture effect"
    assert by[("resnet18", "baseline", "accuracy")][0] == "architecture effect"  # same column
    assert len(read(outputs["comparisons"])) == len(comparisons)


def test_markdown_has_the_verdict_tables_and_numbers(summary):
    _, outputs, comparisons, _, _ = summary
    text = outputs["md"].read_text()
    assert text.splitlines()[0] == "# darklens results summary"
    assert "Test set: 60 images (20 no_sub, 20 cdm, 20 axion)" in text
    assert "Headline: **physics beats baseline** in macro AUC" in text
    assert "bootstrap's (p ≤ 0.0066)" in text  # the floor 2 / (300 + 1) of 300 replicates
    # judged by the larger p: the t-test's, 3 seeds giving at best about 0.01 here
    headline = next(c for k, c in comparisons if k == "headline" and c.metric == "auc_macro_ovr")
    assert headline.p_source == "seed t-test" and headline.p_value == headline.p_seed_t_test
    assert f"p = {headline.p_value:.3f}, the larger of the crossed bootstrap's" in text
    assert "over 3 seeds" in text and ": the t-test's;" in text
    for heading in ("## Models", "## Ablation", "## Paired comparisons"):
        assert heading in text
    tables = [line for line in text.splitlines() if line.startswith("|")]
    assert all(line.count("|") == tables[0].count("|") for line in tables[:7])  # models table
    assert "| plain_cnn | baseline:" in text and "| physics_cnn + flips | physics_image:" in text
    html = outputs["html"].read_text()
    assert "<table>" in html and "<b>physics beats baseline</b>" in html and "http" not in html


def test_summary_is_deterministic(summary, tmp_path):
    _, outputs, _, _, paths = summary
    again = {k: tmp_path / f"out.{k}" for k in outputs}
    summarize(paths, SPECS, EVALUATION, 5, again, "Toy runs.")
    for key in outputs:
        assert again[key].read_text() == outputs[key].read_text()


def test_runs_on_different_test_images_cannot_be_paired(tmp_path):
    a, _ = write_run(tmp_path, "baseline", 0, 1.0)
    b, _ = write_run(tmp_path, "physics", 0, 1.0, n=45)
    outputs = {k: tmp_path / f"out.{k}" for k in ("csv", "comparisons", "md", "html")}
    with pytest.raises(ValueError, match="same test images"):
        summarize([a, b], SPECS, EVALUATION, 5, outputs)


def test_headline_models_must_be_configured(summary, tmp_path):
    _, _, _, _, paths = summary
    outputs = {k: tmp_path / f"out.{k}" for k in ("csv", "comparisons", "md", "html")}
    evaluation = {**EVALUATION, "comparison": ["vit", "baseline"]}
    with pytest.raises(ValueError, match="'vit'"):
        summarize(paths, SPECS, evaluation, 5, outputs)


def test_log_lines_and_training_sentence(summary):
    _, _, comparisons, _, _ = summary
    lines = comparison_lines(comparisons)
    assert len(lines) == len(comparisons)
    assert lines[0].startswith("headline: physics - baseline ")
    assert training_description(30).startswith("Training: at most 30 epochs with early stopping")
    assert training_description(0) == ""


def write_control(root, name, skill, n=60):
    """A fake control: controls/{name}/predictions.csv and metrics.json, as the control writes."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    labels = np.arange(n) % 3
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), labels] += skill
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = root / "controls" / name
    out.mkdir(parents=True)
    write_predictions(out / "predictions.csv", 100 + np.arange(n), labels, probs, CLASS_NAMES)
    metrics = classification_metrics(labels, probs, CLASS_NAMES)
    write_metrics(out / "metrics.json", {**metrics, "seed": None, "best_epoch": None})
    return out / "predictions.csv"


def test_shortcut_controls_block_beside_the_reference_cnn(summary, tmp_path):
    _, outputs, _, _, paths = summary
    controls = [write_control(tmp_path, "radial_profile", 0.0)]
    controls.append(write_control(tmp_path, "nuisance", 4.0))
    controls.append(write_control(tmp_path, "fit_chi2", 2.0))
    again = {k: tmp_path / f"ctl.{k}" for k in outputs}
    summarize(paths, SPECS, EVALUATION, 5, again, "Toy runs.", controls)
    text = again["md"].read_text()
    assert "## Shortcut controls" in text and "Shortcut controls" not in outputs["md"].read_text()
    assert "| baseline (CNN) | image | 3 seeds |" in text
    assert "| physics (CNN) | image + residual | 3 seeds |" in text  # the headline model's row
    assert "| baseline − control, macro AUC [CI] | physics − control, macro AUC [CI] |" in text
    assert "`radial_profile`: near chance (macro AUC " in text
    assert "`nuisance`: **above chance** (macro AUC " in text
    assert "<b>above chance</b>" in again["html"].read_text()
    assert "`fit_chi2` (the chi² test of the smooth-lens fit" in text
    assert "; the headline model minus this test: " in text
    for key in ("csv", "comparisons"):  # the CNNs' tables are unchanged by controls
        assert again[key].read_text() == outputs[key].read_text()
    assert text.index("## Models") < text.index("## Shortcut controls") < text.index("## Ablation")


def test_control_intervals_bracket_the_metrics(summary, tmp_path):
    _, _, _, metrics, paths = summary
    controls = load_controls([write_control(tmp_path, "nuisance", 1.0)])
    rows = control_intervals(controls, load_runs(paths), "baseline", 300, 0.95, 5)
    assert [(r["name"], r["kind"], r["n_runs"]) for r in rows] == [
        ("baseline", "CNN", 3),
        ("nuisance", "control", 1),
    ]
    cnn_auc = np.mean([metrics[("baseline", s)]["auc_macro_ovr"] for s in (0, 1, 2)])
    assert rows[0]["auc_macro_ovr"] == pytest.approx(cnn_auc)
    control = controls["nuisance"]
    assert control.seed is None
    for key in ("auc_macro_ovr", *[f"auc_{c}" for c in CLASS_NAMES]):
        assert rows[1][key] == pytest.approx(control.metrics[key])
        for row in rows:
            assert row[f"{key}_low"] <= row[key] <= row[f"{key}_high"]
    assert rows[1]["difference"] == pytest.approx(cnn_auc - rows[1]["auc_macro_ovr"])
    assert rows[1]["difference_low"] <= rows[1]["difference"] <= rows[1]["difference_high"]


def test_a_control_on_other_test_images_is_refused(summary, tmp_path):
    _, outputs, _, _, paths = summary
    control = write_control(tmp_path, "radial_profile", 0.0, n=45)
    again = {k: tmp_path / f"ctl.{k}" for k in outputs}
    with pytest.raises(ValueError, match="same test images"):
        summarize(paths, SPECS, EVALUATION, 5, again, "", [control])


def test_stopping_lines_warn_about_seeds_that_reached_max_epochs():
    rows = [
        {"model": "baseline", "n_seeds": 5, "n_max_epochs": 0},
        {"model": "physics", "n_seeds": 5, "n_max_epochs": 2},
    ]
    lines = stopping_lines(rows)
    assert len(lines) == 2 and "lowest validation loss" in lines[0]
    assert "physics (2 of 5)" in lines[1] and "baseline" not in lines[1]
    assert "max_epochs" in lines[1]
    assert len(stopping_lines(rows[:1])) == 1  # nobody hit the maximum: no warning


def test_summary_shows_where_runs_stopped(tmp_path):
    paths = []
    for model in ("baseline", "physics"):
        for seed in (0, 1):
            path, metrics = write_run(tmp_path, model, seed, 2.0)
            hit = model == "physics" and seed == 1
            metrics.update(
                stop_reason="max_epochs" if hit else "early_stopping",
                epochs_run=60 if hit else 30,
                best_epoch=58 if hit else 24,
            )
            (path.parent / "metrics.json").write_text(json.dumps(metrics))
            paths.append(path)
    outputs = {k: tmp_path / f"out.{k}" for k in ("csv", "comparisons", "md", "html")}
    specs = {m: SPECS[m] for m in ("baseline", "physics")}
    summarize(paths, specs, EVALUATION, 5, outputs)
    text = outputs["md"].read_text()
    assert "| stopped at max_epochs |" in text
    assert "| 24.0 ± 0.0 | 30.0 ± 0.0 | 0/2 |" in text  # baseline: best epoch, epochs run
    assert "| 41.0 ± 24.0 | 45.0 ± 21.2 | 1/2 |" in text  # physics
    assert "seeds stopped at max_epochs before early stopping**: physics (1 of 2);" in text
    rows = {r["model"]: r for r in read(outputs["csv"])}
    assert rows["physics"]["n_max_epochs"] == "1" and rows["baseline"]["n_max_epochs"] == "0"


def test_oracle_recovery_paragraph_follows_the_headline(summary, tmp_path):
    _, outputs, _, _, paths = summary
    again = {k: tmp_path / f"oracle.{k}" for k in outputs}
    summarize(paths, SPECS, {**EVALUATION, "oracle": "physics"}, 5, again, "Toy runs.")
    text = again["md"].read_text()
    assert "Oracle recovery: physics gains" in text
    assert "**physics recovers 1.00 [1.00, 1.00] of the oracle's gain**" in text  # itself
    assert "Oracle recovery" not in outputs["md"].read_text()
