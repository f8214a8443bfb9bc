import csv

import numpy as np
import pytest
import torch
from darklens import CLASS_NAMES
from darklens.features import build_channels
from darklens.predict import REQUIRED_KEYS, load_checkpoint, predict_images
from darklens.training import TrainConfig, train

SIZE = 16
SIGMA_PX = 1.5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-channel model trained for 2 epochs on 60 random 16x16 images (content is irrelevant)."""
    rng = np.random.default_rng(3)
    images = rng.gamma(2.0, 1.0, (60, SIZE, SIZE)).astype(np.float32)
    labels = np.arange(60) % 3
    split = {"train": np.arange(36), "val": np.arange(36, 48), "test": np.arange(48, 60)}
    x = build_channels(images, ["image", "residual"], SIGMA_PX)
    cfg = TrainConfig(
        architecture="physics_cnn",
        channels=["image", "residual"],
        augment_flips=True,
        epochs=2,
        batch_size=8,
        device="cpu",
        smoothing_sigma_px=SIGMA_PX,
    )
    out = tmp_path_factory.mktemp("predict")
    train(x, labels, split, cfg, out, log=lambda _: None)
    return out, images, split


def test_round_trip_reproduces_predictions_csv(trained):
    out, images, split = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    probs = predict_images(ckpt, images[split["test"]], device="auto", batch_size=5)
    with open(out / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    saved = np.array([[float(r[f"prob_{c}"]) for c in CLASS_NAMES] for r in rows])
    assert probs.shape == (len(split["test"]), len(CLASS_NAMES))
    np.testing.assert_allclose(probs, saved, atol=1e-5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_empty_batch(trained):
    out, _, _ = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert predict_images(ckpt, np.zeros((0, SIZE, SIZE))).shape == (0, len(CLASS_NAMES))


def test_wrong_image_size_says_what_is_expected(trained):
    out, images, _ = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    with pytest.raises(ValueError, match=r"20x20 px but the model expects 16x16"):
        predict_images(ckpt, np.zeros((2, 20, 20)))
    with pytest.raises(ValueError, match=r"\(N, 16, 16\)"):
        predict_images(ckpt, images[0])


def test_nan_image_raises(trained):
    out, images, _ = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    bad = images[:3].copy()
    bad[1, 4, 4] = np.inf
    with pytest.raises(ValueError, match="NaN/inf"):
        predict_images(ckpt, bad)


def test_missing_file_raises(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_file_raises(trained, tmp_path):
    out, _, _ = trained
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((out / "checkpoint.pt").read_bytes()[:1000])
    with pytest.raises(ValueError, match="not readable"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not readable"):
        load_checkpoint(garbage)


def test_missing_keys_are_named(trained, tmp_path):
    out, _, _ = trained
    ckpt = load_checkpoint(out / "checkpoint.pt")
    del ckpt["norm_std"], ckpt["image_size"]
    path = tmp_path / "partial.pt"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="lacks required key\\(s\\): image_size, norm_std"):
        load_checkpoint(path)
    assert "norm_std" in REQUIRED_KEYS
