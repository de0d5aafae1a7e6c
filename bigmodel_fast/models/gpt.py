"""GPT: causal transformer decoder (pre-LN), plus the language-modelling head."""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor, nn

from bigmodel_fast.models.classifier import SequenceClassifier
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.models.registry import expect_arch, register
from bigmodel_fast.models.token_classifier import TokenClassifier
from bigmodel_fast.nn import IGNORE_INDEX, TiedLMHead, TransformerStack, init_weights, last_token
from bigmodel_fast.nn.heads import lm_head_outputs

__all__ = ["GPTModel", "GPTForCausalLM", "causal_lm_labels"]


class GPTModel(TransformerStack):
    """GPT decoder backbone.

    Word + learned position embeddings (dropout, no LayerNorm) -> ``num_layers`` causal blocks (pre-LN unless
    ``cfg.pre_ln is False``) -> final LayerNorm (pre-LN only). No segment embeddings.

    ``forward(input_ids, attention_mask, token_type_ids, position_ids) -> (B, S, E)`` is
    :meth:`TransformerStack.forward` (same signature as :class:`BertModel`): pads in ``attention_mask`` are
    masked as keys (use right padding); ``token_type_ids`` must be None (ValueError otherwise); pass
    per-document ``position_ids`` for packed sequences, and ``cu_seqlens``/``max_seqlen`` so that attention stays
    inside each document (without them attention spans the whole row, as in GPT-2 style packing).

    Args:
        cfg: model config with ``arch == "gpt"``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, causal=True, type_vocab_size=0, embedding_layer_norm=False)
        self.reset_parameters()

    def pool(self, hidden: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Hidden state of the last real token of each row, (B, S, E) -> (B, E).

        The last real token is the largest index where ``attention_mask`` is True (works for right and left
        padding); without a mask it is position S-1.
        """
        return last_token(hidden, attention_mask)


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
    """GPT with a language-modelling head (``lm_head``, a :class:`~bigmodel_fast.nn.heads.TiedLMHead`) tied to the
    word embeddings unless ``cfg.tie_embeddings`` is false.

    ``lm_loss`` (attribute, not a config field; default ``"chunked"``): in training mode with grad enabled and
    ``labels`` given, ``"chunked"`` computes the loss with
    :func:`~bigmodel_fast.ops.linear_cross_entropy.linear_cross_entropy` (the (B, S, V) logits are never
    materialised) and returns no ``logits``; ``"plain"`` always projects to logits first. Set it on the instance,
    ``model.lm_loss = "plain"``. ``lm_loss_chunk_size`` (default None: about 32 MB of fp32 logits per chunk)
    overrides the tokens per chunk.

    Args:
        cfg: model config with ``arch == "gpt"``.
    """

    lm_loss: str = "chunked"
    lm_loss_chunk_size: Optional[int] = None

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        expect_arch(cfg, "gpt", "GPTForCausalLM")
        self.cfg = cfg
        self.backbone = GPTModel(cfg)
        self.lm_head = TiedLMHead(cfg.hidden_size, cfg.vocab_size, tie=cfg.tie_embeddings)
        init_weights(self.lm_head, cfg.initializer_range)

    def output_weight(self) -> Tensor:
        """The (V, E) LM projection: the word-embedding weight itself when tied."""
        return self.lm_head.output_weight(self.backbone.embeddings.word_embeddings.weight)

    def forward(
        self,
        input_ids: Tensor,
        labels: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
        attention_mask: Optional[Tensor] = None,
        cu_seqlens: Optional[Tensor] = None,
        max_seqlen: Optional[int] = None,
    ) -> Dict[str, Tensor]:
        """Next-token logits and loss.

        Args:
            input_ids: (B, S) long.
            labels: (B, S) long, ALREADY SHIFTED: ``labels[:, t]`` is the target of position t, i.e. the token
                after ``input_ids[:, t]`` (what ``CausalLoader`` yields, see :func:`causal_lm_labels`). The
                model does not shift. -100 is ignored.
            position_ids: (B, S) or (S,) long; restart at 0 for each packed document.
            attention_mask: (B, S) bool, True = real token.
            cu_seqlens: (N + 1,) int32 cumulative document lengths over the flattened B * S tokens (packed
                batches, e.g. ``TokenLoader(pack=True)``): no attention across documents.
            max_seqlen: longest document in ``cu_seqlens`` (computed when None).

        Returns:
            dict with ``logits`` (B, S, V) and, when ``labels`` is given, ``loss`` (mean over counted tokens);
            ``loss`` ONLY (no ``logits``) when training with grad enabled, ``labels`` given and ``lm_loss`` is
            ``"chunked"`` (the default), see the class docstring. Evaluation (``model.eval()`` or ``no_grad``)
            always gets ``logits``.
        """
        hidden = self.backbone(input_ids, attention_mask, None, position_ids, cu_seqlens, max_seqlen)  # (B, S, E)
        return lm_head_outputs(self.lm_head, hidden, self.backbone.embeddings.word_embeddings.weight, labels,
                               self.lm_loss, self.training, self.lm_loss_chunk_size)


register("gpt", "pretrain", GPTForCausalLM, loader_mode="causal", pack=True, export_target="lm")
register("gpt", "classify", SequenceClassifier, backbone=GPTModel, export_target="classify")
register("gpt", "token_classify", TokenClassifier, backbone=GPTModel, export_target="token")
