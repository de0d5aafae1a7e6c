"""Where and how a model runs: device choice, autocast precision, seeding, moving batches to the device.

Used by training, evaluation and prediction alike (below ``train``/``eval``/``export``, above ``models``).
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

AMP_MODES = ("auto", "bf16", "fp16", "off")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else is passed to ``torch.device`` (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for but CUDA is not available; use --device cpu or auto")
    return dev


def amp_dtype(device: torch.device, amp: str = "auto") -> torch.dtype | None:
    """The autocast dtype of ``amp`` on ``device``: bf16 on CUDA for ``auto`` / ``bf16``, fp16 for ``fp16`` (CUDA
    or CPU; the trainers pair it with a ``GradScaler``), bf16 on CPU only when asked for (``bf16``: fast on CPUs
    with AMX / AVX512-BF16); None (fp32) for ``off``, ``auto`` on CPU, and other devices."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be auto, bf16, fp16 or off, got {amp!r}")
    if amp == "off" or device.type not in ("cpu", "cuda"):
        return None
    if amp == "fp16":
        return torch.float16
    if amp == "bf16" or device.type == "cuda":
        return torch.bfloat16
    return None


def autocast_for(device: torch.device, amp: str = "auto"):
    """The autocast context of :func:`amp_dtype` (a no-op context when that is fp32)."""
    dtype = amp_dtype(device, amp)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def to_device(batch: dict, device: torch.device) -> dict:
    """Tensors to ``device`` (non-blocking on CUDA: the native loader's tensors are pinned); other values
    (``max_seqlen``, an int) pass through."""
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
