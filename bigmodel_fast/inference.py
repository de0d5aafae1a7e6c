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


def pool_mean(logits: torch.Tensor, owner: list[int], n: int) -> torch.Tensor:
    """Mean of the window rows of ``logits`` (W, C) per text: (n, C) float32, row ``i`` the mean over the windows
    ``w`` with ``owner[w] == i`` (a text without windows gets NaN)."""
    if n == 0:
        return torch.empty(0, logits.shape[-1] if logits.dim() == 2 else 0)
    index = torch.as_tensor(owner, dtype=torch.long)
    sums = torch.zeros(n, logits.shape[-1], dtype=torch.float64).index_add_(0, index, logits.double())
    counts = torch.bincount(index, minlength=n).double()
    return (sums / counts[:, None]).float()


def predict_logits_long(model, seqs: list[list[int]], owner: list[int], n: int, pad_id: int, batch_size: int,
                        device, amp: str = "auto") -> torch.Tensor:
    """Logits (n, C) float32 of ``n`` texts given as windows (``seqs`` with ``owner`` window -> text, from
    :func:`bigmodel_fast.data.long_text.encode_long`): each text's row is the mean of its windows' logits. With
    one window per text this is :func:`predict_logits` in text order."""
    logits = predict_logits(model, seqs, pad_id, batch_size, device, amp)
    if len(seqs) == n and list(owner) == list(range(n)):
        return logits
    return pool_mean(logits, owner, n)


@torch.no_grad()
def predict_token_logits(model, seqs: list[list[int]], pad_id: int, batch_size: int, device,
                         amp: str = "auto") -> list[torch.Tensor]:
    """Per sequence, its (len, C) float32 logits on the CPU, from a token model ``(input_ids, attention_mask) ->
    (B, S, C)``; batches are formed from length-sorted sequences like :func:`predict_logits`."""
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    order = np.argsort([len(s) for s in seqs], kind="stable")
    out: list = [None] * len(seqs)
    for start in range(0, len(seqs), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = pad_batch([seqs[i] for i in idx], pad_id)
        with autocast_for(device, amp):
            logits = model(ids.to(device), mask.to(device)).float().cpu()
        if logits.dim() != 3 or logits.shape[:2] != ids.shape:
            raise ValueError(f"a token model must return (B, S, C) logits for (B, S) = {tuple(ids.shape)} inputs, "
                             f"got shape {tuple(logits.shape)}")
        for row, i in enumerate(idx):
            out[i] = logits[row, : len(seqs[i])]
    if was_training:
        model.train()
    return out
