"""Token classifier (NER and other tagging) on top of any registered backbone (BERT, GPT, LSTM; scriptable)."""

from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from bigmodel_fast.models.classifier import SequenceClassifier
from bigmodel_fast.models.config import ModelConfig

__all__ = ["TokenClassifier"]


class TokenClassifier(SequenceClassifier):
    """Backbone -> per-position hidden state -> dropout -> Linear(E, num_labels): one label distribution per token.

    The backbone is the one of ``cfg.arch``'s ``"token_classify"`` registration
    (:mod:`bigmodel_fast.models.registry`); weights load from a pretraining checkpoint with :meth:`load_backbone`
    like the sequence classifier's (the head is named ``classifier`` in both). A GPT backbone is causal, so a token
    sees only the words before it; BERT and a bidirectional LSTM see both sides. Labels are ``cfg.label_names``
    (tags such as ``B-PER``), in logit order. Scriptable with ``torch.jit.script``.
    """

    registry_task = "token_classify"

    def __init__(self, cfg: ModelConfig, backbone: Optional[nn.Module] = None) -> None:
        super().__init__(cfg, backbone)
        # a backbone's sequence pooler (BERT's tanh pooler) takes no part in tagging: frozen, so that no optimizer
        # decays it and DDP does not wait for gradients it never gets (it stays in the state dict, as loaded)
        pooler = getattr(self.backbone, "pooler", None)
        if isinstance(pooler, nn.Module):
            pooler.requires_grad_(False)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Optional[Tensor] = None,
        token_type_ids: Optional[Tensor] = None,
    ) -> Tensor:
        """Tag logits of a batch.

        Args:
            input_ids: (B, S) long.
            attention_mask: (B, S) bool, True = real token (right padding); None = no padding.
            token_type_ids: (B, S) long segment ids (bert only).

        Returns:
            (B, S, num_labels) logits (rows at padded positions are computed but mean nothing).
        """
        hidden = self.backbone(input_ids, attention_mask, token_type_ids)  # (B, S, E)
        return self.classifier(self.dropout(hidden))  # (B, S, num_labels)
