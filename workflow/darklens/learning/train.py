"""Train one classifier on prepared channels and write its checkpoint, history and test predictions.

`train` is one loop that reads top to bottom (after nanoGPT's train.py): set up, resume if an
interrupted run left its state, then per epoch train on the training split and score on the
validation split, and at the end score the best epoch on the test split and write the outputs.
The data stays one raw (N, C, H, W) array; `batches.epoch_batches` draws each epoch's seeded
permutation, normalises and flips batch by batch.

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
import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from darklens import CLASS_NAMES, __version__
from darklens.evaluation.metrics import classification_metrics
from darklens.io.image_stacks import CHUNK_IMAGES
from darklens.io.split_file import SPLITS, read_split
from darklens.io.tables import write_csv, write_metrics, write_predictions
from darklens.learning.batches import (
    channel_stats,
    epoch_batches,
    normalise_batch,
    normaliser,
    to_device,
)
from darklens.learning.channels import CHANNELS
from darklens.learning.checkpoint import (
    CHECKPOINT_FILE,
    RESUME_FILE,
    cpu_state,
    read_resume,
    rng_states,
    set_rng_states,
    write_checkpoint,
    write_resume,
)
from darklens.learning.dataset import class_paths, load_training_set
from darklens.learning.models import build_model, count_parameters

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint as a dict)."""

    architecture: str = "plain_cnn"  # a key of models.ARCHITECTURES
    channels: list[str] = field(default_factory=lambda: ["image"])  # see channels.CHANNELS
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


def config_from_spec(
    spec: dict,
    training: dict,
    seed: int,
    threads: int,
    class_names: list[str],
    smoothing_sigma_px: float | None,
) -> TrainConfig:
    """The TrainConfig of one model of config.yaml: `spec` is training.models[model], `training`
    the training section's hyperparameters. The smoothing is kept only with a residual channel."""
    return TrainConfig(
        architecture=spec["architecture"],
        channels=list(spec["channels"]),
        augment_flips=bool(spec.get("augment_flips", False)),
        epochs=training["epochs"],
        batch_size=training["batch_size"],
        learning_rate=training["learning_rate"],
        weight_decay=training["weight_decay"],
        seed=seed,
        device=training["device"],
        threads=threads,
        class_names=class_names,
        smoothing_sigma_px=smoothing_sigma_px if "residual" in spec["channels"] else None,
        mixed_precision=bool(training.get("mixed_precision", True)),
    )


def train_from_files(
    images: list,
    residuals: list | None,
    split_path,
    spec: dict,
    training: dict,
    seed: int,
    threads: int,
    smoothing_sigma_px: float | None,
    out_dir,
    log: Callable[[str], None] = print,
) -> dict:
    """`darklens train`: read the class files (named {class}.h5, in class order), their features
    files (same order; None without a residual channel) and the split file, then `train`."""
    image_paths, residual_paths = class_paths(images, residuals)
    x, y, counts = load_training_set(image_paths, residual_paths, spec["channels"])
    split = read_split(split_path, counts)
    class_names = [Path(p).stem for p in images]
    cfg = config_from_spec(spec, training, seed, threads, class_names, smoothing_sigma_px)
    return train(x, y, split, cfg, Path(out_dir), log=log)


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


@dataclass
class _Run:
    """What the loop works on, made once by `_set_up`."""

    device: torch.device
    amp_dtype: torch.dtype | None  # of the training steps; None: fp32
    model: torch.nn.Module
    layout: torch.memory_format
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    shuffle_gen: torch.Generator  # the order of training images, epoch by epoch
    flip_rng: np.random.Generator  # the flips of training images
    data: torch.Tensor  # the raw (N, C, H, W) array on the device
    labels: torch.Tensor
    index: dict[str, torch.Tensor]  # split -> rows (validation and test rows on the device)
    mean: list[float]  # per-channel statistics of the training split
    std: list[float]
    norm: tuple[torch.Tensor, torch.Tensor]  # mean and std on the device


def train(x, y, split: dict, cfg: TrainConfig, out_dir, log: Callable[[str], None] = print) -> dict:
    """Train `cfg.architecture` on x[split["train"]], select on "val", score on "test".

    x: (N, C, H, W) float array of prepared channels (channels.build_channels, cfg.channels order).
    y: (N,) integer labels indexing cfg.class_names.
    split: {"train", "val", "test"} -> disjoint, non-empty index arrays into x.
    Resumes from out_dir/resume.pt when it holds an interrupted run of the same config and data.
    Returns the dict written to metrics.json.
    """
    x, y, split = _check_inputs(x, y, split, cfg)
    out_dir = Path(out_dir)
    run = _set_up(x, y, split, cfg, log)
    identity = {
        "config": asdict(cfg),
        "device": run.device.type,
        "data": data_fingerprint(x, y, split),
    }
    history, best = _resume(run, out_dir / RESUME_FILE, identity, cfg.epochs, log)

    for epoch in range(len(history) + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        train_loss, train_acc = _train_epoch(run, cfg)
        val_loss, val_acc = _evaluate(run, "val", cfg.batch_size)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        log(
            f"epoch {epoch:3d}  train loss {train_loss:.4f} acc {train_acc:.3f}  "
            f"val loss {val_loss:.4f} acc {val_acc:.3f}  {row['seconds']:.1f}s"
        )
        if best is None or (val_acc, -val_loss) > (best["val_acc"], -best["val_loss"]):
            best = {
                "epoch": epoch,
                "val_acc": val_acc,
                "val_loss": val_loss,
                "model": cpu_state(run.model),
                "optimizer": copy.deepcopy(run.optimizer.state_dict()),
                "rng": rng_states(run.shuffle_gen, run.flip_rng, run.device),
            }
        resume = {
            "identity": identity,
            "epoch": epoch,
            "model": cpu_state(run.model),
            "optimizer": run.optimizer.state_dict(),
            "scaler": run.scaler.state_dict(),
            "rng": rng_states(run.shuffle_gen, run.flip_rng, run.device),
            "history": history,
            "best": best,
        }
        write_resume(out_dir / RESUME_FILE, resume)

    # training is over: restore the best epoch, then (and only then) look at the test split
    run.model.load_state_dict(best["model"])
    probs = torch.softmax(_logits(run, "test", cfg.batch_size), dim=1).cpu().numpy()
    y_test = y[split["test"]]
    metrics = _test_metrics(run, cfg, best, y_test, probs)
    log(
        f"best epoch {best['epoch']} (val acc {best['val_acc']:.3f}); test acc "
        f"{metrics['accuracy']:.3f}, macro AUC {_fmt(metrics['auc_macro_ovr'])}"
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    write_checkpoint(
        out_dir / CHECKPOINT_FILE, best, asdict(cfg), x.shape[1], x.shape[-1], run.mean, run.std
    )
    write_csv(out_dir / "history.csv", history, HISTORY_COLUMNS)
    write_predictions(out_dir / "predictions.csv", split["test"], y_test, probs, cfg.class_names)
    write_metrics(out_dir / "metrics.json", metrics)
    # Kept (without the last epoch's model) so that a rerun whose outputs were lost or not
    # recorded, e.g. after only the snakemake process was killed, rewrites them without training.
    finished = {"identity": identity, "epoch": len(history), "finished": True}
    write_resume(out_dir / RESUME_FILE, {**finished, "history": history, "best": best})
    return metrics


def _set_up(x, y, split: dict, cfg: TrainConfig, log) -> _Run:
    """Device, seeds, data on the device, model and optimizer, in the order that fixes the
    random numbers of a seed (the model's initial weights come from torch's global generator)."""
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
    index = {name: torch.from_numpy(split[name]) for name in SPLITS}
    index["val"], index["test"] = index["val"].to(device), index["test"].to(device)

    model = build_model(cfg.architecture, x.shape[1], len(cfg.class_names), x.shape[-1])
    layout = memory_format(device, model)
    model = model.to(device, memory_format=layout)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    precision = "fp32" if amp_dtype is None else f"autocast {str(amp_dtype).split('.')[-1]}"
    log(
        f"{cfg.architecture} ({count_parameters(model)} parameters) on {device} ({precision}), "
        f"channels {cfg.channels}, n_train {len(split['train'])}, n_val {len(split['val'])}, "
        f"flips {cfg.augment_flips}"
    )
    return _Run(
        device=device,
        amp_dtype=amp_dtype,
        model=model,
        layout=layout,
        optimizer=optimizer,
        scaler=scaler,
        shuffle_gen=shuffle_gen,
        flip_rng=flip_rng,
        data=to_device(x, device),
        labels=torch.from_numpy(y).to(device),
        index=index,
        mean=mean,
        std=std,
        norm=normaliser(mean, std, device),
    )


def _resume(run: _Run, path: Path, identity: dict, epochs: int, log) -> tuple[list, dict | None]:
    """(history, best epoch so far) of an interrupted run of this very config and data, its
    model, optimizer, scaler and random states restored; ([], None) when there is none."""
    state = read_resume(path, identity, log)
    if state is None:
        return [], None
    if state.get("finished"):
        log(f"{path.name}: this run finished after epoch {state['epoch']}; rewriting its outputs")
        return state["history"], state["best"]
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scaler.load_state_dict(state["scaler"])
    set_rng_states(state["rng"], run.shuffle_gen, run.flip_rng, run.device)
    log(f"resumed from {path.name} after epoch {state['epoch']} of {epochs}")
    return state["history"], state["best"]


def _train_epoch(run: _Run, cfg: TrainConfig) -> tuple[float, float]:
    """One pass over the training split; returns its mean loss and accuracy (as trained, batch by
    batch). Losses and counts are summed on the device: one synchronisation per epoch."""
    run.model.train()
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device, dtype=torch.long)
    flip_rng = run.flip_rng if cfg.augment_flips else None
    batches = epoch_batches(
        run.data,
        run.labels,
        run.index["train"],
        cfg.batch_size,
        run.norm,
        run.shuffle_gen,
        flip_rng,
        run.layout,
    )
    for xb, yb in batches:
        loss, n_correct = train_step(run.model, run.optimizer, run.scaler, run.amp_dtype, xb, yb)
        loss_sum += loss * len(yb)
        correct += n_correct
    n_train = len(run.index["train"])
    return loss_sum.item() / n_train, correct.item() / n_train


def _logits(run: _Run, split_name: str, batch_size: int) -> torch.Tensor:
    """fp32 logits of the model in eval mode on a split's rows."""
    index = run.index[split_name]
    return predict_logits(run.model, run.data, batch_size, run.norm, index, run.layout)


def _evaluate(run: _Run, split_name: str, batch_size: int) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model on a split."""
    logits = _logits(run, split_name, batch_size)
    labels = run.labels[run.index[split_name]]
    n = len(labels)
    loss = F.cross_entropy(logits, labels, reduction="sum").item() / n
    return loss, (logits.argmax(1) == labels).sum().item() / n


def _test_metrics(run: _Run, cfg: TrainConfig, best: dict, y_test, probs) -> dict:
    """metrics.json: the test-split metrics of the best epoch and what identifies the run."""
    metrics = classification_metrics(y_test, probs, cfg.class_names)
    metrics.update(
        model=cfg.architecture,
        channels=list(cfg.channels),
        seed=cfg.seed,
        best_epoch=best["epoch"],
        best_val_acc=best["val_acc"],
        best_val_loss=best["val_loss"],
        n_train=len(run.index["train"]),
        n_val=len(run.index["val"]),
        n_test=len(y_test),
        n_parameters=count_parameters(run.model),
        darklens_version=__version__,
    )
    return metrics


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
