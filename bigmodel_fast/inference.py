"""Batched classifier inference over token-id sequences (fine-tuning's validation, ``bmf predict``/``evaluate``)."""

from __future__ import annotations

import numpy as np
import torch

from .data.classification import pad_batch
from .runtime import autocast_for


@torch.no_grad()
def predict_logits(model, seqs: list[list[int]], pad_id: int, batch_size: int, device,
                   amp: str = "auto") -> torch.Tensor:
    """Logits (N, C) float32 on the CPU, in the order of ``seqs``; batches (B, T) are formed from length-sorted
    sequences to pad little. An empty ``seqs`` gives an empty (0, 0) tensor.

    ``model`` is a module or any callable ``(input_ids, attention_mask) -> logits`` (e.g. an AOTInductor package);
    a module in training mode is evaluated in eval mode and put back.
    """
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    order = np.argsort([len(s) for s in seqs], kind="stable")
    out = [None] * len(seqs)
    for start in range(0, len(seqs), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = pad_batch([seqs[i] for i in idx], pad_id)
        with autocast_for(device, amp):
            logits = model(ids.to(device), mask.to(device)).float().cpu()
        for row, i in enumerate(idx):
            out[i] = logits[row]
    if was_training:
        model.train()
    return torch.stack(out) if out else torch.empty(0, 0)
