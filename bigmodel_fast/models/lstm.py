"""LSTM models: backbone, causal language model and sequence classifier (``arch == "lstm"``).

Built from :class:`bigmodel_fast.nn.lstm.LSTM`, so the recurrence runs through the ``ops.lstm`` dispatch (the
fused Triton kernels on CUDA, the reference loop on CPU and inside TorchScript).
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import Tensor, nn

from bigmodel_fast.models.classifier import SequenceClassifier
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.models.registry import expect_arch, register
from bigmodel_fast.models.token_classifier import TokenClassifier
from bigmodel_fast.nn import TiedLMHead, init_weights, last_token
from bigmodel_fast.nn.dropout import Dropout
from bigmodel_fast.nn.heads import lm_head_outputs
from bigmodel_fast.nn.lstm import LSTM

__all__ = ["LSTMModel", "LSTMForCausalLM", "LSTMClassifier"]


class LSTMModel(nn.Module):
    """LSTM backbone: word embeddings -> dropout -> ``cfg.num_layers`` LSTM layers of width ``cfg.hidden_size``
    (bidirectional when ``cfg.bidirectional``; dropout between layers) -> (B, S, D * hidden_size).

    ``forward(input_ids, attention_mask=None, token_type_ids=None)`` has the signature of the transformer
    backbones. ``attention_mask`` (B, S), True = real token, must be right padding: its row sums are the sequence
    lengths, padded steps leave the state unchanged and output 0, so real positions do not depend on the padding.
    ``token_type_ids`` must be None. There are no position embeddings (``max_position`` only bounds inputs).

    Args:
        cfg: model config with ``arch == "lstm"``.
    """

    __jit_ignored_attributes__ = ["cfg"]

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        expect_arch(cfg, "lstm", "LSTMModel")
        self.cfg = cfg
        self.bidirectional = cfg.bidirectional
        self.hidden_size = cfg.hidden_size
        self.output_size = cfg.hidden_size * (2 if cfg.bidirectional else 1)
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.dropout = Dropout(cfg.dropout)
        self.lstm = LSTM(cfg.hidden_size, cfg.hidden_size, num_layers=cfg.num_layers, batch_first=True,
                         dropout=cfg.dropout if cfg.num_layers > 1 else 0.0, bidirectional=cfg.bidirectional)
        init_weights(self.embeddings, cfg.initializer_range)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Optional[Tensor] = None,
        token_type_ids: Optional[Tensor] = None,
    ) -> Tensor:
        """(B, S) ids -> (B, S, D * hidden_size) LSTM outputs (0 at padded positions)."""
        if token_type_ids is not None:
            raise ValueError("LSTMModel: token_type_ids must be None (arch 'lstm' has no segment embeddings)")
        if input_ids.dim() != 2:
            raise ValueError("LSTMModel: input_ids must be (B, S); got shape " + str(input_ids.shape))
        lengths: Optional[Tensor] = None
        if attention_mask is not None:
            lengths = attention_mask.to(torch.long).sum(dim=1)  # (B,), right padding
        x = self.dropout(self.embeddings(input_ids))  # (B, S, E)
        out, _ = self.lstm(x, None, lengths)  # (B, S, D*E)
        return out

    def pool(self, hidden: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        """Sequence vector, (B, S, D*E) -> (B, D*E): the forward direction at the last real token (largest True
        index of ``attention_mask``; S-1 without a mask), concatenated with the reverse direction at position 0 when
        bidirectional (each direction's state after reading the whole sequence)."""
        fwd = last_token(hidden[:, :, : self.hidden_size], attention_mask)  # (B, E)
        if not self.bidirectional:
            return fwd
        return torch.cat([fwd, hidden[:, 0, self.hidden_size:]], dim=1)  # (B, 2E)


class LSTMForCausalLM(nn.Module):
    """LSTM language model: :class:`LSTMModel` -> dropout -> output projection tied to the word embeddings.

    ``forward(input_ids, labels=None, position_ids=None, attention_mask=None)`` mirrors
    :class:`~bigmodel_fast.models.gpt.GPTForCausalLM` (``labels`` already shifted, -100 ignored), so the causal
    loader and the pretraining loop drive it unchanged; ``position_ids`` is accepted and ignored.

    ``lm_loss`` / ``lm_loss_chunk_size`` (attributes, default ``"chunked"`` / None) as in ``GPTForCausalLM``:
    training with grad and labels returns only the chunked ``loss`` (no (B, S, V) logits) unless
    ``model.lm_loss = "plain"``.

    Args:
        cfg: model config with ``arch == "lstm"`` and ``bidirectional`` False.
    """

    lm_loss: str = "chunked"
    lm_loss_chunk_size: Optional[int] = None

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        expect_arch(cfg, "lstm", "LSTMForCausalLM")
        if cfg.bidirectional:
            raise ValueError("LSTMForCausalLM: a causal language model cannot be bidirectional "
                             "(config field bidirectional must be false)")
        self.cfg = cfg
        self.backbone = LSTMModel(cfg)
        self.dropout = Dropout(cfg.dropout)
        self.lm_head = TiedLMHead(cfg.hidden_size, cfg.vocab_size, tie=cfg.tie_embeddings)
        init_weights(self.lm_head, cfg.initializer_range)

    def output_weight(self) -> Tensor:
        """The (V, E) output projection: the word-embedding weight itself when tied."""
        return self.lm_head.output_weight(self.backbone.embeddings.weight)

    def forward(
        self,
        input_ids: Tensor,
        labels: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
        attention_mask: Optional[Tensor] = None,
    ) -> Dict[str, Tensor]:
        """Next-token logits (B, S, V) and, with ``labels`` (B, S), the mean ``loss`` over counted tokens; only
        ``loss`` (no logits) when training with grad, labels and ``lm_loss == "chunked"`` (the default)."""
        hidden = self.dropout(self.backbone(input_ids, attention_mask))  # (B, S, E)
        return lm_head_outputs(self.lm_head, hidden, self.backbone.embeddings.weight, labels, self.lm_loss,
                               self.training, self.lm_loss_chunk_size)


class LSTMClassifier(SequenceClassifier):
    """:class:`SequenceClassifier` with an :class:`LSTMModel` backbone: pooled vector (see
    :meth:`LSTMModel.pool`) -> dropout -> Linear(D * hidden_size, num_labels). Same ``forward`` and
    ``load_backbone`` as the transformer classifiers; scriptable (the recurrence runs the reference path in
    TorchScript), so ``bmf export`` works.

    Args:
        cfg: model config with ``arch == "lstm"`` and ``num_labels > 0``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        expect_arch(cfg, "lstm", "LSTMClassifier")
        super().__init__(cfg, LSTMModel(cfg))


register("lstm", "pretrain", LSTMForCausalLM, loader_mode="causal", export_target=None)
register("lstm", "classify", LSTMClassifier, backbone=LSTMModel, export_target="classify")
register("lstm", "token_classify", TokenClassifier, backbone=LSTMModel, export_target="token")
