"""Train one classifier on prepared channels and write its checkpoint, history and test predictions.

`train` is one loop that reads top to bottom (after nanoGPT's train.py): set up, resume if an
interrupted run left its state, then per epoch train on the training split and score on the
validation split, and at the end score the best epoch on the test split and write the outputs.
The data stays one raw (N, C, H, W) array; `batches.epoch_batches` draws each epoch's seeded
permutation, normalises and flips batch by batch.

After each epoch the model is scored on the validation split. One criterion, the validation loss
(mean cross-entropy), drives everything that looks at validation:
- the kept checkpoint is the epoch of lowest validation loss: an epoch *improves* when its loss is
  below the best so far by more than `min_delta`, and the last improving epoch is kept (with
  `min_delta` 0, the epoch of lowest validation loss, the earliest on ties);
- early stopping: training stops once `patience` epochs in a row have not improved, but not before
  epoch `min_epochs` (capped at `max_epochs`); otherwise it stops at `max_epochs`, which is logged
  as a warning (the model may not have converged);
- the learning-rate schedule `plateau` (torch's ReduceLROnPlateau) multiplies the learning rate by
  `lr_factor` after `lr_patience` epochs without improvement (same `min_delta`), watching from
  epoch `min_epochs` on, never below `min_learning_rate`; `cosine` anneals it from
  `learning_rate` to `min_learning_rate` over `max_epochs` epochs; `none` keeps it constant.
The test split is touched only once, after training, with the kept model. history.csv records
each epoch's learning rate; metrics.json records `epochs_run`, `best_epoch` and `stop_reason`
("early_stopping" | "max_epochs").

On CUDA: channels-last memory format, and mixed precision (bf16 autocast, or fp16 with loss
scaling where bf16 is missing) for the training steps when `mixed_precision`; evaluation is fp32.
On the CPU, runs are bit-for-bit reproducible for a given seed and thread count.

Interruption: after every epoch the complete state (model, optimizer, loss scaler, learning-rate
scheduler, RNG states, history, best epoch so far and the early-stopping count) is written
atomically to `<out_dir>/resume.pt`. A later call with the same config and the same data resumes
after the last finished epoch and ends with results identical to an uninterrupted run; a resume
file from another config or other data is ignored. A finished run leaves a small resume.pt (no
model) from which a rerun rewrites its outputs without training.

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
from darklens.features.channels import CHANNELS, LENS_MODEL_CHANNELS
from darklens.io.class_files import read_lens_model_settings
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
from darklens.learning.dataset import class_paths, load_training_set, plane_file
from darklens.learning.models import build_model, count_parameters

HISTORY_COLUMNS = (
    "epoch",
    "learning_rate",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "seconds",
)
LR_SCHEDULES = ("plateau", "cosine", "none")
STOP_REASONS = ("early_stopping", "max_epochs")


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in the checkpoint as a dict)."""

    architecture: str = "plain_cnn"  # a key of models.ARCHITECTURES
    channels: list[str] = field(default_factory=lambda: ["image"])  # see channels.CHANNELS
    augment_flips: bool = False  # random horizontal/vertical flips of training batches
    max_epochs: int = 60  # training stops here at the latest
    min_epochs: int = 1  # no early stop and no plateau cut before this epoch (capped at max_epochs)
    patience: int = 6  # early stopping: epochs in a row without a validation-loss improvement
    min_delta: float = 0.0  # an improvement lowers the best validation loss by more than this
    batch_size: int = 64
    learning_rate: float = 1e-3  # Adam step size (initial, when scheduled)
    lr_schedule: str = "plateau"  # one of LR_SCHEDULES
    lr_factor: float = 0.5  # plateau: the learning rate is multiplied by this on a plateau
    lr_patience: int = 2  # plateau: epochs without improvement before a cut
    min_learning_rate: float = 1e-5  # floor of plateau cuts, end point of cosine
    weight_decay: float = 0.0  # Adam L2 penalty
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    threads: int = 1  # torch CPU threads
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    smoothing_sigma_px: float | None = None  # residual smoothing used to build x, unit: pixels
    mixed_precision: bool = True  # CUDA only: autocast training steps (bf16, else fp16)
    # with a lens-model channel: {"instrument", "fitting", "lens_light"} of the training data's
    # fits, so that `darklens predict` fits new images the same way (features file attribute)
    lens_model_settings: dict | None = None


def config_from_spec(
    spec: dict,
    training: dict,
    seed: int,
    threads: int,
    class_names: list[str],
    smoothing_sigma_px: float | None,
) -> TrainConfig:
    """The TrainConfig of one model of config.yaml: `spec` is training.models[model], `training`
    the training section's hyperparameters (with the schema's defaults filled in). The smoothing
    is kept only with a residual channel."""
    stopping, schedule = training["early_stopping"], training["lr_schedule"]
    return TrainConfig(
        architecture=spec["architecture"],
        channels=list(spec["channels"]),
        augment_flips=bool(spec.get("augment_flips", False)),
        max_epochs=training["max_epochs"],
        min_epochs=training["min_epochs"],
        patience=stopping["patience"],
        min_delta=stopping["min_delta"],
        batch_size=training["batch_size"],
        learning_rate=training["learning_rate"],
        lr_schedule=schedule["kind"],
        lr_factor=schedule["factor"],
        lr_patience=schedule["patience"],
        min_learning_rate=schedule["min_learning_rate"],
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
    features: list | None,
    split_path,
    spec: dict,
    training: dict,
    seed: int,
    threads: int,
    smoothing_sigma_px: float | None,
    out_dir,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> dict:
    """`darklens train`: read the class files (named {class}.h5, in class order), their features
    files (one per kind and class, named {class}.h5; None for an image-only model) and the split
    file, then `train`."""
    image_paths, feature_paths = class_paths(images, features)
    x, y, counts = load_training_set(image_paths, feature_paths, spec["channels"])
    split = read_split(split_path, counts)
    class_names = [Path(p).stem for p in images]
    cfg = config_from_spec(spec, training, seed, threads, class_names, smoothing_sigma_px)
    if any(channel in LENS_MODEL_CHANNELS for channel in spec["channels"]):
        channel = next(c for c in spec["channels"] if c in LENS_MODEL_CHANNELS)
        holder = plane_file(feature_paths, class_names[0], channel)  # the lens_model file
        cfg.lens_model_settings = read_lens_model_settings(holder)
    return train(x, y, split, cfg, Path(out_dir), log=log, warn=warn)


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
    scheduler: torch.optim.lr_scheduler.LRScheduler | None  # None: constant learning rate
    scaler: torch.amp.GradScaler
    shuffle_gen: torch.Generator  # the order of training images, epoch by epoch
    flip_rng: np.random.Generator  # the flips of training images
    data: torch.Tensor  # the raw (N, C, H, W) array on the device
    labels: torch.Tensor
    index: dict[str, torch.Tensor]  # split -> rows (validation and test rows on the device)
    mean: list[float]  # per-channel statistics of the training split
    std: list[float]
    norm: tuple[torch.Tensor, torch.Tensor]  # mean and std on the device


def train(
    x,
    y,
    split: dict,
    cfg: TrainConfig,
    out_dir,
    log: Callable[[str], None] = print,
    warn: Callable[[str], None] | None = None,
) -> dict:
    """Train `cfg.architecture` on x[split["train"]], select and stop on "val", score on "test".

    x: (N, C, H, W) float array of prepared channels (channels.build_channels, cfg.channels order).
    y: (N,) integer labels indexing cfg.class_names.
    split: {"train", "val", "test"} -> disjoint, non-empty index arrays into x.
    log: receives one line per event; warn (default: log) the line of a run that reached
    max_epochs without early stopping.
    Resumes from out_dir/resume.pt when it holds an interrupted run of the same config and data.
    Returns the dict written to metrics.json.
    """
    warn = log if warn is None else warn
    x, y, split = _check_inputs(x, y, split, cfg)
    out_dir = Path(out_dir)
    run = _set_up(x, y, split, cfg, log)
    identity = {
        "config": asdict(cfg),
        "device": run.device.type,
        "data": data_fingerprint(x, y, split),
    }
    history, best, stale = _resume(run, out_dir / RESUME_FILE, identity, cfg.max_epochs, log)

    while len(history) < cfg.max_epochs and not _stops_early(cfg, len(history), stale):
        epoch = len(history) + 1
        t0 = time.perf_counter()
        learning_rate = run.optimizer.param_groups[0]["lr"]
        train_loss, train_acc = _train_epoch(run, cfg)
        val_loss, val_acc = _evaluate(run, "val", cfg.batch_size)
        row = {
            "epoch": epoch,
            "learning_rate": learning_rate,
            "train_loss": train_loss,
            "train_acc": train_acc,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "seconds": time.perf_counter() - t0,
        }
        history.append(row)
        log(
            f"epoch {epoch:3d}  lr {learning_rate:.2e}  train loss {train_loss:.4f} acc "
            f"{train_acc:.3f}  val loss {val_loss:.4f} acc {val_acc:.3f}  {row['seconds']:.1f}s"
        )
        if improves(val_loss, best, cfg.min_delta):
            stale = 0
            best = {
                "epoch": epoch,
                "val_acc": val_acc,
                "val_loss": val_loss,
                "model": cpu_state(run.model),
                "optimizer": copy.deepcopy(run.optimizer.state_dict()),
                "rng": rng_states(run.shuffle_gen, run.flip_rng, run.device),
            }
        else:
            stale += 1
        _step_schedule(run, cfg, epoch, val_loss)
        resume = {
            "identity": identity,
            "epoch": epoch,
            "model": cpu_state(run.model),
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
            "scaler": run.scaler.state_dict(),
            "rng": rng_states(run.shuffle_gen, run.flip_rng, run.device),
            "history": history,
            "best": best,
            "epochs_without_improvement": stale,
        }
        write_resume(out_dir / RESUME_FILE, resume)

    stop_reason = "early_stopping" if _stops_early(cfg, len(history), stale) else "max_epochs"
    _log_stop(cfg, history, best, stale, stop_reason, log, warn)
    # training is over: restore the best epoch, then (and only then) look at the test split
    run.model.load_state_dict(best["model"])
    probs = torch.softmax(_logits(run, "test", cfg.batch_size), dim=1).cpu().numpy()
    y_test = y[split["test"]]
    metrics = _test_metrics(run, cfg, best, y_test, probs)
    metrics.update(epochs_run=len(history), stop_reason=stop_reason)
    log(
        f"best epoch {best['epoch']} (val loss {best['val_loss']:.4f}, acc "
        f"{best['val_acc']:.3f}); test acc {metrics['accuracy']:.3f}, macro AUC "
        f"{_fmt(metrics['auc_macro_ovr'])}"
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
    finished.update(history=history, best=best, epochs_without_improvement=stale)
    write_resume(out_dir / RESUME_FILE, finished)
    return metrics


def improves(val_loss: float, best: dict | None, min_delta: float) -> bool:
    """Whether an epoch's validation loss improves on the best epoch so far: lower by more than
    `min_delta` (the first epoch always does; a NaN loss never does)."""
    return best is None or val_loss < best["val_loss"] - min_delta


def _stops_early(cfg: TrainConfig, epochs_run: int, stale: int) -> bool:
    """The early-stopping rule after `epochs_run` epochs, `stale` of them in a row without
    improvement."""
    return epochs_run >= min(cfg.min_epochs, cfg.max_epochs) and stale >= cfg.patience


def _log_stop(cfg, history, best, stale, stop_reason, log, warn) -> None:
    n = len(history)
    if stop_reason == "early_stopping":
        log(
            f"early stopping after epoch {n} of at most {cfg.max_epochs}: validation loss not "
            f"improved by more than {cfg.min_delta:g} for {stale} epochs (patience "
            f"{cfg.patience}); best epoch {best['epoch']}"
        )
    else:
        warn(
            f"stopped at max_epochs {cfg.max_epochs} before early stopping (validation loss "
            f"improved {stale} epoch(s) before the end, patience {cfg.patience}; best epoch "
            f"{best['epoch']}): the model may not have converged; raise training.max_epochs"
        )


def _make_scheduler(optimizer, cfg: TrainConfig):
    """The learning-rate scheduler of `cfg.lr_schedule` (None for "none"); the floor is
    min_learning_rate, or learning_rate when that is lower (a learning rate is never raised)."""
    floor = min(cfg.min_learning_rate, cfg.learning_rate)
    if cfg.lr_schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=cfg.lr_factor,
            patience=cfg.lr_patience,
            threshold=cfg.min_delta,
            threshold_mode="abs",
            min_lr=floor,
        )
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=cfg.max_epochs, eta_min=floor
        )
    return None


def _step_schedule(run: _Run, cfg: TrainConfig, epoch: int, val_loss: float) -> None:
    """After an epoch: the plateau scheduler watches the validation loss from min_epochs on;
    cosine steps every epoch."""
    if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if epoch >= min(cfg.min_epochs, cfg.max_epochs):
            run.scheduler.step(val_loss)
    elif run.scheduler is not None:
        run.scheduler.step()


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
    scheduler = _make_scheduler(optimizer, cfg)
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
        scheduler=scheduler,
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


def _resume(
    run: _Run, path: Path, identity: dict, max_epochs: int, log
) -> tuple[list, dict | None, int]:
    """(history, best epoch so far, epochs without improvement) of an interrupted run of this very
    config and data, its model, optimizer, scheduler, scaler and random states restored;
    ([], None, 0) when there is none."""
    state = read_resume(path, identity, log)
    if state is None:
        return [], None, 0
    stale = state["epochs_without_improvement"]
    if state.get("finished"):
        log(f"{path.name}: this run finished after epoch {state['epoch']}; rewriting its outputs")
        return state["history"], state["best"], stale
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None:
        run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    set_rng_states(state["rng"], run.shuffle_gen, run.flip_rng, run.device)
    log(f"resumed from {path.name} after epoch {state['epoch']} of at most {max_epochs}")
    return state["history"], state["best"], stale


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
        max_epochs=cfg.max_epochs,
        patience=cfg.patience,
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
    if min(cfg.max_epochs, cfg.min_epochs, cfg.patience, cfg.batch_size, cfg.threads) < 1:
        raise ValueError("max_epochs, min_epochs, patience, batch_size and threads must be >= 1")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {cfg.lr_schedule!r}"
        )
    if not 0.0 < cfg.lr_factor < 1.0 or cfg.lr_patience < 0 or cfg.min_delta < 0:
        raise ValueError("lr_factor must be in (0, 1), lr_patience and min_delta >= 0")
    split = {name: idx.astype(np.int64) for name, idx in split.items()}
    return x, y.astype(np.int64), split
