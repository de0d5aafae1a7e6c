"""Small pieces both trainers use: device and precision choice, seeding, metrics log, moving batches."""

from __future__ import annotations

import contextlib
import json
import random
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..jsonio import dumps
from .errors import NonFiniteError


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else is passed to ``torch.device`` (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but CUDA is not available; use --device cpu or auto")
    return dev


def autocast_for(device: torch.device, amp: str = "auto"):
    """bf16 autocast on CUDA (``amp=auto|bf16``), nothing on CPU or with ``amp=off``."""
    if amp not in ("auto", "bf16", "fp16", "off"):
        raise ValueError(f"amp must be auto, bf16, fp16 or off, got {amp!r}")
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast("cuda", dtype=dtype)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_device(batch: dict, device: torch.device) -> dict:
    """Tensors to ``device`` (non-blocking on CUDA: the native loader's tensors are pinned); other values
    (``max_seqlen``, an int) pass through."""
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def grad_norm(model: torch.nn.Module, clip: float) -> torch.Tensor:
    """The global gradient norm (a device tensor, no host sync); clips to ``clip`` when ``clip > 0``."""
    params = [p for p in model.parameters() if p.grad is not None]
    if clip > 0:
        return torch.nn.utils.clip_grad_norm_(params, clip)
    return torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)


class NonFiniteGuard:
    """Stops training at a non-finite loss or gradient norm, or lets it skip up to ``budget`` such steps.

    :meth:`step_ok` costs one host sync per optimizer step. A skipped step does not update the weights (the caller
    zeroes the gradients) but still counts as a step: the step number and the learning-rate schedule advance."""

    def __init__(self, budget: int, last_good: Callable[[], str], skipped: int = 0):
        if budget < 0:
            raise ValueError(f"skip_nonfinite must be >= 0, got {budget}")
        self.budget, self.last_good, self.skipped = budget, last_good, skipped

    def step_ok(self, step: int, loss: torch.Tensor, norm: torch.Tensor) -> bool:
        both = torch.stack([loss.detach().float().reshape(()), norm.detach().float().reshape(())]).cpu()
        if bool(torch.isfinite(both).all()):
            return True
        if self.skipped < self.budget:
            self.skipped += 1
            return False
        raise NonFiniteError(f"step {step}: non-finite loss ({float(both[0])}) or gradient norm ({float(both[1])}); "
                             f"stopped without saving (--skip-nonfinite {self.budget} used up: {self.skipped} "
                             f"skipped); last good checkpoint: {self.last_good()}")


def check_finite_weights(model: torch.nn.Module, step: int, last_good: Callable[[], str]) -> None:
    """Refuse to save weights that hold NaN or infinity."""
    bad = [name for name, p in model.state_dict().items() if p.is_floating_point() and not bool(torch.isfinite(p).all())]
    if bad:
        raise NonFiniteError(f"step {step}: the weights hold non-finite values ({', '.join(bad[:3])}); not saved; "
                             f"last good checkpoint: {last_good()}")


class MetricsLog:
    """Appends one JSON object per line to ``path`` (kept open; flushed per record)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")
        self.t0 = time.time()

    def write(self, **record) -> None:
        record.setdefault("time", round(time.time() - self.t0, 3))
        self._f.write(dumps(record) + "\n")  # strict JSON: NaN/inf -> null
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_metrics(path: str | Path) -> list[dict]:
    """All records of a metrics JSONL file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
