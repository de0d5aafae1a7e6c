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


def autocast_for(device: torch.device, amp: str = "auto"):
    """bf16 autocast on CUDA (``amp=auto|bf16``; fp16 with ``amp=fp16``); on CPU bf16 autocast only when asked
    for (``amp=bf16``: matmuls in bf16, fast on CPUs with AMX / AVX512-BF16), else fp32; nothing with ``amp=off``
    or on other devices."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be auto, bf16, fp16 or off, got {amp!r}")
    if device.type == "cpu" and amp == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    dtype = torch.float16 if amp == "fp16" else torch.bfloat16
    return torch.autocast("cuda", dtype=dtype)


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
