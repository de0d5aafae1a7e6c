"""Input validation that needs a device sync; run it once (e.g. on the trainer's first step), not every step."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from bigmodel_fast.models.config import ModelConfig

__all__ = ["InputError", "check_inputs"]


class InputError(ValueError):
    """A batch does not fit the model config; the message names the tensor and what was expected."""


def check_inputs(
    cfg: ModelConfig,
    input_ids: Tensor,
    attention_mask: Optional[Tensor] = None,
    token_type_ids: Optional[Tensor] = None,
) -> None:
    """Validate a batch against ``cfg``; raises :class:`InputError`.

    Checks: ``input_ids`` is (B, S) integer with S <= ``max_position`` and every id in [0, vocab_size);
    ``attention_mask`` (B, S) bool/int; ``token_type_ids`` (B, S) in [0, type_vocab_size) (bert) or None (gpt).

    The model forwards only check the sequence length (free, shape-only). Id-range checks read values back to
    the host (a device sync), so they live here and the trainer calls this on its first batch only; an
    out-of-range id otherwise surfaces as an opaque index error (CPU) or device-side assert (CUDA).
    """
    if input_ids.dim() != 2:
        raise InputError(f"input_ids must be (B, S); got shape {tuple(input_ids.shape)}")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise InputError(f"input_ids must be an integer tensor; got {input_ids.dtype}")
    b, s = input_ids.shape
    if s > cfg.max_position:
        raise InputError(f"input_ids has sequence length {s} > config max_position={cfg.max_position}")
    bounds = _out_of_range(input_ids, cfg.vocab_size)
    if bounds:
        raise InputError(f"input_ids contains ids in {bounds} but config vocab_size={cfg.vocab_size} "
                         f"(valid ids 0..{cfg.vocab_size - 1}); tokenizer and model config disagree?")
    if attention_mask is not None and tuple(attention_mask.shape) != (b, s):
        raise InputError(f"attention_mask must have shape {(b, s)} like input_ids; "
                         f"got {tuple(attention_mask.shape)}")
    if token_type_ids is not None:
        if cfg.arch == "gpt":
            raise InputError("token_type_ids given but arch='gpt' has no segment embeddings")
        if tuple(token_type_ids.shape) != (b, s):
            raise InputError(f"token_type_ids must have shape {(b, s)}; got {tuple(token_type_ids.shape)}")
        bounds = _out_of_range(token_type_ids, cfg.type_vocab_size)
        if bounds:
            raise InputError(f"token_type_ids contains {bounds} but config type_vocab_size={cfg.type_vocab_size}")


def _out_of_range(ids: Tensor, size: int) -> str:
    """``"[lo, hi]"`` (min and max of ``ids``, read back to the host) when some id is outside [0, size), else
    ``""``."""
    if not ids.numel():
        return ""
    lo, hi = int(ids.min()), int(ids.max())
    return f"[{lo}, {hi}]" if lo < 0 or hi >= size else ""
