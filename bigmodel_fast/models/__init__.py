"""Models: config, BERT, GPT, LSTM, sequence classifiers, the arch/task registry and the builders the trainers,
checkpoints and CLI use.

Importing this package imports every model module, and each registers its (arch, task) pairs in
:mod:`bigmodel_fast.models.registry` (in this order: bert, gpt, lstm).
"""

from __future__ import annotations

from torch import nn

from bigmodel_fast.models import registry
from bigmodel_fast.models.bert import BertForPretraining, BertModel
from bigmodel_fast.models.checks import InputError, check_inputs
from bigmodel_fast.models.classifier import SequenceClassifier
from bigmodel_fast.models.config import ConfigError, ModelConfig
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
    "registry",
]


def __getattr__(name: str):
    if name == "ARCHS":  # the registered architectures, read when asked (a module constant would go stale)
        return registry.arch_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_pretraining_model(cfg: ModelConfig) -> nn.Module:
    """The registered ``"pretrain"`` model of ``cfg.arch``: BertForPretraining for ``"bert"``, GPTForCausalLM for
    ``"gpt"``, LSTMForCausalLM for ``"lstm"``."""
    return registry.build_model(cfg, "pretrain")


def build_classifier(cfg: ModelConfig) -> SequenceClassifier:
    """The registered ``"classify"`` model of ``cfg.arch``: a SequenceClassifier with its backbone (LSTMClassifier
    for ``"lstm"``); ``cfg.num_labels`` must be > 0."""
    return registry.build_model(cfg, "classify")
