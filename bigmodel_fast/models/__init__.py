"""Models: config, BERT, GPT, LSTM, sequence classifiers, and builders used by the trainer and CLI."""

from __future__ import annotations

from torch import nn

from bigmodel_fast.models.bert import BertForPretraining, BertModel
from bigmodel_fast.models.checks import InputError, check_inputs
from bigmodel_fast.models.classifier import SequenceClassifier
from bigmodel_fast.models.config import ARCHS, ConfigError, ModelConfig
from bigmodel_fast.models.gpt import GPTForCausalLM, GPTModel, causal_lm_labels
from bigmodel_fast.models.lstm import LSTMClassifier, LSTMForCausalLM, LSTMModel

__all__ = [
    "ARCHS",
    "BertForPretraining",
    "BertModel",
    "ConfigError",
    "GPTForCausalLM",
    "GPTModel",
    "InputError",
    "LSTMClassifier",
    "LSTMForCausalLM",
    "LSTMModel",
    "ModelConfig",
    "SequenceClassifier",
    "build_classifier",
    "build_pretraining_model",
    "causal_lm_labels",
    "check_inputs",
]


def build_pretraining_model(cfg: ModelConfig) -> nn.Module:
    """BertForPretraining for ``cfg.arch == "bert"``, GPTForCausalLM for ``"gpt"``, LSTMForCausalLM for ``"lstm"``."""
    if cfg.arch == "bert":
        return BertForPretraining(cfg)
    if cfg.arch == "gpt":
        return GPTForCausalLM(cfg)
    if cfg.arch == "lstm":
        return LSTMForCausalLM(cfg)
    raise ConfigError(f"model config field 'arch': expected one of {', '.join(ARCHS)}, got {cfg.arch!r}")


def build_classifier(cfg: ModelConfig) -> SequenceClassifier:
    """SequenceClassifier with the backbone of ``cfg.arch`` (LSTMClassifier for ``"lstm"``); ``cfg.num_labels``
    must be > 0."""
    if cfg.arch == "lstm":
        return LSTMClassifier(cfg)
    return SequenceClassifier(cfg)
