"""A plain SGD training loop (with a rich progress bar and checkpoints) and accuracy evaluation.

It trains with the fingerprint loss when given one, or plain cross-entropy otherwise, and is what
``freqprint train``, ``embed`` and ``finetune`` call.  Accuracy always uses the **n real classes**
(the pseudo class n+1 is never predicted at inference).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from freqprint.data import ArrayDataset
from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.fingerprint.loss import FingerprintLoss

__all__ = ["TrainConfig", "TrainResult", "evaluate", "resolve_device", "train"]


@dataclass
class TrainConfig:
    """SGD settings.  Paper (App. B.1): SGD, lr 0.01 then 0.001 after 40 % of the epochs."""

    epochs: int = 3
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    optimizer: str = "sgd"  # "sgd" or "adam"
    lr_drop_at: float | None = 0.4  # fraction of epochs after which lr is divided by 10 (None: constant)
    seed: int = 0
    device: str = "cpu"
    output_classes: int | None = None  # train on the first k logits only (None: all of them)


@dataclass
class TrainResult:
    history: list[dict]
    seconds: float
    final_accuracy: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise FreqprintError("device 'cuda' asked for, but no CUDA GPU is available to torch")
    return torch.device(device)


@torch.no_grad()
def evaluate(
    model: nn.Module, data: ArrayDataset, num_classes: int | None = None, batch_size: int = 512, device: str = "cpu"
) -> float:
    """Top-1 accuracy over the first ``num_classes`` logits."""
    n = num_classes or data.num_classes
    dev = resolve_device(device)
    was = model.training
    model.eval().to(dev)
    correct = 0
    for i in range(0, len(data), batch_size):
        x = data.images[i : i + batch_size].to(dev)
        y = data.labels[i : i + batch_size].to(dev)
        logits = model(x)[:, :n]
        correct += int((logits.argmax(1) == y).sum())
    model.train(was)
    return correct / max(1, len(data))


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise InvalidArgument(f"optimizer must be 'sgd' or 'adam', got {cfg.optimizer!r}")


Criterion = Callable[[nn.Module, torch.Tensor, torch.Tensor], "tuple[torch.Tensor, dict[str, float]]"]


def train(
    model: nn.Module,
    data: ArrayDataset,
    cfg: TrainConfig,
    criterion: FingerprintLoss | Criterion | None = None,
    eval_data: ArrayDataset | None = None,
    checkpoint: Callable[[nn.Module, int], None] | None = None,
    progress: bool = True,
    description: str = "train",
) -> TrainResult:
    """Train ``model`` in place.

    Args:
        criterion: a :class:`FingerprintLoss` to embed a fingerprint, or any callable
            ``(model, x, y) -> (loss, parts)``; plain cross-entropy when None.
        eval_data: evaluated after every epoch (accuracy in the history).
        checkpoint: called as ``checkpoint(model, epoch)`` after every epoch.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if len(data) == 0:
        raise FreqprintError("empty training set")
    dev = resolve_device(cfg.device)
    model.to(dev).train()
    torch.manual_seed(cfg.seed)
    loader = DataLoader(
        data.torch_dataset(),
        batch_size=cfg.batch_size,
        shuffle=True,
        drop_last=len(data) > cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    opt = _make_optimizer(model, cfg)
    milestones = [max(1, int(round(cfg.lr_drop_at * cfg.epochs)))] if cfg.lr_drop_at and cfg.epochs > 1 else []
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, 0.1)
    history: list[dict] = []
    start = time.time()
    n = data.num_classes
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        disable=not progress,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=cfg.epochs * len(loader), info="")
        for epoch in range(cfg.epochs):
            tot, count = 0.0, 0
            parts_sum: dict[str, float] = {}
            for x, y in loader:
                x, y = x.to(dev), y.to(dev)
                if criterion is not None:
                    loss, parts = criterion(model, x, y)
                else:
                    logits = model(x)
                    if cfg.output_classes is not None:
                        logits = logits[:, : cfg.output_classes]
                    loss = F.cross_entropy(logits, y)
                    parts = {"ce": float(loss.detach())}
                if not torch.isfinite(loss):
                    raise FreqprintError(
                        f"training diverged (loss {float(loss.detach())}) in epoch {epoch + 1}; lower the learning rate"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot += loss.item()
                count += 1
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + v
                bar.update(task, advance=1, info=f"loss {tot / count:.3f}")
            sched.step()
            rec = {"epoch": epoch + 1, "loss": tot / count, **{k: v / count for k, v in parts_sum.items()}}
            if eval_data is not None:
                rec["accuracy"] = evaluate(model, eval_data, n, device=cfg.device)
                bar.update(task, info=f"loss {rec['loss']:.3f} acc {rec['accuracy']:.3f}")
            history.append(rec)
            if checkpoint is not None:
                checkpoint(model, epoch + 1)
    model.eval()
    return TrainResult(history, time.time() - start, history[-1].get("accuracy") if history else None)


def save_every_epoch(directory: str | Path, save: Callable[[nn.Module, Path], object]) -> Callable[[nn.Module, int], None]:
    """A ``checkpoint`` callback writing ``directory/epoch-<k>.safetensors``."""
    d = Path(directory)

    def cb(model: nn.Module, epoch: int) -> None:
        save(model, d / f"epoch-{epoch}.safetensors")

    return cb
