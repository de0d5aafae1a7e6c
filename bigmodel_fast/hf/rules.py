"""Tensor name maps between bmf state dicts and HF checkpoints: one :class:`Rule` per bmf tensor.

A rule names our tensor, the HF tensor(s) it is made of and how (``copy``; ``cat``: our fused qkv is the
concatenation of HF's query, key and value along dim 0; ``t``: GPT-2's ``Conv1D`` stores the transpose), and the
``group`` it belongs to: ``backbone`` tensors must be in the checkpoint, the others (``pooler``, ``mlm_head``,
``nsp_head``, ``classifier``, ``lm_head``) are heads that get a fresh init when missing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Rule", "from_hf", "hf_shapes", "to_hf"]


@dataclass(frozen=True)
class Rule:
    """Our tensor ``ours`` = ``op`` over the HF tensors ``hf``; ``group`` says which part of the model it is."""

    ours: str
    hf: tuple[str, ...]
    op: str = "copy"  # "copy" | "cat" | "t"
    group: str = "backbone"


def from_hf(rule: Rule, tensors: list[torch.Tensor]) -> torch.Tensor:
    """Our tensor from the HF tensors of ``rule`` (in ``rule.hf`` order)."""
    if rule.op == "cat":
        return torch.cat(tensors, dim=0).contiguous()
    if rule.op == "t":
        return tensors[0].t().contiguous()
    return tensors[0]


def to_hf(rule: Rule, ours: torch.Tensor) -> list[torch.Tensor]:
    """The HF tensors of ``rule`` from our tensor (the inverse of :func:`from_hf`)."""
    if rule.op == "cat":
        return [p.contiguous() for p in torch.chunk(ours, len(rule.hf), dim=0)]
    if rule.op == "t":
        return [ours.t().contiguous()]
    return [ours.contiguous()]


def hf_shapes(rule: Rule, ours_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The HF shapes that make our tensor of shape ``ours_shape``."""
    if rule.op == "cat":
        n = len(rule.hf)
        return [(ours_shape[0] // n, *ours_shape[1:])] * n
    if rule.op == "t":
        return [tuple(reversed(ours_shape))]
    return [tuple(ours_shape)]
