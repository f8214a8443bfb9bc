import pytest
import torch
from darklens.learning.models import ARCHITECTURES, build_model, count_parameters, seed_layer_order


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("image_size", [16, 64])
def test_output_shape(architecture, in_channels, image_size):
    model = build_model(architecture, in_channels=in_channels, n_classes=3, image_size=image_size)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(5, in_channels, image_size, image_size))
    assert out.shape == (5, 3)


def test_parameter_count_of_a_small_plain_cnn_by_hand():
    """plain_cnn, 1 channel, 16 px, 3 classes: 3x3 convs 1->16, 16->32, 32->64 (weights and
    biases), then 64 maps of 2 x 2 px -> 128 hidden units -> 3 logits."""
    convs = (1 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (32 * 64 * 9 + 64)
    linears = (64 * 2 * 2 * 128 + 128) + (128 * 3 + 3)
    model = build_model("plain_cnn", 1, 3, 16)
    assert count_parameters(model) == convs + linears == 56_579


def test_frozen_parameters_are_not_counted():
    model = build_model("plain_cnn", 1, 3, 16)
    first_conv = model[0][0]
    first_conv.weight.requires_grad_(False)
    assert count_parameters(model) == 56_579 - 1 * 16 * 9


def test_plain_cnn_has_no_batchnorm_or_dropout():
    model = build_model("plain_cnn", 1, 3, 64)
    kinds = {type(m) for m in model.modules()}
    assert not kinds & {torch.nn.BatchNorm2d, torch.nn.Dropout, torch.nn.Dropout2d}


def test_physics_cnn_has_batchnorm_and_dropout():
    model = build_model("physics_cnn", 2, 3, 64)
    kinds = {type(m) for m in model.modules()}
    assert {torch.nn.BatchNorm2d, torch.nn.Dropout, torch.nn.Dropout2d} <= kinds


def test_parameter_count_grows_with_channels():
    one = count_parameters(build_model("plain_cnn", 1, 3, 64))
    two = count_parameters(build_model("plain_cnn", 2, 3, 64))
    assert two - one == 16 * 3 * 3  # one more input plane of the first 3x3 conv


def test_unknown_architecture_names_known_ones():
    with pytest.raises(ValueError, match=r"'vit'.*plain_cnn"):
        build_model("vit", 1, 3, 64)


def test_too_small_image_raises():
    with pytest.raises(ValueError, match="image_size"):
        build_model("plain_cnn", 1, 3, 4)


@pytest.fixture(autouse=True)
def one_thread():
    """Small convolutions are fastest on one thread (and much slower on an oversubscribed CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Parameter counts at 64 x 64 px, 3 classes, for 1 and 2 input channels (documented in
# docs/evaluation.md and README.md; resnet18 and equivariant do not depend on the image size).
PARAMETERS_64PX = {
    "plain_cnn": (548_099, 548_243),
    "physics_cnn": (548_323, 548_467),
    "resnet18": (11_169_219, 11_169_795),
    "equivariant": (69_373, 69_427),
}


@pytest.mark.parametrize("architecture", sorted(PARAMETERS_64PX))
def test_documented_parameter_counts(architecture):
    counts = tuple(count_parameters(build_model(architecture, c, 3, 64)) for c in (1, 2))
    assert counts == PARAMETERS_64PX[architecture]


def test_resnet18_has_eight_residual_blocks_and_a_small_image_stem():
    from darklens.learning.models import BasicBlock

    model = build_model("resnet18", 2, 3, 32)
    assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 8
    stem = model[0]
    assert (stem.in_channels, stem.kernel_size, stem.stride) == (2, (3, 3), (2, 2))


def test_d4_is_a_group():
    from darklens.learning.models import D4_INV, D4_MUL, d4_transform

    assert D4_MUL[0] == list(range(8))  # identity
    for a in range(8):
        assert sorted(D4_MUL[a]) == list(range(8))  # each row a permutation
        assert D4_MUL[a][D4_INV[a]] == 0
    probe = torch.arange(9.0).reshape(3, 3)
    for a in range(8):
        for b in range(8):
            assert torch.equal(
                d4_transform(d4_transform(probe, b), a), d4_transform(probe, D4_MUL[a][b])
            )


@pytest.mark.parametrize("in_channels", [1, 2])
def test_equivariant_model_is_invariant_to_the_8_grid_symmetries(in_channels):
    from darklens.learning.models import d4_transform

    torch.manual_seed(0)
    model = build_model("equivariant", in_channels, 3, 32).eval()
    x = torch.randn(4, in_channels, 32, 32)
    with torch.no_grad():
        reference = model(x)
        for g in range(8):
            torch.testing.assert_close(model(d4_transform(x, g)), reference, atol=1e-5, rtol=1e-5)
    plain = build_model("plain_cnn", in_channels, 3, 32).eval()  # a plain CNN is not
    with torch.no_grad():
        assert not torch.allclose(plain(d4_transform(x, 1)), plain(x), atol=1e-5)


def test_group_convolution_permutes_the_group_axis():
    """Feature maps of a transformed image are the transformed maps, group axis permuted."""
    from darklens.learning.models import D4_INV, D4_MUL, D4GroupConv, D4LiftingConv, d4_transform

    torch.manual_seed(1)
    lift, conv = D4LiftingConv(2, 3), D4GroupConv(3, 4)
    x = torch.randn(1, 2, 12, 12)
    with torch.no_grad():
        features = conv(lift(x)).view(1, 4, 8, 12, 12)
        for h in range(8):
            moved = conv(lift(d4_transform(x, h))).view(1, 4, 8, 12, 12)
            for g in range(8):
                expected = d4_transform(features[:, :, D4_MUL[D4_INV[h]][g]], h)
                torch.testing.assert_close(moved[:, :, g], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("architecture", sorted(PARAMETERS_64PX))
def test_every_architecture_trains_one_epoch(architecture, tmp_path):
    """One epoch of the real training loop on 32 x 32 image + residual inputs."""
    import json

    import numpy as np
    from darklens.learning.train import TrainConfig, train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(36, 2, 32, 32)).astype(np.float32)
    y = np.arange(36) % 3
    split = {"train": np.arange(24), "val": np.arange(24, 30), "test": np.arange(30, 36)}
    cfg = TrainConfig(
        architecture=architecture,
        channels=["image", "residual"],
        max_epochs=1,
        batch_size=12,
        device="cpu",
        smoothing_sigma_px=1.5,
    )
    metrics = train(x, y, split, cfg, tmp_path, log=lambda _: None)
    assert metrics["n_parameters"] == count_parameters(build_model(architecture, 2, 3, 32))
    assert json.loads((tmp_path / "metrics.json").read_text())["model"] == architecture


@pytest.mark.parametrize("architecture", ["plain_cnn", "physics_cnn"])
def test_pool_before_relu_is_the_same_function_and_gradient(architecture):
    """darklens pools before ReLU (cheaper); outputs and gradients equal the original
    DeepLense-style order (ReLU, then pool)."""
    torch.manual_seed(0)
    ours = build_model(architecture, 2, 3, 32).double()
    seed_order = seed_layer_order(build_model(architecture, 2, 3, 32).double())
    seed_order.load_state_dict(ours.state_dict())
    assert [type(m) for m in ours.modules()] != [type(m) for m in seed_order.modules()]
    x = torch.randn(6, 2, 32, 32, dtype=torch.float64)
    outputs = []
    for model in (ours, seed_order):
        model.eval()  # dropout off; batch norm from running statistics
        out = model(x)
        out.square().sum().backward()
        outputs.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=0, atol=1e-12)
    for a, b in zip(outputs[0][1], outputs[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
