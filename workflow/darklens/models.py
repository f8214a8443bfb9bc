"""Classifier architectures, looked up by name.

Each architecture is a builder `(in_channels, n_classes, image_size) -> nn.Module` whose module maps
(N, in_channels, image_size, image_size) float32 to (N, n_classes) logits. Add one with
`@register("name")`; `build_model` is the only entry point the rest of the package uses.

- `plain_cnn`: the seed's baseline, 3 blocks of Conv3x3 -> ReLU -> MaxPool2 (16, 32, 64 channels),
  then Linear -> ReLU -> Linear. No BatchNorm, no dropout.
- `physics_cnn`: the seed's "physics-informed" model: the same blocks with BatchNorm after each conv
  and Dropout2d(0.1) after each block, and Dropout(0.5) before each Linear. (The "physics" lives in
  the input channels, see features.py, not in the network.)
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

Builder = Callable[[int, int, int], nn.Module]
ARCHITECTURES: dict[str, Builder] = {}

CONV_WIDTHS = (16, 32, 64)
HIDDEN_UNITS = 128


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator adding a builder to `ARCHITECTURES` under `name`."""

    def add(builder: Builder) -> Builder:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} is already registered")
        ARCHITECTURES[name] = builder
        return builder

    return add


def build_model(architecture: str, in_channels: int, n_classes: int, image_size: int) -> nn.Module:
    """Build a fresh (randomly initialised) model; image_size is the side in pixels."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    if in_channels < 1 or n_classes < 2:
        raise ValueError(f"need in_channels >= 1, n_classes >= 2; got {in_channels}, {n_classes}")
    return ARCHITECTURES[architecture](in_channels, n_classes, image_size)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _conv_stack(in_channels: int, batch_norm: bool, dropout2d: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in CONV_WIDTHS:
        layers.append(nn.Conv2d(in_channels, width, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        if dropout2d > 0:
            layers.append(nn.Dropout2d(dropout2d))
        in_channels = width
    return nn.Sequential(*layers)


def _flat_size(image_size: int) -> int:
    side = image_size
    for _ in CONV_WIDTHS:
        side //= 2
    if side < 1:
        raise ValueError(f"image_size must be >= {2 ** len(CONV_WIDTHS)} px, got {image_size}")
    return CONV_WIDTHS[-1] * side * side


@register("plain_cnn")
def plain_cnn(in_channels: int, n_classes: int, image_size: int) -> nn.Module:
    return nn.Sequential(
        _conv_stack(in_channels, batch_norm=False, dropout2d=0.0),
        nn.Flatten(),
        nn.Linear(_flat_size(image_size), HIDDEN_UNITS),
        nn.ReLU(),
        nn.Linear(HIDDEN_UNITS, n_classes),
    )


@register("physics_cnn")
def physics_cnn(in_channels: int, n_classes: int, image_size: int) -> nn.Module:
    return nn.Sequential(
        _conv_stack(in_channels, batch_norm=True, dropout2d=0.1),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(_flat_size(image_size), HIDDEN_UNITS),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(HIDDEN_UNITS, n_classes),
    )
