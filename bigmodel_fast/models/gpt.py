"""GPT: causal transformer decoder (pre-LN), plus the language-modelling head."""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bigmodel_fast.models.bert import IGNORE_INDEX, masked_cross_entropy
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.nn import Block, Embeddings, init_weights, key_padding_mask

__all__ = ["GPTModel", "GPTForCausalLM", "causal_lm_labels"]


class GPTModel(nn.Module):
    """GPT decoder backbone.

    Word + learned position embeddings (dropout, no LayerNorm) -> ``num_layers`` causal blocks (pre-LN unless
    ``cfg.pre_ln is False``) -> final LayerNorm (pre-LN only). No segment embeddings.

    Args:
        cfg: model config with ``arch == "gpt"``.
    """

    __jit_ignored_attributes__ = ["cfg"]

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        pre_ln = cfg.use_pre_ln()
        self.embeddings = Embeddings(
            cfg.vocab_size, cfg.hidden_size, cfg.max_position, 0, cfg.dropout,
            layer_norm=False, layer_norm_eps=cfg.layer_norm_eps,
        )
        self.layers = nn.ModuleList(
            [
                Block(cfg.hidden_size, cfg.num_heads, cfg.intermediate_size, cfg.num_kv_heads, cfg.dropout,
                      causal=True, pre_ln=pre_ln, layer_norm_eps=cfg.layer_norm_eps)
                for _ in range(cfg.num_layers)
            ]
        )
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps) if pre_ln else None
        self.apply(lambda m: init_weights(m, cfg.initializer_range))

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Optional[Tensor] = None,
        token_type_ids: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
    ) -> Tensor:
        """Decode a batch (same signature as :meth:`BertModel.forward`).

        Args:
            input_ids: (B, S) long.
            attention_mask: (B, S) bool, True = real token; pads are masked as keys (use right padding).
            token_type_ids: must be None (GPT has no segment embeddings; ValueError otherwise).
            position_ids: (B, S) or (S,) long, default 0..S-1; pass per-document positions for packed
                sequences (attention still spans the whole row, as in GPT-2 style packing).

        Returns:
            (B, S, E) final hidden states.
        """
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, S, E)
        mask = key_padding_mask(attention_mask)  # (B, 1, 1, S) or None
        for layer in self.layers:
            x = layer(x, mask)
        norm = self.final_norm
        if norm is not None:
            x = norm(x)
        return x

    def pool(self, hidden: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Hidden state of the last real token of each row, (B, S, E) -> (B, E).

        The last real token is the largest index where ``attention_mask`` is True (works for right and left
        padding); without a mask it is position S-1.
        """
        b, s, _ = hidden.shape
        if attention_mask is None:
            return hidden[:, -1]
        pos = torch.arange(s, device=hidden.device).expand(b, s)  # (B, S)
        last = torch.where(attention_mask.to(torch.bool), pos, torch.zeros_like(pos)).max(dim=1).values  # (B,)
        return hidden[torch.arange(b, device=hidden.device), last]  # (B, E)


def causal_lm_labels(input_ids: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
    """Next-token labels for :class:`GPTForCausalLM` from ``input_ids`` (B, S).

    ``labels[:, t] = input_ids[:, t + 1]``; the last position and every position whose target is padding
    (``attention_mask`` False) get -100. (Loaders that read ``S + 1`` tokens produce these directly, as
    ``bigmodel_fast.data.loader.CausalLoader`` does, without losing the last target.)
    """
    labels = torch.full_like(input_ids, IGNORE_INDEX)  # (B, S)
    labels[:, :-1] = input_ids[:, 1:]
    if attention_mask is not None:
        labels[:, :-1][~attention_mask[:, 1:].to(torch.bool)] = IGNORE_INDEX
    return labels


class GPTForCausalLM(nn.Module):
    """GPT with a language-modelling head tied to the word embeddings.

    Args:
        cfg: model config with ``arch == "gpt"``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.arch != "gpt":
            raise ValueError(f"GPTForCausalLM needs a config with arch='gpt', got arch={cfg.arch!r}")
        self.cfg = cfg
        self.backbone = GPTModel(cfg)
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if self.lm_head is not None:
            init_weights(self.lm_head, cfg.initializer_range)

    def output_weight(self) -> Tensor:
        """The (V, E) LM projection: the word-embedding weight itself when tied."""
        if self.lm_head is not None:
            return self.lm_head.weight
        return self.backbone.embeddings.word_embeddings.weight

    def forward(
        self,
        input_ids: Tensor,
        labels: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
        attention_mask: Optional[Tensor] = None,
    ) -> Dict[str, Tensor]:
        """Next-token logits and loss.

        Args:
            input_ids: (B, S) long.
            labels: (B, S) long, ALREADY SHIFTED: ``labels[:, t]`` is the target of position t, i.e. the token
                after ``input_ids[:, t]`` (what ``CausalLoader`` yields, see :func:`causal_lm_labels`). The
                model does not shift. -100 is ignored.
            position_ids: (B, S) or (S,) long; restart at 0 for each packed document.
            attention_mask: (B, S) bool, True = real token.

        Returns:
            dict with ``logits`` (B, S, V) and, when ``labels`` is given, ``loss`` (mean over counted tokens).
        """
        hidden = self.backbone(input_ids, attention_mask, None, position_ids)  # (B, S, E)
        logits = F.linear(hidden, self.output_weight())  # (B, S, V)
        out: Dict[str, Tensor] = {"logits": logits}
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(labels.shape)}")
            out["loss"] = masked_cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        return out
