"""Sequence classifier on top of any registered backbone (BERT, GPT, LSTM; TorchScript-scriptable)."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from torch import Tensor, nn

from bigmodel_fast.models import registry
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.nn import init_weights
from bigmodel_fast.nn.dropout import Dropout

__all__ = ["SequenceClassifier"]

BACKBONE_PREFIX = "backbone."


class SequenceClassifier(nn.Module):
    """Backbone -> pooled vector -> dropout -> Linear(E, num_labels).

    Pooling is the backbone's ``pool``: bert uses the tanh pooler over the first ([CLS]) token; gpt uses the last
    real token (last True in ``attention_mask``). Scriptable with ``torch.jit.script``.

    Args:
        cfg: model config with ``num_labels > 0``; ``cfg.arch`` picks the backbone (the ``backbone`` of its
            ``"classify"`` registration, :mod:`bigmodel_fast.models.registry`).
        backbone: a prebuilt backbone instead (subclasses: the LSTM classifier); the head is as wide as its
            ``output_size`` (default ``cfg.hidden_size``).
    """

    __jit_ignored_attributes__ = ["cfg"]
    registry_task = "classify"  # the registration whose backbone this head builds

    def __init__(self, cfg: ModelConfig, backbone: Optional[nn.Module] = None) -> None:
        super().__init__()
        who, task = type(self).__name__, self.registry_task
        if cfg.num_labels <= 0:
            raise ValueError(f"{who} needs config field num_labels > 0, got {cfg.num_labels}")
        self.cfg = cfg
        if backbone is None:
            spec = registry.get(cfg.arch, task)
            if spec.backbone is None:
                raise ValueError(f"{who}: the {task!r} registration of arch {cfg.arch!r} names no "
                                 f"backbone; register it with backbone=<its backbone class>")
            backbone = spec.backbone(cfg)
        self.backbone = backbone  # has pool(hidden, attention_mask); output_size when not hidden_size wide
        self.dropout = Dropout(cfg.dropout)
        self.classifier = nn.Linear(getattr(backbone, "output_size", cfg.hidden_size), cfg.num_labels)
        init_weights(self.classifier, cfg.initializer_range)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Optional[Tensor] = None,
        token_type_ids: Optional[Tensor] = None,
    ) -> Tensor:
        """Classify a batch.

        Args:
            input_ids: (B, S) long.
            attention_mask: (B, S) bool, True = real token (right padding); None = no padding.
            token_type_ids: (B, S) long segment ids (bert only; must be None for gpt).

        Returns:
            (B, num_labels) logits.
        """
        hidden = self.backbone(input_ids, attention_mask, token_type_ids)  # (B, S, E)
        pooled = self.backbone.pool(hidden, attention_mask)  # (B, E)
        return self.classifier(self.dropout(pooled))  # (B, num_labels)

    def load_backbone(self, state_dict: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """Load backbone weights from a pretraining (or classifier, or bare backbone) state dict.

        Keys starting with ``backbone.`` are used (prefix stripped); if there are none, the dict is taken to be a
        bare backbone state dict. Head weights (MLM/NSP/LM) are ignored.

        Returns:
            ``(missing, unexpected)`` backbone keys, prefixed with ``backbone.``.

        Raises:
            ValueError: no key matches this backbone, or a tensor shape differs (config mismatch).
        """
        sub = {k[len(BACKBONE_PREFIX):]: v for k, v in state_dict.items() if k.startswith(BACKBONE_PREFIX)}
        if not sub:
            sub = dict(state_dict)
        own = self.backbone.state_dict()
        if not any(k in own for k in sub):
            raise ValueError(
                f"load_backbone: none of the {len(sub)} keys match the {self.cfg.arch} backbone "
                f"(expected keys like {next(iter(own))!r}); is this a checkpoint of a different architecture?"
            )
        for k, v in sub.items():
            if k in own and tuple(own[k].shape) != tuple(v.shape):
                raise ValueError(
                    f"load_backbone: {BACKBONE_PREFIX}{k} has shape {tuple(v.shape)} in the checkpoint but "
                    f"{tuple(own[k].shape)} in this model; the model config does not match the checkpoint's"
                )
        result = self.backbone.load_state_dict(sub, strict=False)
        missing = [BACKBONE_PREFIX + k for k in result.missing_keys]
        unexpected = [BACKBONE_PREFIX + k for k in result.unexpected_keys]
        return missing, unexpected
