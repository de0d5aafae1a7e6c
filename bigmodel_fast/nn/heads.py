"""Output heads and losses shared by the models: the tied LM projection, the masked cross-entropy and
last-token pooling. Everything here is TorchScript-scriptable."""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["IGNORE_INDEX", "TiedLMHead", "last_token", "lm_outputs", "masked_cross_entropy"]

IGNORE_INDEX = -100  # label of positions that count in no loss (padding, unmasked MLM positions)


def masked_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy over targets != -100, computed in fp32; 0 (with grad) when nothing is counted.

    logits (N, C), targets (N,) long. No host sync: the count is clamped on device.
    """
    total = F.cross_entropy(logits.float(), targets, ignore_index=IGNORE_INDEX, reduction="sum")
    count = (targets != IGNORE_INDEX).sum().clamp_min(1)
    return total / count


def lm_outputs(logits: Tensor, labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """``{"logits": (B, S, V)}`` plus, when ``labels`` (B, S) long (already shifted, -100 ignored) is given, the
    mean ``"loss"`` over the counted tokens; ValueError when ``labels`` is not shaped like the input ids."""
    out: Dict[str, Tensor] = {"logits": logits}
    if labels is not None:
        if labels.shape != logits.shape[:-1]:
            raise ValueError(f"labels must have the shape of input_ids {tuple(logits.shape[:-1])}, "
                             f"got {tuple(labels.shape)}")
        out["loss"] = masked_cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
    return out


def last_token(hidden: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
    """(B, S, F) -> (B, F): the features at each row's last real token, the largest index where
    ``attention_mask`` (B, S) is True (right or left padding); position S-1 without a mask. Scriptable."""
    b, s, _ = hidden.shape
    if attention_mask is None:
        return hidden[:, -1]
    pos = torch.arange(s, device=hidden.device).expand(b, s)  # (B, S)
    last = torch.where(attention_mask.to(torch.bool), pos, torch.zeros_like(pos)).max(dim=1).values  # (B,)
    return hidden[torch.arange(b, device=hidden.device), last]  # (B, F)


class TiedLMHead(nn.Module):
    """Vocabulary projection without bias, (..., E) -> (..., V), tied to the word embeddings or not.

    Tied (``tie=True``): no parameter of its own; :meth:`forward` projects with the embedding matrix it is given,
    so the state dict holds that tensor once. Untied: its own (V, E) ``weight`` (state-dict key
    ``<head>.weight``), initialised by :func:`~bigmodel_fast.nn.init.init_weights`.

    Args:
        hidden_size: input width E.
        vocab_size: number of logits V.
        tie: reuse the word embeddings instead of a separate matrix.
    """

    def __init__(self, hidden_size: int, vocab_size: int, tie: bool) -> None:
        super().__init__()
        self.weight: Optional[nn.Parameter] = None if tie else nn.Parameter(torch.empty(vocab_size, hidden_size))

    def output_weight(self, embedding_weight: Tensor) -> Tensor:
        """The (V, E) projection: ``embedding_weight`` itself when tied, else the head's own ``weight``."""
        w = self.weight
        if w is not None:
            return w
        return embedding_weight

    def forward(self, hidden: Tensor, embedding_weight: Tensor) -> Tensor:
        """hidden (..., E), embedding_weight (V, E) the word embeddings -> (..., V) logits."""
        return F.linear(hidden, self.output_weight(embedding_weight))
