"""Models: config, BERT, GPT, sequence classifier, and builders used by the trainer and CLI."""

from __future__ import annotations

from torch import nn

from bigmodel_fast.models.bert import BertForPretraining, BertModel
from bigmodel_fast.models.checks import InputError, check_inputs
from bigmodel_fast.models.classifier import SequenceClassifier
from bigmodel_fast.models.config import ARCHS, ConfigError, ModelConfig
from bigmodel_fast.models.gpt import GPTForCausalLM, GPTModel, causal_lm_labels

__all__ = [
    "ARCHS",
    "BertForPretraining",
    "BertModel",
    "ConfigError",
    "GPTForCausalLM",
    "GPTModel",
    "InputError",
    "ModelConfig",
    "SequenceClassifier",
    "build_classifier",
    "build_pretraining_model",
    "causal_lm_labels",
    "check_inputs",
]


def build_pretraining_model(cfg: ModelConfig) -> nn.Module:
    """BertForPretraining for ``cfg.arch == "bert"``, GPTForCausalLM for ``"gpt"``."""
    if cfg.arch == "bert":
        return BertForPretraining(cfg)
    if cfg.arch == "gpt":
        return GPTForCausalLM(cfg)
    raise ConfigError(f"model config field 'arch': expected one of {', '.join(ARCHS)}, got {cfg.arch!r}")


def build_classifier(cfg: ModelConfig) -> SequenceClassifier:
    """SequenceClassifier with the backbone of ``cfg.arch``; ``cfg.num_labels`` must be > 0."""
    return SequenceClassifier(cfg)
