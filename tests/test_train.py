import csv
import json
import math

import numpy as np
import pytest
import torch
from darklens import CLASS_NAMES
from darklens.features.channels import build_channels
from darklens.io.tables import prediction_columns
from darklens.learning.checkpoint import RESUME_FILE, load_checkpoint
from darklens.learning.predict import predict_images
from darklens.learning.train import (
    HISTORY_COLUMNS,
    TrainConfig,
    config_from_spec,
    improves,
    train,
)

SIZE = 16
SIGMA_PX = 1.5


def toy_images(n_per_class=40, seed=0):
    """16x16 noise; class 1 adds a horizontal bar, class 2 a vertical bar (random position)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label in range(3):
        for _ in range(n_per_class):
            img = rng.normal(0.0, 0.5, (SIZE, SIZE))
            pos = rng.integers(4, SIZE - 4)
            if label == 1:
                img[pos, 2:-2] += 2.0
            if label == 2:
                img[2:-2, pos] += 2.0
            images.append(img)
            labels.append(label)
    order = rng.permutation(len(labels))
    return np.asarray(images, dtype=np.float32)[order], np.asarray(labels)[order]


def toy_split(n):
    idx = np.arange(n)
    return {
        "train": idx[: n * 6 // 10],
        "val": idx[n * 6 // 10 : n * 8 // 10],
        "test": idx[n * 8 // 10 :],
    }


def config(**overrides):
    base = dict(
        architecture="plain_cnn",
        channels=["image", "residual"],
        augment_flips=True,
        max_epochs=4,
        batch_size=8,
        learning_rate=3e-3,
        seed=1,
        device="cpu",
        threads=1,
        smoothing_sigma_px=SIGMA_PX,
    )
    return TrainConfig(**{**base, **overrides})


def read_csv(path):
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return reader.fieldnames, list(reader)


@pytest.fixture(scope="module")
def toy():
    images, labels = toy_images()
    x = build_channels(images, ["image", "residual"], SIGMA_PX)
    return images, x, labels, toy_split(len(labels))


@pytest.fixture(scope="module")
def run(toy, tmp_path_factory):
    _, x, y, split = toy
    out = tmp_path_factory.mktemp("run")
    lines = []
    metrics = train(x, y, split, config(), out, log=lines.append)
    return out, metrics, lines


def test_writes_all_outputs(run, toy):
    out, metrics, lines = run
    _, x, y, split = toy
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.pt",
        "history.csv",
        "metrics.json",
        "predictions.csv",
        RESUME_FILE,
    ]
    columns, history = read_csv(out / "history.csv")
    assert columns == list(HISTORY_COLUMNS)
    assert [int(r["epoch"]) for r in history] == [1, 2, 3, 4]
    assert sum(line.startswith("epoch") for line in lines) == 4

    columns, preds = read_csv(out / "predictions.csv")
    assert columns == prediction_columns(CLASS_NAMES)
    assert columns[:3] == ["index", "label", "label_name"]
    assert [int(r["index"]) for r in preds] == split["test"].tolist()
    assert [int(r["label"]) for r in preds] == y[split["test"]].tolist()
    probs = np.array([[float(r[f"prob_{c}"]) for c in CLASS_NAMES] for r in preds])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert [int(r["pred"]) for r in preds] == probs.argmax(axis=1).tolist()
    assert all(r["pred_name"] == CLASS_NAMES[int(r["pred"])] for r in preds)

    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    assert on_disk["n_test"] == len(split["test"]) == on_disk["n"]
    # plain_cnn, 2 channels, 16 px: convs 2*16*9+16, 16*32*9+32, 32*64*9+64, then Linear
    # 64*2*2 -> 128 and 128 -> 3, weights and biases
    assert on_disk["n_train"] == len(split["train"]) and on_disk["n_parameters"] == 56_723

    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["architecture"] == "plain_cnn" and ckpt["in_channels"] == 2
    assert ckpt["image_size"] == SIZE and ckpt["smoothing_sigma_px"] == SIGMA_PX
    assert ckpt["channels"] == ["image", "residual"] and ckpt["class_names"] == list(CLASS_NAMES)
    assert ckpt["epoch"] == on_disk["best_epoch"]
    assert ckpt["config"]["seed"] == 1
    assert {"optimizer_state", "rng_state", "best_val_acc", "darklens_version"} <= set(ckpt)
    # the kept epoch: lowest validation loss (the earliest on ties), the stopping criterion
    best_row = min(history, key=lambda r: (float(r["val_loss"]), int(r["epoch"])))
    assert int(best_row["epoch"]) == ckpt["epoch"] == on_disk["best_epoch"]
    assert on_disk["best_val_loss"] == float(best_row["val_loss"])
    assert on_disk["best_val_acc"] == float(best_row["val_acc"])
    assert on_disk["epochs_run"] == 4 and on_disk["max_epochs"] == 4
    assert on_disk["stop_reason"] in ("early_stopping", "max_epochs")
    assert float(history[0]["learning_rate"]) == 3e-3


def test_learns_easy_task(run):
    _, metrics, _ = run
    assert metrics["accuracy"] > 0.6  # chance is 1/3
    assert metrics["auc_macro_ovr"] > 0.8


def test_same_seed_same_results(toy, run, tmp_path):
    _, x, y, split = toy
    out, _, _ = run
    train(x, y, split, config(), tmp_path, log=lambda _: None)
    assert (tmp_path / "predictions.csv").read_text() == (out / "predictions.csv").read_text()
    first, second = read_csv(out / "history.csv")[1], read_csv(tmp_path / "history.csv")[1]
    for a, b in zip(first, second, strict=True):
        assert [a[c] for c in HISTORY_COLUMNS[:-1]] == [b[c] for c in HISTORY_COLUMNS[:-1]]


def test_normalisation_uses_train_split_only(toy, tmp_path):
    _, x, y, split = toy
    x = x.copy()
    x[split["test"]] += 1000.0
    x[split["val"]] *= 50.0
    train(x, y, split, config(max_epochs=1), tmp_path, log=lambda _: None)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    train_x = x[split["train"]].astype(np.float64)
    np.testing.assert_allclose(ckpt["norm_mean"], train_x.mean(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(ckpt["norm_std"], train_x.std(axis=(0, 2, 3)), rtol=1e-6)
    assert max(abs(m) for m in ckpt["norm_mean"]) < 1.0


def test_eval_is_deterministic_with_flips_and_dropout(toy, tmp_path):
    """physics_cnn has dropout and BatchNorm, training uses flips; prediction must use none."""
    images, x, y, split = toy
    train(x, y, split, config(architecture="physics_cnn"), tmp_path, log=lambda _: None)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    test_images = images[split["test"]]
    first = predict_images(ckpt, test_images, device="cpu")
    second = predict_images(ckpt, test_images, device="cpu", batch_size=7)
    np.testing.assert_allclose(first, second, atol=1e-6)
    _, preds = read_csv(tmp_path / "predictions.csv")
    saved = np.array([[float(r[f"prob_{c}"]) for c in CLASS_NAMES] for r in preds])
    np.testing.assert_allclose(first, saved, atol=1e-5)
    # a flipped copy is a different input: outputs differ, so flips would have been visible
    flipped = predict_images(ckpt, test_images[:, :, ::-1], device="cpu")
    assert not np.allclose(flipped, first, atol=1e-6)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda x, y, s: (x, y, {**s, "test": s["val"]}), "overlaps"),
        (lambda x, y, s: (x, y, {**s, "val": s["val"][:0]}), "non-empty"),
        (lambda x, y, s: (x, y, {"train": s["train"], "test": s["test"]}), "keys"),
        (lambda x, y, s: (x, y, {**s, "test": s["test"] + 1000}), "outside"),
        (
            lambda x, y, s: (np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), y, s),
            "NaN",
        ),
        (lambda x, y, s: (x[:, 0], y, s), "N, C, H, W"),
        (lambda x, y, s: (x[:, :1], y, s), "channel"),
        (lambda x, y, s: (x, np.where(np.arange(y.size) == 0, 3, y), s), "labels"),
    ],
)
def test_bad_input_raises(toy, tmp_path, mutate, match):
    _, x, y, split = toy
    x, y, split = mutate(x, y, split)
    with pytest.raises(ValueError, match=match):
        train(x, y, split, config(max_epochs=1), tmp_path, log=lambda _: None)
    assert not list(tmp_path.iterdir())


def test_unknown_device_raises(toy, tmp_path):
    _, x, y, split = toy
    with pytest.raises(ValueError, match="device"):
        train(x, y, split, config(device="tpu"), tmp_path, log=lambda _: None)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"channels": ["image", "gradient"]}, "unknown channel"),
        ({"smoothing_sigma_px": None}, "smoothing_sigma_px"),
        ({"architecture": "vit"}, "unknown architecture"),
    ],
)
def test_bad_config_raises(toy, tmp_path, overrides, match):
    _, x, y, split = toy
    with pytest.raises(ValueError, match=match):
        train(x, y, split, config(max_epochs=1, **overrides), tmp_path, log=lambda _: None)


class Interrupted(Exception):
    """Stands in for a crash (SIGKILL, node failure) in the middle of training."""


def crash_at(epoch):
    def log(line):
        if line.startswith(f"epoch {epoch:3d}"):
            raise Interrupted

    return log


def same_outputs(a, b):
    for name in ("predictions.csv", "metrics.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    first, second = read_csv(a / "history.csv")[1], read_csv(b / "history.csv")[1]
    assert [[r[c] for c in HISTORY_COLUMNS[:-1]] for r in first] == [
        [r[c] for c in HISTORY_COLUMNS[:-1]] for r in second
    ]
    state_a = load_checkpoint(a / "checkpoint.pt")["model_state"]
    state_b = load_checkpoint(b / "checkpoint.pt")["model_state"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)


def test_resume_after_a_crash_gives_identical_results(toy, tmp_path):
    """physics_cnn: dropout, BatchNorm and flips all draw random numbers that must resume."""
    _, x, y, split = toy
    cfg = config(architecture="physics_cnn", max_epochs=4)
    train(x, y, split, cfg, tmp_path / "straight", log=lambda _: None)
    run = tmp_path / "crashed"
    with pytest.raises(Interrupted):
        train(x, y, split, cfg, run, log=crash_at(3))
    assert (run / RESUME_FILE).is_file() and not (run / "metrics.json").exists()
    lines = []
    train(x, y, split, cfg, run, log=lines.append)
    assert f"resumed from {RESUME_FILE} after epoch 2 of at most 4" in lines
    assert [line.split()[1] for line in lines if line.startswith("epoch")] == ["3", "4"]
    same_outputs(tmp_path / "straight", run)


def test_finished_run_whose_outputs_were_lost_is_not_trained_again(toy, run, tmp_path):
    """Snakemake deletes the outputs of a job it did not see finish (only the snakemake process
    was killed); the rerun finds the finished run's resume file and rewrites the same outputs."""
    _, x, y, split = toy
    out, _, _ = run
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    (rerun / RESUME_FILE).write_bytes((out / RESUME_FILE).read_bytes())
    lines = []
    train(x, y, split, config(), rerun, log=lines.append)
    assert f"{RESUME_FILE}: this run finished after epoch 4; rewriting its outputs" in lines
    assert not any(line.startswith("epoch") for line in lines)
    same_outputs(out, rerun)
    state = torch.load(rerun / RESUME_FILE, weights_only=True)
    assert state["finished"] and "model" not in state and "optimizer" not in state


@pytest.mark.parametrize("change", ["seed", "data", "corrupt"])
def test_resume_file_of_another_run_is_ignored(toy, tmp_path, change):
    _, x, y, split = toy
    run = tmp_path / "run"
    with pytest.raises(Interrupted):
        train(x, y, split, config(max_epochs=3), run, log=crash_at(2))
    cfg = config(max_epochs=3, seed=2 if change == "seed" else 1)
    if change == "data":
        x = x.copy()
        x[0, 0, 0, 0] += 1.0
    if change == "corrupt":
        (run / RESUME_FILE).write_bytes(b"PK\x03\x04 not a checkpoint")
    lines = []
    train(x, y, split, cfg, run, log=lines.append)
    expected = "not readable" if change == "corrupt" else "another config or other data"
    assert any(line.startswith(f"ignoring {RESUME_FILE}") and expected in line for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("epoch")] == ["1", "2", "3"]
    train(x, y, split, cfg, tmp_path / "straight", log=lambda _: None)
    same_outputs(tmp_path / "straight", run)


def test_config_from_spec_keeps_the_smoothing_only_with_a_residual_channel():
    training = {
        "max_epochs": 3,
        "min_epochs": 2,
        "early_stopping": {"patience": 4, "min_delta": 0.01},
        "lr_schedule": {"kind": "cosine", "factor": 0.3, "patience": 1, "min_learning_rate": 1e-6},
        "batch_size": 16,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "device": "cpu",
    }
    spec = {"architecture": "plain_cnn", "channels": ["image"]}
    cfg = config_from_spec(spec, training, 5, 2, ["a", "b"], SIGMA_PX)
    assert cfg.smoothing_sigma_px is None and not cfg.augment_flips and cfg.mixed_precision
    assert (cfg.max_epochs, cfg.min_epochs, cfg.batch_size, cfg.seed, cfg.threads) == (
        3,
        2,
        16,
        5,
        2,
    )
    assert (cfg.patience, cfg.min_delta) == (4, 0.01)
    assert (cfg.lr_schedule, cfg.lr_factor, cfg.lr_patience, cfg.min_learning_rate) == (
        "cosine",
        0.3,
        1,
        1e-6,
    )
    spec = {**spec, "channels": ["image", "residual"], "augment_flips": True}
    cfg = config_from_spec(spec, {**training, "mixed_precision": False}, 5, 2, ["a", "b"], 2.0)
    assert cfg.smoothing_sigma_px == 2.0 and cfg.augment_flips and not cfg.mixed_precision
    assert cfg.channels == ["image", "residual"] and cfg.class_names == ["a", "b"]


# --- convergence: early stopping and the learning-rate schedule ---------------------------------


def history_of(out):
    return read_csv(out / "history.csv")[1]


def improving_epochs(val_losses, min_delta=0.0):
    """Epochs (1-based) whose validation loss beats the best so far by more than min_delta."""
    best, out = math.inf, []
    for epoch, loss in enumerate(val_losses, start=1):
        if loss < best - min_delta:
            best = loss
            out.append(epoch)
    return out


def test_improves_is_lower_validation_loss_by_more_than_min_delta():
    best = {"val_loss": 0.5}
    assert improves(0.7, None, 0.0)  # the first epoch
    assert improves(0.49, best, 0.0) and not improves(0.5, best, 0.0)
    assert not improves(0.49, best, 0.02) and improves(0.47, best, 0.02)
    assert not improves(float("nan"), best, 0.0)


@pytest.fixture(scope="module")
def stopped(toy, tmp_path_factory):
    """A run that stops early: patience 2, at most 40 epochs, a constant learning rate."""
    _, x, y, split = toy
    out = tmp_path_factory.mktemp("stopped")
    lines, warnings = [], []
    cfg = config(max_epochs=40, patience=2, lr_schedule="none")
    metrics = train(x, y, split, cfg, out, log=lines.append, warn=warnings.append)
    return out, metrics, lines, warnings


def test_early_stopping_stops_patience_epochs_after_the_lowest_validation_loss(stopped):
    out, metrics, lines, warnings = stopped
    history = history_of(out)
    losses = [float(r["val_loss"]) for r in history]
    best_epoch = improving_epochs(losses)[-1]
    assert metrics["stop_reason"] == "early_stopping" and not warnings
    assert metrics["epochs_run"] == len(history) == best_epoch + 2 < 40
    assert metrics["best_epoch"] == best_epoch == 1 + int(np.argmin(losses))
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == best_epoch
    assert {float(r["learning_rate"]) for r in history} == {3e-3}  # "none": constant
    stop_line = f"early stopping after epoch {len(history)} of at most 40"
    assert any(line.startswith(stop_line) for line in lines)
    assert json.loads((out / "metrics.json").read_text())["stop_reason"] == "early_stopping"


def test_no_early_stop_before_min_epochs(toy, stopped, tmp_path):
    _, x, y, split = toy
    _, first, _, _ = stopped
    min_epochs = first["epochs_run"] + 3
    cfg = config(max_epochs=40, min_epochs=min_epochs, patience=2, lr_schedule="none")
    metrics = train(x, y, split, cfg, tmp_path, log=lambda _: None)
    losses = [float(r["val_loss"]) for r in history_of(tmp_path)]
    assert metrics["epochs_run"] >= min_epochs and metrics["stop_reason"] == "early_stopping"
    best = improving_epochs(losses)[-1]
    assert metrics["epochs_run"] == max(min_epochs, best + 2) and metrics["best_epoch"] == best


def test_a_run_that_reaches_max_epochs_warns(toy, tmp_path):
    _, x, y, split = toy
    lines, warnings = [], []
    cfg = config(max_epochs=3, patience=5)
    metrics = train(x, y, split, cfg, tmp_path, log=lines.append, warn=warnings.append)
    assert metrics["stop_reason"] == "max_epochs" and metrics["epochs_run"] == 3
    assert len(warnings) == 1 and warnings[0].startswith("stopped at max_epochs 3")
    assert "may not have converged" in warnings[0]
    assert not any("early stopping" in line for line in lines)


def test_plateau_schedule_cuts_the_rate_after_each_epoch_without_improvement(toy, tmp_path):
    """lr_patience 0: every epoch that does not improve (from min_epochs on) halves the rate."""
    _, x, y, split = toy
    cfg = config(max_epochs=14, min_epochs=3, patience=14, lr_patience=0, min_learning_rate=4e-4)
    train(x, y, split, cfg, tmp_path, log=lambda _: None)
    history = history_of(tmp_path)
    rates = [float(r["learning_rate"]) for r in history]
    improving = improving_epochs([float(r["val_loss"]) for r in history])
    expected = [3e-3]
    for epoch in range(1, len(history)):
        cut = epoch >= 3 and epoch not in improving
        expected.append(max(expected[-1] * 0.5, 4e-4) if cut else expected[-1])
    assert rates == pytest.approx(expected, rel=1e-12)
    assert rates[-1] < rates[0]  # the schedule did act in this run


def test_cosine_schedule_anneals_over_max_epochs(toy, tmp_path):
    _, x, y, split = toy
    cfg = config(max_epochs=5, patience=5, lr_schedule="cosine", min_learning_rate=1e-4)
    train(x, y, split, cfg, tmp_path, log=lambda _: None)
    rates = [float(r["learning_rate"]) for r in history_of(tmp_path)]
    expected = [1e-4 + (3e-3 - 1e-4) * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)]
    assert rates == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_resume_restores_the_schedule_and_early_stopping(toy, tmp_path, schedule):
    """A run that cuts its rate and stops early, crashed mid-way, ends as the straight run (the
    toy task's validation loss keeps falling towards 0: min_delta ends it)."""
    _, x, y, split = toy
    cfg = config(max_epochs=40, patience=3, min_delta=0.005, lr_patience=0, lr_schedule=schedule)
    straight = train(x, y, split, cfg, tmp_path / "straight", log=lambda _: None)
    assert straight["stop_reason"] == "early_stopping"
    losses = [float(r["val_loss"]) for r in history_of(tmp_path / "straight")]
    assert straight["best_epoch"] == improving_epochs(losses, 0.005)[-1]
    crash = straight["best_epoch"] + 2  # mid-way through the patience count
    run = tmp_path / "crashed"
    with pytest.raises(Interrupted):
        train(x, y, split, cfg, run, log=crash_at(crash))
    state = torch.load(run / RESUME_FILE, weights_only=True)
    assert state["epochs_without_improvement"] == 1 and state["scheduler"] is not None
    lines = []
    resumed = train(x, y, split, cfg, run, log=lines.append)
    assert f"resumed from {RESUME_FILE} after epoch {crash - 1} of at most 40" in lines
    assert resumed["epochs_run"] == straight["epochs_run"]
    same_outputs(tmp_path / "straight", run)


def test_bad_schedule_raises(toy, tmp_path):
    _, x, y, split = toy
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        train(x, y, split, config(lr_schedule="step"), tmp_path, log=lambda _: None)
    with pytest.raises(ValueError, match="patience"):
        train(x, y, split, config(patience=0), tmp_path, log=lambda _: None)
