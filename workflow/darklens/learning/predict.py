"""Class probabilities of raw images from a checkpoint written by `train.train`.

The checkpoint carries everything needed: architecture, input channels and residual smoothing,
training-split normalisation, image size and class names, so callers pass plain (N, H, W) images.
`predict_file` (the `darklens predict` command) reads an HDF5 file, a `.npy` stack or a folder of
`.npy` images in checked chunks (`io.image_stacks`) and writes one CSV row per image; any problem
is a ValueError of one line and no output is written.
"""

from __future__ import annotations

import numpy as np
import torch

from darklens.io.image_stacks import input_chunks
from darklens.io.tables import write_csv
from darklens.learning.batches import normaliser
from darklens.learning.channels import build_channels
from darklens.learning.checkpoint import load_checkpoint, load_model
from darklens.learning.train import predict_logits, resolve_device


def predict_images(
    checkpoint: dict, images, device: str = "auto", batch_size: int = 256
) -> np.ndarray:
    """Class probabilities (N, n_classes), float32, of raw (N, H, W) images (rows sum to 1).

    Columns follow checkpoint["class_names"]. The channels, residual smoothing and normalisation
    are the checkpoint's own.
    """
    torch_device = resolve_device(device)
    return _probabilities(checkpoint, load_model(checkpoint, torch_device), images, batch_size)


def predict_file(
    checkpoint_path,
    input_path,
    output_path,
    device: str = "auto",
    batch_size: int = 256,
    allow_pickle: bool = False,
    dataset: str | None = None,
) -> dict[str, int]:
    """Write `output_path`: one row per image of `input_path` (index, source, prob_<class>...,
    pred, pred_name). Returns {class name: number of images predicted as it}."""
    checkpoint = load_checkpoint(checkpoint_path)
    model = load_model(checkpoint, resolve_device(device))
    names = list(checkpoint["class_names"])
    columns = ["index", "source", *[f"prob_{c}" for c in names], "pred", "pred_name"]
    counts = dict.fromkeys(names, 0)

    def rows():
        """The CSV rows, chunk by chunk (the input is never in memory whole)."""
        index = 0
        chunks = input_chunks(input_path, checkpoint["image_size"], allow_pickle, dataset)
        for sources, images in chunks:
            probs = _probabilities(checkpoint, model, images, batch_size)
            for source, p in zip(sources, probs, strict=True):
                pred = int(p.argmax())
                counts[names[pred]] += 1
                yield {
                    "index": index,
                    "source": source,
                    **{f"prob_{c}": f"{v:.9g}" for c, v in zip(names, p, strict=True)},
                    "pred": pred,
                    "pred_name": names[pred],
                }
                index += 1
        if index == 0:
            raise ValueError(f"input {input_path} holds no images")

    write_csv(output_path, rows(), columns)
    return counts


def _probabilities(checkpoint: dict, model, images, batch_size: int) -> np.ndarray:
    images = np.asarray(images)
    size = checkpoint["image_size"]
    if images.ndim != 3:
        raise ValueError(
            f"images must be (N, H, W) = (N, {size}, {size}), got shape {images.shape}"
        )
    if images.shape[1:] != (size, size):
        raise ValueError(
            f"images are {images.shape[1]}x{images.shape[2]} px but the model expects {size}x{size}"
        )
    if not np.issubdtype(images.dtype, np.number) or not np.isfinite(images).all():
        raise ValueError("images must be finite numbers (found NaN/inf or a non-numeric dtype)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_classes = len(checkpoint["class_names"])
    if images.shape[0] == 0:
        return np.zeros((0, n_classes), dtype=np.float32)

    device = next(model.parameters()).device
    x = build_channels(images, checkpoint["channels"], checkpoint["smoothing_sigma_px"])
    norm = normaliser(checkpoint["norm_mean"], checkpoint["norm_std"], device)
    data = torch.from_numpy(x).to(device)
    logits = predict_logits(model, data, batch_size, norm)
    return torch.softmax(logits, dim=1).cpu().numpy()
