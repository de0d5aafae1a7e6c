"""Output heads and losses shared by the models: the tied LM projection, the masked cross-entropy and
last-token pooling. Everything here is TorchScript-scriptable except :func:`lm_head_outputs` (the training-time
dispatch between the plain and the chunked LM loss, which calls an ``autograd.Function``; the export wrappers call
:class:`TiedLMHead` directly)."""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bigmodel_fast.ops.linear_cross_entropy import linear_cross_entropy

__all__ = ["IGNORE_INDEX", "LM_LOSS_MODES", "TiedLMHead", "last_token", "lm_head_outputs", "lm_outputs",
           "masked_cross_entropy"]

IGNORE_INDEX = -100  # label of positions that count in no loss (padding, unmasked MLM positions)
LM_LOSS_MODES = ("chunked", "plain")  # values of the causal LMs' ``lm_loss`` attribute, see lm_head_outputs


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


def _check_labels(labels: Tensor, hidden: Tensor) -> None:
    """ValueError unless ``labels`` has the (B, S) shape of the (B, S, E) ``hidden``'s token positions."""
    if labels.shape != hidden.shape[:-1]:
        raise ValueError(f"labels must have the shape of input_ids {tuple(hidden.shape[:-1])}, "
                         f"got {tuple(labels.shape)}")


def lm_head_outputs(head: TiedLMHead, hidden: Tensor, embedding_weight: Tensor, labels: Optional[Tensor],
                    lm_loss: str, training: bool, chunk_size: Optional[int] = None) -> Dict[str, Tensor]:
    """The causal LMs' head + loss: :func:`lm_outputs` of ``head(hidden)``, or the chunked loss alone.

    Chunked mode (``lm_loss == "chunked"`` and ``training`` and grad enabled and ``labels`` given): returns
    ``{"loss"}`` only, the mean CE over labels != -100 from
    :func:`~bigmodel_fast.ops.linear_cross_entropy.linear_cross_entropy` over all B * S positions (ignored ones
    included, so no host sync), which never holds the (B, S, V) logits; same value and gradients as the plain
    path up to float summation order. Otherwise (``"plain"``, eval mode, no grad or no labels): ``{"logits"}``
    (B, S, V) plus ``"loss"`` with labels, exactly :func:`lm_outputs`.

    Args:
        head: the model's :class:`TiedLMHead`.
        hidden: (B, S, E) final hidden states.
        embedding_weight: (V, E) word embeddings (the projection when the head is tied).
        labels: (B, S) long, already shifted, -100 ignored; or None.
        lm_loss: ``"chunked"`` or ``"plain"`` (ValueError otherwise).
        training: the model's ``training`` flag.
        chunk_size: tokens per chunk (default: about 32 MB of fp32 logits per chunk).
    """
    if lm_loss not in LM_LOSS_MODES:
        raise ValueError(f"lm_loss must be 'chunked' or 'plain', got {lm_loss!r}")
    if labels is not None and lm_loss == "chunked" and training and torch.is_grad_enabled():
        _check_labels(labels, hidden)
        flat = hidden.reshape(-1, hidden.shape[-1])  # (B*S, E)
        weight = head.output_weight(embedding_weight)  # (V, E)
        return {"loss": linear_cross_entropy(flat, weight, labels.reshape(-1), IGNORE_INDEX, chunk_size)}
    return lm_outputs(head(hidden, embedding_weight), labels)


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
