"""Low-level ops. :func:`attention` is the single attention dispatch point (see ``ops/attention.py``)."""

from __future__ import annotations

from bigmodel_fast.ops.attention import (
    ENV_VAR,
    VALID_BACKENDS,
    AttentionBackendError,
    attention,
    attention_backend,
    attention_reference,
    attention_sdpa,
    varlen_attention,
    varlen_attention_reference,
)

__all__ = [
    "ENV_VAR",
    "VALID_BACKENDS",
    "AttentionBackendError",
    "attention",
    "attention_backend",
    "attention_reference",
    "attention_sdpa",
    "varlen_attention",
    "varlen_attention_reference",
]
