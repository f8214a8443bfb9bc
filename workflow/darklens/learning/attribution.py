"""What a trained classifier looks at: Grad-CAM and per-channel integrated gradients.

- Grad-CAM (Selvaraju et al. 2017): the last 4-d activation A (N, K, h, w) of the network, weighted
  per feature map by the mean gradient of the target logit, summed over maps, ReLU, upsampled to the
  image. It mixes the input channels, so it says *where*, not *through which channel*.
- Integrated gradients (Sundararajan et al. 2017): attribution_c(p) = (x - x0)_c(p) * mean over
  alpha in (0, 1] of d logit / d x_c(p) at x0 + alpha (x - x0), with the baseline x0 = 0 in
  normalised units (the training-set mean of each channel). The attributions of all pixels and
  channels sum to logit(x) - logit(x0) (completeness), so the share of the residual channel,
  sum |IG_residual| / sum |IG|, says how much of the decision goes through it.
Both are computed in eval mode for the class the model predicts (or a given target).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _last_4d_module(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """The module whose 4-d output comes last in a forward pass (a leaf or a residual block)."""
    order: list[nn.Module] = []
    hooks = []
    for module in model.modules():
        if module is model:
            continue

        def record(mod, _inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                order.append(mod)

        hooks.append(module.register_forward_hook(record))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    if not order:
        raise ValueError("the model has no 4-d activation for Grad-CAM")
    return order[-1]


def grad_cam(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Grad-CAM maps (N, H, W) in [0, 1] (each map divided by its maximum) for logits `target`."""
    model.eval()
    layer = _last_4d_module(model, x)
    store: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        store["activation"] = output

    hook = layer.register_forward_hook(keep)
    try:
        logits = model(x)
    finally:
        hook.remove()
    logits.gather(1, target[:, None]).sum().backward()
    activation = store["activation"]
    weights = activation.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * activation).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cam = cam / cam.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return cam.detach().numpy()


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor, steps: int = 32
) -> np.ndarray:
    """Integrated gradients (N, C, H, W) of logits `target` from a zero baseline, midpoint rule."""
    model.eval()
    total = torch.zeros_like(x)
    for alpha in (torch.arange(steps, dtype=x.dtype) + 0.5) / steps:
        point = (alpha * x).detach().requires_grad_(True)
        logits = model(point)
        (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), point)
        total += grad
    return (x * total / steps).detach().numpy()


def attribute(model: nn.Module, x: np.ndarray, target=None, steps: int = 32) -> dict:
    """Grad-CAM and integrated gradients of normalised inputs x (N, C, H, W).

    target: class per image; None = the predicted class. Returns {"probs" (N, K), "target" (N,),
    "grad_cam" (N, H, W), "integrated_gradients" (N, C, H, W), "channel_share" (N, C): the
    fraction of sum |IG| in each channel}.
    """
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(xt), dim=1)
    target_t = probs.argmax(dim=1) if target is None else torch.as_tensor(np.asarray(target))
    ig = integrated_gradients(model, xt, target_t, steps)
    magnitude = np.abs(ig).sum(axis=(2, 3))
    share = magnitude / np.maximum(magnitude.sum(axis=1, keepdims=True), 1e-30)
    return {
        "probs": probs.numpy(),
        "target": target_t.numpy(),
        "grad_cam": grad_cam(model, xt.clone(), target_t),
        "integrated_gradients": ig,
        "channel_share": share,
    }


def attribute_test_images(
    checkpoint_path, image_paths: dict, residual_paths: dict | None, split_path, per_class: int
) -> dict:
    """Attributions of a checkpoint on test images: all of them for the per-class channel shares,
    and the first `per_class` test images of each class for the maps.

    image_paths / residual_paths: class name -> file, in class order. Returns the dict of
    `attribute` for the shown images plus "index", "labels", "channels", "class_names", "raw"
    (n, C, H, W) un-normalised inputs, "share_by_class" {class: (C,) mean channel share over all of
    that class's test images} and "accuracy_by_class".
    """
    from darklens.io.split_file import read_split
    from darklens.learning.batches import normalise
    from darklens.learning.checkpoint import load_checkpoint, load_model
    from darklens.learning.dataset import load_training_set

    checkpoint = load_checkpoint(checkpoint_path)
    channels = list(checkpoint["channels"])
    class_names = list(checkpoint["class_names"])
    if list(image_paths) != class_names:
        raise ValueError(f"class files {list(image_paths)} differ from the model's {class_names}")
    x_raw, y, counts = load_training_set(image_paths, residual_paths, channels)
    test = read_split(split_path, counts)["test"]
    x = normalise(x_raw[test], checkpoint["norm_mean"], checkpoint["norm_std"])
    model = load_model(checkpoint, torch.device("cpu"))
    full = attribute(model, x, steps=16)
    shown = np.concatenate([np.flatnonzero(y[test] == k)[:per_class] for k in range(len(counts))])
    result = attribute(model, x[shown])
    result.update(
        index=test[shown],
        labels=y[test][shown],
        channels=channels,
        class_names=class_names,
        raw=x_raw[test][shown],
        share_by_class={
            name: full["channel_share"][y[test] == k].mean(axis=0)
            for k, name in enumerate(class_names)
        },
        accuracy_by_class={
            name: float(np.mean(full["probs"][y[test] == k].argmax(axis=1) == k))
            for k, name in enumerate(class_names)
        },
    )
    return result
