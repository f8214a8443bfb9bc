"""Class probabilities of raw images from a checkpoint written by `train.train`.

The checkpoint carries everything needed: architecture, input channels and residual smoothing,
training-split normalisation, image size and class names, so callers pass plain (N, H, W) images.
`predict_file` (the `darklens predict` command) reads an HDF5 file, a `.npy` stack, a folder of
`.npy` images or a folder of class folders (labelled: metrics are computed) in checked chunks
(`io.image_stacks`) and writes one CSV row per image; any problem is a ValueError of one line and
no output is written. Inputs whose statistics lie far from the checkpoint's training normalisation
(e.g. raw counts fed to a model trained in counts/s) get one logged warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from darklens.evaluation.metrics import classification_metrics
from darklens.features.channels import channels_for_new_images
from darklens.io.image_stacks import class_folders, input_chunks, labelled_chunks
from darklens.io.npy import counts_per_s_divisor
from darklens.io.tables import write_csv
from darklens.learning.batches import normaliser
from darklens.learning.checkpoint import load_checkpoint, load_model
from darklens.learning.train import predict_logits, resolve_device

log = logging.getLogger(__name__)

FAR_SIGMA = 10.0  # warn when the inputs' mean lies this many training stds from the training mean


class PredictionSummary(dict):
    """{class name: number of images predicted as it} (what `predict_file` returned before),
    with `metrics`: `classification_metrics` of a labelled input (folder of class folders), else
    None, and `far_channels`: the channels whose input mean lay far from the training mean."""

    metrics: dict | None = None
    far_channels: tuple[str, ...] | list[str] = ()


def predict_images(
    checkpoint: dict,
    images,
    device: str = "auto",
    batch_size: int = 256,
    instrument: dict | None = None,
    fitting: dict | None = None,
) -> np.ndarray:
    """Class probabilities (N, n_classes), float32, of raw (N, H, W) images (rows sum to 1).

    Columns follow checkpoint["class_names"]. The channels, residual smoothing and normalisation
    are the checkpoint's own; a lens-model channel (fit_residual, source_plane, source_residual)
    fits the smooth lens model to the images first, which needs their `instrument` section (and
    `fitting` settings, defaults otherwise); an oracle_residual model is refused
    (`darklens.features.channels.channels_for_new_images`).
    """
    torch_device = resolve_device(device)
    model = load_model(checkpoint, torch_device)
    lens = {"instrument": instrument, "fitting": fitting}
    return _probabilities(checkpoint, model, images, batch_size, lens=lens)


def predict_file(
    checkpoint_path,
    input_path,
    output_path,
    device: str = "auto",
    batch_size: int = 256,
    allow_pickle: bool = False,
    dataset: str | None = None,
    units: str = "counts_per_s",
    exposure_time_s: float | None = None,
    instrument: dict | None = None,
    fitting: dict | None = None,
) -> PredictionSummary:
    """Write `output_path`: one row per image of `input_path` (index, source, prob_<class>...,
    pred, pred_name, and true_class, label for a folder of class folders). Returns the counts per
    predicted class (`PredictionSummary`, with the metrics of a labelled input).

    The metrics (accuracy, recall per class) of a labelled input and a warning on inputs far from
    the training normalisation are logged to the `darklens.learning.predict` logger. Inputs in
    raw counts (`units` "counts", e.g. DeepLense's) are divided by `exposure_time_s` first, as
    their import for training is. `instrument`, `fitting`: for a lens-model channel, as
    `predict_images`."""
    _check_output(checkpoint_path, input_path, output_path)
    divisor = counts_per_s_divisor(units, exposure_time_s)
    checkpoint = load_checkpoint(checkpoint_path)
    model = load_model(checkpoint, resolve_device(device))
    names = list(checkpoint["class_names"])
    size = checkpoint["image_size"]
    folders = class_folders(input_path, names)
    columns = ["index", "source", *[f"prob_{c}" for c in names], "pred", "pred_name"]
    if folders:
        columns += ["true_class", "label"]
        chunks = labelled_chunks(folders, size, allow_pickle)
    else:
        plain = input_chunks(input_path, size, allow_pickle, dataset)
        chunks = ((sources, images, None) for sources, images in plain)
    summary = PredictionSummary(dict.fromkeys(names, 0))
    channel_sums = np.zeros(len(checkpoint["channels"]), dtype=np.float64)
    all_labels, all_probs = [], []

    def rows():
        """The CSV rows, chunk by chunk (the input is never in memory whole)."""
        index = 0
        for sources, images, labels in chunks:
            if divisor != 1.0:
                images = images / np.float32(divisor)
            lens = {"instrument": instrument, "fitting": fitting}
            probs = _probabilities(checkpoint, model, images, batch_size, channel_sums, lens)
            if labels is not None:
                all_labels.append(labels)
                all_probs.append(probs)
            for k, (source, p) in enumerate(zip(sources, probs, strict=True)):
                pred = int(p.argmax())
                summary[names[pred]] += 1
                row = {
                    "index": index,
                    "source": source,
                    **{f"prob_{c}": f"{v:.9g}" for c, v in zip(names, p, strict=True)},
                    "pred": pred,
                    "pred_name": names[pred],
                }
                if labels is not None:
                    row |= {"true_class": names[labels[k]], "label": int(labels[k])}
                yield row
                index += 1
        if index == 0:
            hint = ""
            if Path(input_path).is_dir():
                hint = f" (no .npy files, nor class folders {', '.join(f'{c}/' for c in names)})"
            raise ValueError(f"input {input_path} holds no images{hint}")

    write_csv(output_path, rows(), columns)
    n_images = sum(summary.values())
    summary.far_channels = _warn_if_far(checkpoint, channel_sums / n_images, input_path)
    if folders:
        summary.metrics = classification_metrics(
            np.concatenate(all_labels), np.concatenate(all_probs), names
        )
        log.info(_metrics_line(output_path, summary.metrics))
    return summary


def _metrics_line(output_path, metrics: dict) -> str:
    """One line: accuracy and recall per class of a labelled input."""
    recalls = ", ".join(
        f"{name} {_fmt(metrics[f'recall_{name}'])}" for name in metrics["class_names"]
    )
    return (
        f"{output_path}: {metrics['n']} labelled images, accuracy {metrics['accuracy']:.4f}, "
        f"recall {recalls}, AUC (macro OvR) {_fmt(metrics['auc_macro_ovr'])}"
    )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _check_output(checkpoint_path, input_path, output_path) -> None:
    """ValueError (one line) if the output would overwrite an input file or the checkpoint, or
    would be a .npy file inside an input folder (it would be read as an image next time)."""
    output = Path(output_path)
    for role, other in (("input", Path(input_path)), ("checkpoint", Path(checkpoint_path))):
        if _same_file(output, other):
            raise ValueError(
                f"output {output_path} is the {role} {other}: choose another --output "
                "(it would be overwritten)"
            )
    source = Path(input_path)
    if source.is_dir():
        folder = source.resolve()
        parent = output.resolve().parent
        inside = parent == folder or parent.parent == folder
        if inside and output.suffix == ".npy":
            raise ValueError(
                f"output {output_path} is a .npy file inside the input folder {input_path}: "
                "choose another --output (it would overwrite or become an input image)"
            )


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (after symlinks; hard links too when both exist)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _warn_if_far(checkpoint: dict, means: np.ndarray, input_path) -> list[str]:
    """Log one warning if a channel's mean over the inputs' per-image means lies more than
    FAR_SIGMA training stds from the training mean; returns the names of such channels."""
    far, parts = [], []
    for name, m, mu, sd in zip(
        checkpoint["channels"], means, checkpoint["norm_mean"], checkpoint["norm_std"], strict=True
    ):
        z = abs(m - mu) / sd if sd > 0 else (0.0 if m == mu else np.inf)
        if z > FAR_SIGMA:
            far.append(name)
            parts.append(f"{name} mean {m:.4g} vs training {mu:.4g} +- {sd:.4g} ({z:.3g} sigma)")
    if far:
        log.warning(
            "input %s lies far from the training normalisation: %s; predictions are unreliable "
            "(are the images in the training units, e.g. counts/s rather than counts?)",
            input_path,
            "; ".join(parts),
        )
    return far


def lens_settings(checkpoint: dict, given: dict | None) -> dict:
    """The instrument, fitting settings and lens-light switch of a lens-model channel's fit of
    new images: those given (the command line's), else the ones the model's training data was
    fitted with (stored in the checkpoint), else none."""
    stored = checkpoint.get("config", {}).get("lens_model_settings") or {}
    given = {key: value for key, value in (given or {}).items() if value is not None}
    keys = ("instrument", "fitting", "lens_light")
    return {key: given.get(key, stored.get(key)) for key in keys if key in given or key in stored}


def _probabilities(
    checkpoint: dict,
    model,
    images,
    batch_size: int,
    channel_sums: np.ndarray | None = None,
    lens: dict | None = None,
) -> np.ndarray:
    """Class probabilities of raw images; adds the sum over images of each image's per-channel
    mean to `channel_sums` when given. `lens`: {"instrument", "fitting"} of a lens-model
    channel."""
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
    x = channels_for_new_images(
        images,
        checkpoint["channels"],
        smoothing_sigma_px=checkpoint["smoothing_sigma_px"],
        **lens_settings(checkpoint, lens),
    )
    if channel_sums is not None:
        channel_sums += x.mean(axis=(2, 3), dtype=np.float64).sum(axis=0)
    norm = normaliser(checkpoint["norm_mean"], checkpoint["norm_std"], device)
    data = torch.from_numpy(x).to(device)
    logits = predict_logits(model, data, batch_size, norm)
    return torch.softmax(logits, dim=1).cpu().numpy()
