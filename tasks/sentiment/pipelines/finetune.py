"""Fine-tuning a sentence encoder and its head together: the training loop of the transformer pipeline.

Deterministic (seeded, deterministic kernels, default AdamW) so that the same data, seed and precision
give the same weights and metrics; batches of similar length so that 2 CPU cores spend little on padding;
a log line every 50 steps with the loss and the time left.

Precision: ``fp32``, or ``bf16`` mixed precision (the forward pass under bfloat16 autocast; weights,
gradients and AdamW's state stay float32, so no loss scaling is needed). ``auto`` picks bf16 only where
the hardware computes it natively (Intel AMX or AVX-512-bf16, a bf16-capable GPU): elsewhere bf16 is
emulated and slower than fp32. The precision a model was trained in is recorded in its metadata; the
same seed on another precision gives another (equally valid) model, not the same numbers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from tasks.embedding.encoder import SentenceEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneSettings:
    epochs: int
    batch_size: int
    lr: float  # the encoder's AdamW learning rate
    head_lr: float  # the head's: it starts far from its optimum and needs larger steps
    weight_decay: float
    warmup: float  # fraction of the steps spent warming the learning rate up
    group_by_length: bool
    max_steps: int | None  # overrides epochs when given (tests run a few steps)
    seed: int
    train_precision: str  # "fp32", "bf16" or "auto" (see the module's docstring)


TRAIN_PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(requested: str, device: str) -> str:
    """The precision ``requested`` means on ``device``: ``auto`` is bf16 where bf16 is native, else fp32."""
    from tasks.embedding.runtimes import native_bf16

    if requested not in TRAIN_PRECISIONS:
        raise ValueError(f"train_precision must be one of {', '.join(TRAIN_PRECISIONS)}, not {requested!r}")
    if requested == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return requested


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def deterministic_algorithms() -> Iterator[None]:
    """Ask torch for deterministic kernels while training, then restore the caller's setting."""
    import torch

    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def finetune(
    encoder: SentenceEncoder,
    head: torch.nn.Module,
    texts: Sequence[str],
    y: np.ndarray,
    settings: FinetuneSettings,
) -> dict[str, Any]:
    """AdamW on encoder and head together, linear warm-up then linear decay, cross-entropy loss.

    Trains ``encoder.model`` and ``head`` in place and returns the steps taken, the seconds spent and
    the precision used.
    """
    from contextlib import nullcontext

    import torch

    s = settings
    model = encoder.model
    precision = resolve_precision(s.train_precision, str(encoder.device))
    device_type = encoder.device.type

    def autocast() -> Any:
        return torch.autocast(device_type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    steps_per_epoch = -(-len(texts) // s.batch_size)
    total = steps_per_epoch * s.epochs if s.max_steps is None else s.max_steps
    warmup_steps = int(s.warmup * total)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "lr": s.lr},
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
            "lr": s.lr,
            "weight_decay": 0.0,
        },
        {"params": list(head.parameters()), "lr": s.head_lr},
    ]
    # The fused AdamW kernel is faster per step on CPU but rounds differently; the released model was
    # trained with the default one, which keeps "same data and seed, same metrics" true for it.
    optimizer = torch.optim.AdamW(groups, weight_decay=s.weight_decay)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total - step) / max(1, total - warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = torch.Generator().manual_seed(s.seed)
    labels = torch.as_tensor(y, dtype=torch.long)
    step, started, running = 0, time.perf_counter(), 0.0
    model.train()
    head.train()
    try:
        while step < total:
            for idx in epoch_batches(texts, s.batch_size, s.group_by_length, generator):
                if step >= total:
                    break
                batch = encoder.tokenize([texts[i] for i in idx.tolist()])
                with autocast():
                    logits = head(encoder.forward(batch))
                loss = torch.nn.functional.cross_entropy(logits.float(), labels[idx].to(encoder.device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([*model.parameters(), *head.parameters()], 1.0)
                optimizer.step()
                scheduler.step()
                step += 1
                running = 0.9 * running + 0.1 * loss.item() if step > 1 else loss.item()
                if step % 50 == 0 or step == total:
                    elapsed = time.perf_counter() - started
                    logger.info(
                        "step %d/%d (%.0f%%) loss %.4f, %.0f s so far, about %.0f s to go",
                        step,
                        total,
                        100 * step / total,
                        running,
                        elapsed,
                        elapsed / step * (total - step),
                    )
    finally:
        model.eval()
        head.eval()
    return {
        "finetune_steps": step,
        "finetune_seconds": round(time.perf_counter() - started, 2),
        "train_precision": precision,
    }


def epoch_batches(
    texts: Sequence[str], batch_size: int, group_by_length: bool, generator: torch.Generator
) -> list[torch.Tensor]:
    """Index batches for one epoch, in a seeded random order.

    With ``group_by_length`` the shuffled texts are cut into pools of 50 batches and sorted by length
    inside each pool, so a batch holds texts of similar length and little padding: on 2 CPU cores
    that makes an epoch markedly cheaper. The batch order is shuffled again, so lengths do not drift
    through the epoch. Character length is a good enough proxy for token length here.
    """
    import torch

    perm = torch.randperm(len(texts), generator=generator)
    if not group_by_length:
        return list(perm.split(batch_size))
    lengths = torch.tensor([len(t) for t in texts])
    batches: list[torch.Tensor] = []
    for pool in perm.split(batch_size * 50):
        ordered = pool[torch.argsort(lengths[pool], stable=True)]
        batches.extend(ordered.split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
