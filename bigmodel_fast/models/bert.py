"""BERT: bidirectional transformer encoder, plus the MLM + NSP pretraining heads."""

from __future__ import annotations

from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bigmodel_fast.models.classifier import SequenceClassifier
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.models.registry import expect_arch, register
from bigmodel_fast.models.token_classifier import TokenClassifier
from bigmodel_fast.nn import IGNORE_INDEX, TiedLMHead, TransformerStack, init_weights, masked_cross_entropy
from bigmodel_fast.nn.transformer import activation

__all__ = ["BertModel", "BertForPretraining", "MLMHead"]


class BertModel(TransformerStack):
    """BERT encoder backbone.

    Embeddings (word + learned position + segment, LayerNorm, dropout) -> ``num_layers`` bidirectional
    blocks (post-LN by default like the original BERT, pre-LN when ``cfg.use_pre_ln()``; pre-LN adds a
    final LayerNorm) and a tanh pooler over the first ([CLS]) token. ``forward(input_ids, attention_mask,
    token_type_ids, position_ids) -> (B, S, E)`` is :meth:`TransformerStack.forward`.

    Args:
        cfg: model config with ``arch == "bert"``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg, causal=False, type_vocab_size=cfg.type_vocab_size, embedding_layer_norm=True)
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.reset_parameters()

    def pool(self, hidden: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """tanh(Linear(hidden[:, 0])): the pooled [CLS] vector, (B, S, E) -> (B, E).

        ``attention_mask`` is accepted for interface parity with :meth:`GPTModel.pool` and unused.
        """
        return torch.tanh(self.pooler(hidden[:, 0]))


class MLMHead(nn.Module):
    """Masked-LM head: Linear(E, E) -> activation (``cfg.hidden_act``, default GELU) -> LayerNorm -> vocab
    projection (+ own bias).

    The projection (``decoder``, a :class:`~bigmodel_fast.nn.heads.TiedLMHead`) is the word-embedding matrix when
    ``tie_embeddings`` (no separate parameter, so the state dict has no duplicate tensor), else an independent
    (V, E) ``decoder.weight``.
    """

    def __init__(self, cfg: ModelConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.hidden_act = cfg.hidden_act
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.tied = cfg.tie_embeddings
        # Held in a list so the tied embedding is not registered (and saved) twice.
        self._tied_embedding = [word_embeddings]
        self.decoder = TiedLMHead(cfg.hidden_size, cfg.vocab_size, tie=cfg.tie_embeddings)

    def decoder_weight(self) -> Tensor:
        """The (V, E) output projection: the word-embedding weight itself when tied."""
        return self.decoder.output_weight(self._tied_embedding[0].weight)

    def forward(self, hidden: Tensor) -> Tensor:
        """(..., E) -> (..., V) logits."""
        h = self.norm(activation(self.dense(hidden), self.hidden_act))
        return F.linear(h, self.decoder_weight(), self.bias)


class BertForPretraining(nn.Module):
    """BERT with the masked-LM head (tied to the word embeddings) and the next-sentence-prediction head.

    Args:
        cfg: model config with ``arch == "bert"``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        expect_arch(cfg, "bert", "BertForPretraining")
        self.cfg = cfg
        self.backbone = BertModel(cfg)
        self.mlm_head = MLMHead(cfg, self.backbone.embeddings.word_embeddings)
        self.nsp_head = nn.Linear(cfg.hidden_size, 2)
        self.mlm_head.apply(lambda m: init_weights(m, cfg.initializer_range))
        init_weights(self.nsp_head, cfg.initializer_range)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Optional[Tensor] = None,
        attention_mask: Optional[Tensor] = None,
        mlm_labels: Optional[Tensor] = None,
        nsp_labels: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
        cu_seqlens: Optional[Tensor] = None,
        max_seqlen: Optional[int] = None,
    ) -> Dict[str, Tensor]:
        """Run the encoder and both heads.

        Args:
            input_ids: (B, S) long (already masked).
            token_type_ids: (B, S) long segment ids, default 0.
            attention_mask: (B, S) bool, True = real token.
            mlm_labels: (B, S) long original ids at masked positions, -100 elsewhere. When given, the vocab
                projection runs only on the N positions with a label (boolean gather: one host sync).
            nsp_labels: (B,) long, 1 = "B is a random span" (0 = B follows A; -100 ignored). NSP loss only when given.
            position_ids: (B, S) long, default 0..S-1.
            cu_seqlens: (N + 1,) int32 cumulative sequence lengths over the flattened B * S tokens (packed rows:
                each row's real tokens and its padding as separate sequences); attention stays inside each.
            max_seqlen: longest sequence in ``cu_seqlens`` (computed when None).

        Returns:
            dict with
            ``nsp_logits`` (B, 2) always;
            ``mlm_logits`` (N, V) and ``mlm_targets`` (N,) when ``mlm_labels`` is given, else
            ``mlm_logits`` (B, S, V) over every position;
            ``mlm_loss`` (when ``mlm_labels``), ``nsp_loss`` (when ``nsp_labels``), and
            ``loss`` = mlm_loss + nsp_loss (whichever exist; absent when neither label is given).
        """
        hidden = self.backbone(input_ids, attention_mask, token_type_ids, position_ids, cu_seqlens, max_seqlen)
        out: Dict[str, Tensor] = {}
        out["nsp_logits"] = self.nsp_head(self.backbone.pool(hidden))  # (B, 2)
        loss: Optional[Tensor] = None
        if mlm_labels is not None:
            if mlm_labels.shape != input_ids.shape:
                raise ValueError(f"mlm_labels must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(mlm_labels.shape)}")
            selected = mlm_labels != IGNORE_INDEX  # (B, S)
            targets = mlm_labels[selected]  # (N,)
            logits = self.mlm_head(hidden[selected])  # (N, V)
            out["mlm_logits"] = logits
            out["mlm_targets"] = targets
            out["mlm_loss"] = masked_cross_entropy(logits, targets)
            loss = out["mlm_loss"]
        else:
            out["mlm_logits"] = self.mlm_head(hidden)  # (B, S, V)
        if nsp_labels is not None:
            out["nsp_loss"] = masked_cross_entropy(out["nsp_logits"], nsp_labels.view(-1))
            loss = out["nsp_loss"] if loss is None else loss + out["nsp_loss"]
        if loss is not None:
            out["loss"] = loss
        return out


register("bert", "pretrain", BertForPretraining, loader_mode="mlm", export_target=None)
register("bert", "classify", SequenceClassifier, backbone=BertModel, export_target="classify")
register("bert", "token_classify", TokenClassifier, backbone=BertModel, export_target="token")
