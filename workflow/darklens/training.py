"""Train one classifier on prepared channels and write its checkpoint, history and test predictions.

`train` is one loop that reads top to bottom (after nanoGPT's train.py): the normalised training set
lives on the device as one tensor and is indexed by a seeded permutation each epoch; flips, when
enabled, are drawn per batch from a seeded numpy Generator and applied to tensors. After each epoch
the model is scored on the validation split; the best epoch by validation accuracy (ties: lower
validation loss) is kept. The test split is touched only once, after training, with the best model.

Outputs in out_dir, each written atomically: checkpoint.pt, history.csv, predictions.csv,
metrics.json (written last, so its presence means the run finished).
"""

from __future__ import annotations

import copy
import csv
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from darklens import CLASS_NAMES, __version__
from darklens.atomic import atomic_path
from darklens.features import CHANNELS
from darklens.metrics import classification_metrics
from darklens.models import build_model, count_parameters

SPLITS = ("train", "val", "test")
HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


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


def resolve_device(device: str) -> torch.device:
    """ "auto" -> CUDA when available, else CPU; "cpu" / "cuda" as asked."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


def normalise(x: np.ndarray, mean, std) -> np.ndarray:
    """(x - mean) / std per channel of (N, C, H, W) x, as float32."""
    mean = np.asarray(mean, dtype=np.float64)[None, :, None, None]
    std = np.asarray(std, dtype=np.float64)[None, :, None, None]
    return ((x - mean) / std).astype(np.float32)


def channel_stats(x: np.ndarray) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (N, C, H, W) x; a constant channel gets std 1."""
    mean = x.mean(axis=(0, 2, 3), dtype=np.float64)
    std = x.std(axis=(0, 2, 3), dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return mean.tolist(), std.tolist()


def random_flips(xb: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Flip each image of a (B, C, H, W) batch left-right and up-down, each with probability 1/2."""
    b = xb.shape[0]
    flip_lr = torch.from_numpy(rng.random(b) < 0.5).to(xb.device).view(b, 1, 1, 1)
    flip_ud = torch.from_numpy(rng.random(b) < 0.5).to(xb.device).view(b, 1, 1, 1)
    xb = torch.where(flip_lr, xb.flip(-1), xb)
    return torch.where(flip_ud, xb.flip(-2), xb)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits of a normalised (N, C, H, W) tensor, in eval mode; restores the previous mode."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    model.train(was_training)
    return out


def train(x, y, split: dict, cfg: TrainConfig, out_dir, log: Callable[[str], None] = print) -> dict:
    """Train `cfg.architecture` on x[split["train"]], select on "val", score on "test".

    x: (N, C, H, W) float array of prepared channels (features.build_channels, cfg.channels order).
    y: (N,) integer labels indexing cfg.class_names.
    split: {"train", "val", "test"} -> disjoint, non-empty index arrays into x.
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

    # normalisation from the training split only; the whole split lives on the device
    mean, std = channel_stats(x[split["train"]])
    x_train = torch.from_numpy(normalise(x[split["train"]], mean, std)).to(device)
    y_train = torch.from_numpy(y[split["train"]]).to(device)
    x_val = torch.from_numpy(normalise(x[split["val"]], mean, std)).to(device)
    y_val = torch.from_numpy(y[split["val"]]).to(device)
    n_train, n_val = len(y_train), len(y_val)

    image_size = x.shape[-1]
    model = build_model(cfg.architecture, x.shape[1], len(cfg.class_names), image_size).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    log(
        f"{cfg.architecture} ({count_parameters(model)} parameters) on {device}, "
        f"channels {cfg.channels}, n_train {n_train}, n_val {n_val}, flips {cfg.augment_flips}"
    )

    history: list[dict] = []
    best: dict | None = None
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        perm = torch.randperm(n_train, generator=shuffle_gen).to(device)
        for start in range(0, n_train, cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if cfg.augment_flips:
                xb = random_flips(xb, flip_rng)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == yb).sum()

        val_logits = predict_logits(model, x_val, cfg.batch_size)
        val_loss = F.cross_entropy(val_logits, y_val, reduction="sum").item() / n_val
        val_acc = (val_logits.argmax(1) == y_val).sum().item() / n_val
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
                "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "optimizer": copy.deepcopy(optimizer.state_dict()),
                "rng": _rng_states(shuffle_gen, flip_rng, device),
            }

    # training is over: restore the best epoch, then (and only then) look at the test split
    model.load_state_dict(best["model"])
    x_test = torch.from_numpy(normalise(x[split["test"]], mean, std)).to(device)
    probs = torch.softmax(predict_logits(model, x_test, cfg.batch_size), dim=1).cpu().numpy()
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


def _rng_states(shuffle_gen: torch.Generator, flip_rng: np.random.Generator, device) -> dict:
    states = {
        "torch": torch.get_rng_state(),
        "shuffle": shuffle_gen.get_state(),
        "numpy_flips": copy.deepcopy(flip_rng.bit_generator.state),
    }
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _check_inputs(x, y, split, cfg: TrainConfig):
    """Validate and convert; every problem is a ValueError of one line."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"x must be a float array, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
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
    if not np.isfinite(x).all():
        raise ValueError(f"x contains {int((~np.isfinite(x)).sum())} NaN/inf value(s)")
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
    return x, y.astype(np.int64), split
