"""Train one classifier on prepared channels and write its checkpoint, history and test predictions.

`train` is one loop that reads top to bottom (after nanoGPT's train.py). The raw (N, C, H, W) array
is the data set: on the CPU it is used in place (no copy), on CUDA it is copied once to the device.
Each epoch draws a seeded permutation of the training indices; `epoch_batches` gathers each batch
with one index_select, normalises it with the training split's per-channel mean and std, and flips
it (when enabled) with a seeded numpy Generator. No per-image Python, no worker processes: the loop
never waits for data (benchmarks/training.py measures it against a per-item DataLoader).

After each epoch the model is scored on the validation split; the best epoch by validation accuracy
(ties: lower validation loss) is kept. The test split is touched only once, after training, with
the best model.

On CUDA: channels-last memory format, and mixed precision (bf16 autocast, or fp16 with loss
scaling where bf16 is missing) for the training steps when `mixed_precision`; evaluation is fp32.
On the CPU, runs are bit-for-bit reproducible for a given seed and thread count.

Interruption: after every epoch the complete state (model, optimizer, loss scaler, RNG states,
history, best epoch so far) is written atomically to `<out_dir>/resume.pt`. A later call with the
same config and the same data resumes after the last finished epoch and ends with results identical
to an uninterrupted run; a resume file from another config or other data is ignored. It is deleted
once the run has finished.

Outputs in out_dir, each written atomically: checkpoint.pt, history.csv, predictions.csv,
metrics.json (written last, so its presence means the run finished).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from darklens import CLASS_NAMES, __version__
from darklens.evaluation.metrics import classification_metrics
from darklens.io.atomic import atomic_path
from darklens.learning.channels import CHANNELS
from darklens.learning.models import build_model, count_parameters

SPLITS = ("train", "val", "test")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
RESUME_FILE = "resume.pt"
CHUNK_IMAGES = 1024  # images per chunk when scanning the whole array (bounded temporaries)


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint as a dict)."""

    architecture: str = "plain_cnn"  # a key of models.ARCHITECTURES
    channels: list[str] = field(default_factory=lambda: ["image"])  # see features.CHANNELS
    augment_flips: bool = False  # random horizontal/vertical flips of training batches
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3  # Adam step size
    weight_decay: float = 0.0  # Adam L2 penalty
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    threads: int = 1  # torch CPU threads
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    smoothing_sigma_px: float | None = None  # residual smoothing used to build x, unit: pixels
    mixed_precision: bool = True  # CUDA only: autocast training steps (bf16, else fp16)


def resolve_device(device: str) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cpu" / "cuda" as asked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


def autocast_dtype(device: torch.device, mixed_precision: bool) -> torch.dtype | None:
    """The autocast dtype of training steps: None (fp32) on the CPU or when disabled."""
    if device.type != "cuda" or not mixed_precision:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def memory_format(
    device: torch.device, model: torch.nn.Module | None = None
) -> torch.memory_format:
    """channels-last (tensor cores on CUDA; oneDNN's vectorised convolution, batch-norm and pooling
    kernels on the CPU), except for models holding 5-D tensors (group convolutions), which PyTorch
    cannot lay out channels-last. `device` is kept for callers: the choice is the same on both."""
    tensors = [*model.parameters(), *model.buffers()] if model is not None else []
    if any(t.dim() == 5 for t in tensors):
        return torch.contiguous_format
    return torch.channels_last


def channel_stats(x: np.ndarray, index=None) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of x[index] ((N, C, H, W); all rows by default), in float64.

    Two passes over chunks of CHUNK_IMAGES images, so no temporary of the array's size is made.
    A constant channel gets std 1.
    """
    index = np.arange(len(x)) if index is None else np.asarray(index)
    chunks = [index[i : i + CHUNK_IMAGES] for i in range(0, len(index), CHUNK_IMAGES)]
    count = len(index) * x.shape[2] * x.shape[3]
    total = sum(x[rows].sum(axis=(0, 2, 3), dtype=np.float64) for rows in chunks)
    mean = total / count
    squares = sum(
        np.square(x[rows].astype(np.float64) - mean[None, :, None, None]).sum(axis=(0, 2, 3))
        for rows in chunks
    )
    std = np.sqrt(squares / count)
    std = np.where(std > 0, std, 1.0)
    return mean.tolist(), std.tolist()


def normaliser(mean, std, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as float32 (1, C, 1, 1) tensors on `device`, for `normalise_batch`."""
    shape = (1, len(mean), 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(shape)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(shape)
    return mean_t, std_t


def normalise_batch(xb: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """(xb - mean) / std per channel of a raw (B, C, H, W) batch (what training and prediction
    apply)."""
    mean_t, std_t = norm
    return (xb - mean_t) / std_t


def normalise(x: np.ndarray, mean, std) -> np.ndarray:
    """(x - mean) / std per channel of (N, C, H, W) x, as float32 (numpy twin of
    normalise_batch, equal to it within float32 rounding)."""
    mean = np.asarray(mean, dtype=np.float64)[None, :, None, None]
    std = np.asarray(std, dtype=np.float64)[None, :, None, None]
    return ((x - mean) / std).astype(np.float32)


def random_flips(xb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Flip each image of a (B, C, H, W) batch left-right and up-down, each with probability 1/2."""
    b = xb.shape[0]
    flips = torch.from_numpy(rng.random(2 * b) < 0.5).to(xb.device)
    return flip_batch(xb, flips[:b], flips[b:])


def flip_batch(xb: torch.Tensor, left_right: torch.Tensor, up_down: torch.Tensor) -> torch.Tensor:
    """Flip the images of a (B, C, H, W) batch where the (B,) boolean masks say so."""
    b = xb.shape[0]
    xb = torch.where(left_right.view(b, 1, 1, 1), xb.flip(-1), xb)
    return torch.where(up_down.view(b, 1, 1, 1), xb.flip(-2), xb)


def to_device(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """The (N, C, H, W) float32 array as a tensor: shared with numpy on the CPU, else copied in
    chunks (no second host copy)."""
    if device.type == "cpu":
        return torch.from_numpy(x)
    data = torch.empty(x.shape, dtype=torch.float32, device=device)
    for start in range(0, len(x), CHUNK_IMAGES):
        data[start : start + CHUNK_IMAGES].copy_(torch.from_numpy(x[start : start + CHUNK_IMAGES]))
    return data


def epoch_batches(
    data: torch.Tensor,
    labels: torch.Tensor,
    index: torch.Tensor,
    batch_size: int,
    norm: tuple[torch.Tensor, torch.Tensor],
    shuffle_gen: torch.Generator,
    flip_rng: np.random.Generator | None,
    layout: torch.memory_format = torch.contiguous_format,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch of training batches: rows `index` of raw `data` in a seeded random order,
    normalised, flipped when `flip_rng` is given, in memory format `layout`.

    The flips of the whole epoch are drawn from `flip_rng` in one call (the same numbers in the
    same order as `random_flips` batch by batch: b left-right draws, then b up-down draws) and
    copied to the device once, so nothing inside the epoch waits for the device.
    """
    order = index[torch.randperm(len(index), generator=shuffle_gen)].to(data.device)
    flips = None
    if flip_rng is not None:
        flips = torch.from_numpy(flip_rng.random(2 * len(order)) < 0.5).to(data.device)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        xb = normalise_batch(data.index_select(0, rows), norm)
        if flips is not None:
            b, first = len(rows), 2 * start
            xb = flip_batch(xb, flips[first : first + b], flips[first + b : first + 2 * b])
        yield xb.contiguous(memory_format=layout), labels.index_select(0, rows)


def train_step(model, optimizer, scaler, amp_dtype, xb, yb) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step; returns the (detached) mean loss and the number of correct labels."""
    autocast = (
        torch.autocast(xb.device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )
    with autocast:
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach().float(), (logits.argmax(1) == yb).sum()


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module,
    data: torch.Tensor,
    batch_size: int,
    norm: tuple[torch.Tensor, torch.Tensor] | None = None,
    index: torch.Tensor | None = None,
    layout: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """fp32 logits of rows `index` (default: all) of (N, C, H, W) `data`, normalised per batch
    with `norm` when given, in eval mode; restores the previous mode."""
    was_training = model.training
    model.eval()
    n = data.shape[0] if index is None else len(index)
    out = []
    for start in range(0, n, batch_size):
        xb = (
            data[start : start + batch_size]
            if index is None
            else data.index_select(0, index[start : start + batch_size])
        )
        if norm is not None:
            xb = normalise_batch(xb, norm)
        out.append(model(xb.contiguous(memory_format=layout)).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, 0))


def data_fingerprint(x: np.ndarray, y: np.ndarray, split: dict) -> str:
    """BLAKE2 digest of the images, labels and split (identifies the data of a resume file)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((x.shape, str(x.dtype))).encode())
    for start in range(0, len(x), CHUNK_IMAGES):
        digest.update(np.ascontiguousarray(x[start : start + CHUNK_IMAGES]).data)
    digest.update(np.ascontiguousarray(y, dtype=np.int64).data)
    for name in SPLITS:
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(split[name], dtype=np.int64).data)
    return digest.hexdigest()


def train(x, y, split: dict, cfg: TrainConfig, out_dir, log: Callable[[str], None] = print) -> dict:
    """Train `cfg.architecture` on x[split["train"]], select on "val", score on "test".

    x: (N, C, H, W) float array of prepared channels (features.build_channels, cfg.channels order).
    y: (N,) integer labels indexing cfg.class_names.
    split: {"train", "val", "test"} -> disjoint, non-empty index arrays into x.
    Resumes from out_dir/resume.pt when it holds an interrupted run of the same config and data.
    Returns the dict written to metrics.json.
    """
    x, y, split = _check_inputs(x, y, split, cfg)
    out_dir = Path(out_dir)
    device = resolve_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    if device.type == "cuda":  # deterministic cuDNN kernels (process-wide setting)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    torch.manual_seed(cfg.seed)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    flip_rng = np.random.default_rng(cfg.seed)
    amp_dtype = autocast_dtype(device, cfg.mixed_precision)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    # normalisation from the training split only, applied per batch; the raw data is used in place
    mean, std = channel_stats(x, split["train"])
    norm = normaliser(mean, std, device)
    data, labels = to_device(x, device), torch.from_numpy(y).to(device)
    index = {name: torch.from_numpy(split[name]) for name in SPLITS}
    val_index = index["val"].to(device)
    n_train, n_val = len(index["train"]), len(index["val"])

    image_size = x.shape[-1]
    model = build_model(cfg.architecture, x.shape[1], len(cfg.class_names), image_size)
    layout = memory_format(device, model)
    model = model.to(device, memory_format=layout)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    precision = "fp32" if amp_dtype is None else f"autocast {str(amp_dtype).split('.')[-1]}"
    log(
        f"{cfg.architecture} ({count_parameters(model)} parameters) on {device} ({precision}), "
        f"channels {cfg.channels}, n_train {n_train}, n_val {n_val}, flips {cfg.augment_flips}"
    )

    identity = {"config": asdict(cfg), "device": device.type, "data": data_fingerprint(x, y, split)}
    history: list[dict] = []
    best: dict | None = None
    state = _read_resume(out_dir / RESUME_FILE, identity, log)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_states(state["rng"], shuffle_gen, flip_rng, device)
        history, best = state["history"], state["best"]
        log(f"resumed from {RESUME_FILE} after epoch {state['epoch']} of {cfg.epochs}")

    for epoch in range(len(history) + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        batches = epoch_batches(
            data,
            labels,
            index["train"],
            cfg.batch_size,
            norm,
            shuffle_gen,
            flip_rng if cfg.augment_flips else None,
            layout,
        )
        for xb, yb in batches:
            loss, n_correct = train_step(model, optimizer, scaler, amp_dtype, xb, yb)
            loss_sum += loss * len(yb)
            correct += n_correct

        val_logits = predict_logits(model, data, cfg.batch_size, norm, val_index, layout)
        val_loss = F.cross_entropy(val_logits, labels[val_index], reduction="sum").item() / n_val
        val_acc = (val_logits.argmax(1) == labels[val_index]).sum().item() / n_val
        row = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / n_train,
            "train_acc": correct.item() / n_train,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        log(
            f"epoch {epoch:3d}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.3f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.3f}  {row['seconds']:.1f}s"
        )
        if best is None or (val_acc, -val_loss) > (best["val_acc"], -best["val_loss"]):
            best = {
                "epoch": epoch,
                "val_acc": val_acc,
                "val_loss": val_loss,
                "model": _cpu_state(model),
                "optimizer": copy.deepcopy(optimizer.state_dict()),
                "rng": _rng_states(shuffle_gen, flip_rng, device),
            }
        resume = {
            "identity": identity,
            "epoch": epoch,
            "model": _cpu_state(model),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": _rng_states(shuffle_gen, flip_rng, device),
            "history": history,
            "best": best,
        }
        with atomic_path(out_dir / RESUME_FILE) as tmp:
            torch.save(resume, tmp)

    # training is over: restore the best epoch, then (and only then) look at the test split
    model.load_state_dict(best["model"])
    test_index = index["test"].to(device)
    logits = predict_logits(model, data, cfg.batch_size, norm, test_index, layout)
    probs = torch.softmax(logits, dim=1).cpu().numpy()
    y_test = y[split["test"]]
    metrics = classification_metrics(y_test, probs, cfg.class_names)
    metrics.update(
        model=cfg.architecture,
        channels=list(cfg.channels),
        seed=cfg.seed,
        best_epoch=best["epoch"],
        best_val_acc=best["val_acc"],
        best_val_loss=best["val_loss"],
        n_train=n_train,
        n_val=n_val,
        n_test=len(y_test),
        n_parameters=count_parameters(model),
        darklens_version=__version__,
    )
    log(
        f"best epoch {best['epoch']} (val acc {best['val_acc']:.3f}); test acc "
        f"{metrics['accuracy']:.3f}, macro AUC {_fmt(metrics['auc_macro_ovr'])}"
    )

    checkpoint = {
        "model_state": best["model"],
        "architecture": cfg.architecture,
        "in_channels": int(x.shape[1]),
        "channels": list(cfg.channels),
        "class_names": list(cfg.class_names),
        "image_size": int(image_size),
        "norm_mean": mean,
        "norm_std": std,
        "smoothing_sigma_px": cfg.smoothing_sigma_px,
        "epoch": best["epoch"],
        "best_val_acc": best["val_acc"],
        "best_val_loss": best["val_loss"],
        "config": asdict(cfg),
        "darklens_version": __version__,
        "optimizer_state": best["optimizer"],
        "rng_state": best["rng"],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "checkpoint.pt") as tmp:
        torch.save(checkpoint, tmp)
    _write_csv(out_dir / "history.csv", HISTORY_COLUMNS, history)
    _write_predictions(out_dir / "predictions.csv", split["test"], y_test, probs, cfg.class_names)
    with atomic_path(out_dir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    (out_dir / RESUME_FILE).unlink(missing_ok=True)
    return metrics


def prediction_columns(class_names) -> list[str]:
    """Columns of predictions.csv."""
    return [
        "index",
        "label",
        "label_name",
        *[f"prob_{c}" for c in class_names],
        "pred",
        "pred_name",
    ]


def _write_predictions(path: Path, index, labels, probs, class_names) -> None:
    pred = probs.argmax(axis=1)
    rows = [
        {
            "index": int(i),
            "label": int(t),
            "label_name": class_names[t],
            **{f"prob_{c}": f"{p[k]:.9g}" for k, c in enumerate(class_names)},
            "pred": int(q),
            "pred_name": class_names[q],
        }
        for i, t, p, q in zip(index, labels, probs, pred, strict=True)
    ]
    _write_csv(path, prediction_columns(class_names), rows)


def _write_csv(path: Path, columns, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def _cpu_state(model: torch.nn.Module) -> dict:
    """A detached, contiguous CPU copy of the model's state (loads into any layout)."""
    return {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}


def _rng_states(shuffle_gen: torch.Generator, flip_rng: np.random.Generator, device) -> dict:
    states = {
        "torch": torch.get_rng_state(),
        "shuffle": shuffle_gen.get_state(),
        "numpy_flips": copy.deepcopy(flip_rng.bit_generator.state),
    }
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict, shuffle_gen, flip_rng, device) -> None:
    torch.set_rng_state(states["torch"])
    shuffle_gen.set_state(states["shuffle"])
    flip_rng.bit_generator.state = states["numpy_flips"]
    if device.type == "cuda":
        torch.cuda.set_rng_state_all(states["cuda"])


def _read_resume(path: Path, identity: dict, log) -> dict | None:
    """The state in a resume file, if it continues this very run; else None (and say why)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        log(f"ignoring {path.name}: not readable ({type(err).__name__}); starting afresh")
        return None
    if not isinstance(state, dict) or state.get("identity") != identity:
        log(f"ignoring {path.name}: written for another config or other data; starting afresh")
        return None
    return state


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _count_non_finite(x: np.ndarray) -> int:
    """Number of NaN/inf values, scanned in chunks (no full-size boolean temporary)."""
    return sum(
        int(np.count_nonzero(~np.isfinite(x[i : i + CHUNK_IMAGES])))
        for i in range(0, len(x), CHUNK_IMAGES)
    )


def _check_inputs(x, y, split, cfg: TrainConfig):
    """Validate and convert; every problem is a ValueError of one line."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float array, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, c, h, w = x.shape
    if h != w:
        raise ValueError(f"images must be square, got {h}x{w}")
    unknown = [name for name in cfg.channels if name not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {unknown} in cfg.channels; known: {list(CHANNELS)}")
    if "residual" in cfg.channels and cfg.smoothing_sigma_px is None:
        raise ValueError(
            "cfg.smoothing_sigma_px is needed (for prediction) with a residual channel"
        )
    if c != len(cfg.channels):
        raise ValueError(f"x has {c} channel(s) but cfg.channels is {cfg.channels}")
    non_finite = _count_non_finite(x)
    if non_finite:
        raise ValueError(f"x contains {non_finite} NaN/inf value(s)")
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must be ({n},) integer labels, got shape {y.shape}, dtype {y.dtype}")
    k = len(cfg.class_names)
    if n and (y.min() < 0 or y.max() >= k):
        raise ValueError(
            f"labels must be in [0, {k - 1}] ({cfg.class_names}), got {y.min()}..{y.max()}"
        )
    if set(split) != set(SPLITS):
        raise ValueError(f"split must have exactly the keys {list(SPLITS)}, got {sorted(split)}")
    split = {name: np.asarray(split[name]) for name in SPLITS}
    seen: set[int] = set()
    for name, idx in split.items():
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"split {name!r} must be a non-empty 1-d integer index array")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"split {name!r} has indices outside [0, {n - 1}]")
        if len(set(idx.tolist())) != idx.size:
            raise ValueError(f"split {name!r} has repeated indices")
        overlap = seen & set(idx.tolist())
        if overlap:
            raise ValueError(
                f"split {name!r} overlaps an earlier split in {len(overlap)} index(es)"
            )
        seen |= set(idx.tolist())
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.threads < 1:
        raise ValueError("epochs, batch_size and threads must all be >= 1")
    split = {name: idx.astype(np.int64) for name, idx in split.items()}
    return x, y.astype(np.int64), split
