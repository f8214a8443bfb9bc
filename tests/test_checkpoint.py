"""checkpoint.pt: written by training, read back whole, and refused with one line when damaged."""

import numpy as np
import pytest
import torch
from darklens.learning.checkpoint import REQUIRED_KEYS, load_checkpoint, load_model
from darklens.learning.train import TrainConfig, train

SIZE = 16


@pytest.fixture(scope="module")
def checkpoint_path(tmp_path_factory):
    """A 1-epoch plain_cnn on 30 random 16x16 two-channel inputs (content is irrelevant)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 2, SIZE, SIZE)).astype(np.float32)
    split = {"train": np.arange(18), "val": np.arange(18, 24), "test": np.arange(24, 30)}
    cfg = TrainConfig(
        channels=["image", "residual"],
        augment_flips=True,
        max_epochs=1,
        batch_size=6,
        device="cpu",
        smoothing_sigma_px=1.5,
    )
    out = tmp_path_factory.mktemp("checkpoint")
    train(x, np.arange(30) % 3, split, cfg, out, log=lambda _: None)
    return out / "checkpoint.pt"


def test_loads_with_weights_only_and_rebuilds_the_trained_model(checkpoint_path):
    raw = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    assert raw["rng_state"]["numpy_flips"]["bit_generator"] == "PCG64"
    ckpt = load_checkpoint(checkpoint_path)
    model = load_model(ckpt, torch.device("cpu"))
    assert not model.training
    state = model.state_dict()
    assert state.keys() == ckpt["model_state"].keys()
    assert all(torch.equal(state[k], v) for k, v in ckpt["model_state"].items())


def test_missing_file_raises(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_file_raises(checkpoint_path, tmp_path):
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint_path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not readable"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not readable"):
        load_checkpoint(garbage)


def test_missing_keys_are_named(checkpoint_path, tmp_path):
    ckpt = load_checkpoint(checkpoint_path)
    del ckpt["norm_std"], ckpt["image_size"]
    path = tmp_path / "partial.pt"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="lacks required key\\(s\\): image_size, norm_std"):
        load_checkpoint(path)
    assert "norm_std" in REQUIRED_KEYS


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"norm_mean": [0.0]}, "norm_mean for 2 channel(s)"),
        ({"smoothing_sigma_px": None}, "no smoothing_sigma_px for the residual channel"),
        ({"channels": ["image", "colour"]}, "channels ['image', 'colour']"),
        ({"in_channels": 1}, "in_channels 1"),
    ],
)
def test_inconsistent_metadata_is_named(checkpoint_path, tmp_path, change, words):
    ckpt = {**load_checkpoint(checkpoint_path), **change}
    path = tmp_path / "inconsistent.pt"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="is inconsistent") as caught:
        load_checkpoint(path)
    assert words in str(caught.value)
