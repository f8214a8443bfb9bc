"""Classifier architectures, looked up by name.

Each architecture is a builder `(in_channels, n_classes, image_size) -> nn.Module` whose module maps
(N, in_channels, image_size, image_size) float32 to (N, n_classes) logits. Add one with
`@register("name")`; `build_model` is the only entry point the rest of the package uses.

- `plain_cnn`: the baseline of the original DeepLense-style recipe, 3 blocks of Conv3x3 -> ReLU ->
  MaxPool2 (16, 32, 64 channels), then Linear -> ReLU -> Linear. No BatchNorm, no dropout.
- `physics_cnn`: that recipe's "physics-informed" model: the same blocks with BatchNorm after each
  conv and Dropout2d(0.1) after each block, and Dropout(0.5) before each Linear. (The "physics"
  lives in the input channels, see channels.py, not in the network.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
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


def seed_layer_order(model: nn.Module) -> nn.Module:
    """The same network, in place, with ReLU before max-pool as the original DeepLense-style
    recipe wrote it (the reference
    of `benchmarks/training.py` and of the equivalence test): the two commute exactly and hold no
    parameters, so outputs, gradients and state-dict keys are unchanged."""
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            layers = list(module)
            for i in range(len(layers) - 1):
                if isinstance(layers[i], nn.MaxPool2d) and isinstance(layers[i + 1], nn.ReLU):
                    module[i], module[i + 1] = layers[i + 1], layers[i]
    return model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _conv_stack(in_channels: int, batch_norm: bool, dropout2d: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in CONV_WIDTHS:
        layers.append(nn.Conv2d(in_channels, width, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        # Pool before ReLU: the two commute exactly (max and max(., 0)), so outputs and gradients
        # are the same, but ReLU then runs on a quarter of the pixels. Neither has parameters, so
        # state-dict keys are unchanged.
        layers += [nn.MaxPool2d(2), nn.ReLU()]
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


# --- ResNet-18 ---

RESNET18_WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers with an identity (or 1x1-conv projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


@register("resnet18")
def resnet18(in_channels: int, n_classes: int, image_size: int) -> nn.Module:
    """ResNet-18 (He et al. 2016: 4 stages of 2 BasicBlocks, 64-128-256-512 channels, 11.2 M
    parameters) adapted to small 1- or 2-channel images: the 7x7 stride-2 stem and its max-pool
    (made for 224 px photographs) become one 3x3 stride-2 conv, so a 64 px image enters the first
    stage at 32 x 32 as CIFAR images do; global average pooling makes it size-agnostic."""
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 px for resnet18, got {image_size}")
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, RESNET18_WIDTHS[0], 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(RESNET18_WIDTHS[0]),
        nn.ReLU(),
    ]
    width = RESNET18_WIDTHS[0]
    for stage, out_width in enumerate(RESNET18_WIDTHS):
        stride = 1 if stage == 0 else 2
        layers += [BasicBlock(width, out_width, stride), BasicBlock(out_width, out_width, 1)]
        width = out_width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, n_classes)]
    return nn.Sequential(*layers)


# --- D4-equivariant CNN ---
#
# The dihedral group D4 of the square pixel grid: 4 rotations by 90 degrees, each with or without a
# mirror, 8 elements. Element g = 4 m + r acts on an image as T_g(x) = rot90(mirror^m(x), r).
# Feature maps carry a group axis of length 8 (channels ordered (channel, group element)); a
# transformation h of the input maps feature f[g] to T_h f[h^-1 g]: the maps move with the image
# and the group axis is permuted (Cohen & Welling 2016, "Group equivariant convolutional networks").
# Averaging over the group axis and over the pixels then gives features that are exactly invariant
# to the 8 symmetries of the grid (for image sides divisible by 2 at every pooling).

D4_ORDER = 8


def d4_transform(x: torch.Tensor, g: int) -> torch.Tensor:
    """T_g of the last two (spatial) axes of x: mirror left-right if g >= 4, then rotate by
    (g mod 4) quarter turns."""
    if g >= 4:
        x = x.flip(-1)
    return torch.rot90(x, g % 4, dims=(-2, -1))


def _d4_tables() -> tuple[list[list[int]], list[int]]:
    """Cayley table (T_mul[a][b] = T_a T_b) and inverses, found by acting on an asymmetric probe."""
    probe = torch.arange(16.0).reshape(4, 4)
    images = [d4_transform(probe, g) for g in range(D4_ORDER)]

    def index(image: torch.Tensor) -> int:
        return next(g for g in range(D4_ORDER) if torch.equal(images[g], image))

    table = [[index(d4_transform(images[b], a)) for b in range(D4_ORDER)] for a in range(D4_ORDER)]
    inverse = [table[g].index(0) for g in range(D4_ORDER)]
    return table, inverse


D4_MUL, D4_INV = _d4_tables()


class D4LiftingConv(nn.Module):
    """Plane channels -> D4 feature maps: each filter is applied in its 8 transformed copies."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.stack([d4_transform(self.weight, g) for g in range(D4_ORDER)], dim=1)
        return F.conv2d(x, weight.flatten(0, 1), padding=self.padding)


class D4GroupConv(nn.Module):
    """D4 feature maps -> D4 feature maps; filter for output element g is T_g of the base filter
    with its input group axis permuted by g^-1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        shape = (out_channels, in_channels, D4_ORDER, kernel_size, kernel_size)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_uniform_(
            self.weight.view(out_channels, -1, kernel_size, kernel_size), a=5**0.5
        )
        self.padding = kernel_size // 2
        perms = [[D4_MUL[D4_INV[g]][s] for s in range(D4_ORDER)] for g in range(D4_ORDER)]
        self.register_buffer("perms", torch.tensor(perms), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = torch.stack(
            [d4_transform(self.weight[:, :, self.perms[g]], g) for g in range(D4_ORDER)], dim=1
        )  # (out, 8, in, 8, k, k)
        return F.conv2d(x, weight.flatten(0, 1).flatten(1, 2), padding=self.padding)


class D4BatchNorm(nn.Module):
    """BatchNorm whose statistics and affine parameters are shared by the 8 copies of a channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        return self.bn(x.view(n, -1, D4_ORDER, h, w)).view(n, -1, h, w)


class D4Invariant(nn.Module):
    """Average over the group axis and the pixels: (N, C * 8, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        return x.view(n, -1, D4_ORDER * h * w).mean(dim=2)


EQUIVARIANT_WIDTHS = (6, 12, 24, 24)


@register("equivariant")
def equivariant(in_channels: int, n_classes: int, image_size: int) -> nn.Module:
    """D4 group-equivariant CNN: a lifting conv and three group convs (6, 12, 24, 24 channels per
    group element, each with shared BatchNorm and ReLU, 2x2 max-pool after the first three), then
    group + spatial average pooling (exactly invariant to the 8 grid symmetries) and an MLP."""
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8 px for equivariant, got {image_size}")
    widths = EQUIVARIANT_WIDTHS
    layers: list[nn.Module] = [D4LiftingConv(in_channels, widths[0])]
    for k, width in enumerate(widths):
        if k > 0:
            layers.append(D4GroupConv(widths[k - 1], width))
        layers += [D4BatchNorm(width), nn.ReLU()]
        if k < len(widths) - 1:
            layers.append(nn.MaxPool2d(2))
    layers += [
        D4Invariant(),
        nn.Linear(widths[-1], HIDDEN_UNITS // 2),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(HIDDEN_UNITS // 2, n_classes),
    ]
    return nn.Sequential(*layers)
