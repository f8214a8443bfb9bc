import pytest
import torch
from darklens.models import ARCHITECTURES, build_model, count_parameters


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("in_channels", [1, 2])
@pytest.mark.parametrize("image_size", [16, 64])
def test_output_shape(architecture, in_channels, image_size):
    model = build_model(architecture, in_channels=in_channels, n_classes=3, image_size=image_size)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(5, in_channels, image_size, image_size))
    assert out.shape == (5, 3)
    assert count_parameters(model) > 0


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
