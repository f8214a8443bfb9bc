"""Attribution maps: integrated gradients add up, Grad-CAM is a normalised map, test images only."""

import numpy as np
import pytest
import torch
from darklens.learning.attribution import attribute, grad_cam, integrated_gradients
from darklens.learning.models import build_model


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("architecture", ["plain_cnn", "physics_cnn", "equivariant", "resnet18"])
def test_integrated_gradients_are_complete(architecture):
    """Sum of attributions = logit(x) - logit(0), up to the quadrature error."""
    torch.manual_seed(0)
    model = build_model(architecture, 2, 3, 16).eval()
    x = torch.randn(3, 2, 16, 16)
    target = torch.tensor([0, 1, 2])
    ig = integrated_gradients(model, x, target, steps=64)
    with torch.no_grad():
        gain = (model(x) - model(torch.zeros_like(x))).gather(1, target[:, None])[:, 0]
    np.testing.assert_allclose(ig.sum(axis=(1, 2, 3)), gain.numpy(), rtol=0.05, atol=2e-3)


def test_grad_cam_is_a_normalised_map_and_channel_shares_sum_to_one():
    torch.manual_seed(0)
    model = build_model("physics_cnn", 2, 3, 32).eval()
    x = torch.randn(4, 2, 32, 32)
    cam = grad_cam(model, x, torch.tensor([0, 1, 2, 0]))
    assert cam.shape == (4, 32, 32) and cam.min() >= 0
    # each map is divided by its peak: 1, or 0 where ReLU leaves nothing of the map
    peaks = cam.reshape(4, -1).max(axis=1)
    assert np.isclose(peaks, 1.0, rtol=1e-6).any()
    assert all(np.isclose(p, 1.0, rtol=1e-6) or p == 0.0 for p in peaks)
    # integrated gradients of a zero channel are zero (x - baseline = 0 there): all the share
    # goes to the other channel
    x[:, 1] = 0.0
    out = attribute(model, x.numpy(), steps=8)
    np.testing.assert_array_equal(out["channel_share"][:, 1], 0.0)
    np.testing.assert_allclose(out["channel_share"][:, 0], 1.0, rtol=1e-6)
    assert out["integrated_gradients"].shape == (4, 2, 32, 32)
    assert (out["target"] == out["probs"].argmax(axis=1)).all()


def test_attribution_uses_test_images_only(tmp_path, monkeypatch):
    """attribute_test_images draws the shown images from the test split, per class."""
    import json

    from darklens.io.split_file import write_split
    from darklens.learning import attribution
    from darklens.learning.split import stratified_split
    from darklens.learning.train import TrainConfig, train

    rng = np.random.default_rng(0)
    counts = {"no_sub": 12, "cdm": 12, "axion": 12}
    images = rng.normal(size=(36, 16, 16)).astype(np.float32)
    labels = np.repeat(np.arange(3), 12)
    split = stratified_split(counts, {"train": 0.5, "val": 0.25, "test": 0.25}, 1)
    write_split(tmp_path / "split.json", split)
    cfg = TrainConfig(
        architecture="plain_cnn", channels=["image"], max_epochs=1, batch_size=6, device="cpu"
    )
    as_arrays = {k: np.asarray(split[k]) for k in ("train", "val", "test")}
    train(images[:, None], labels, as_arrays, cfg, tmp_path / "run", log=lambda _: None)

    def fake_load_training_set(image_paths, residual_paths, channels):
        return images[:, None], labels, counts

    monkeypatch.setattr("darklens.learning.dataset.load_training_set", fake_load_training_set)
    paths = {name: f"{name}.h5" for name in counts}
    result = attribution.attribute_test_images(
        tmp_path / "run" / "checkpoint.pt", paths, None, tmp_path / "split.json", per_class=2
    )
    test = set(json.loads((tmp_path / "split.json").read_text())["test"])
    assert set(result["index"].tolist()) <= test
    assert result["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    np.testing.assert_array_equal(result["raw"][:, 0], images[result["index"]])
    assert set(result["share_by_class"]) == set(counts)
