"""The architecture/task registry: lookups, errors that name the choices, and a toy architecture plugged in."""

from __future__ import annotations

from typing import Dict, Optional

import pytest
import torch
from torch import Tensor, nn

from bigmodel_fast.models import (
    BertForPretraining,
    ConfigError,
    GPTForCausalLM,
    LSTMClassifier,
    LSTMForCausalLM,
    ModelConfig,
    SequenceClassifier,
    build_classifier,
    build_pretraining_model,
    registry,
)
from bigmodel_fast.models.token_classifier import TokenClassifier
from bigmodel_fast.nn import last_token, lm_outputs


def test_builtin_archs_and_tasks():
    assert registry.arch_names() == ("bert", "gpt", "lstm")
    import bigmodel_fast.models as models

    assert models.ARCHS == ("bert", "gpt", "lstm")
    for arch in registry.arch_names():
        assert registry.tasks_of(arch) == ("pretrain", "classify", "token_classify")
    assert registry.tasks_of("t5") == ()


@pytest.mark.parametrize(
    "arch,cls,mode,pack,target",
    [
        ("bert", BertForPretraining, "mlm", False, None),
        ("gpt", GPTForCausalLM, "causal", True, "lm"),
        ("lstm", LSTMForCausalLM, "causal", False, None),
    ],
)
def test_pretrain_entries(arch, cls, mode, pack, target):
    spec = registry.get(arch, "pretrain")
    assert (spec.model_cls, spec.loader_mode, spec.pack, spec.export_target) == (cls, mode, pack, target)
    clf = registry.get(arch, "classify")
    assert clf.export_target == "classify" and clf.loader_mode is None
    assert clf.model_cls is (LSTMClassifier if arch == "lstm" else SequenceClassifier)
    tok = registry.get(arch, "token_classify")
    assert tok.model_cls is TokenClassifier and tok.export_target == "token" and tok.backbone is clf.backbone


def test_unknown_arch_names_the_choices():
    with pytest.raises(ConfigError, match="'arch'.*bert, gpt, lstm.*'t5'"):
        registry.get("t5", "pretrain")


def test_missing_task_names_the_archs_tasks():
    registry.register("toy_only_lm", "pretrain", nn.Identity, loader_mode="causal")
    try:
        with pytest.raises(ConfigError, match="'toy_only_lm' has no task 'token_classify'; its tasks: pretrain$"):
            registry.get("toy_only_lm", "token_classify")
        assert registry.find("toy_only_lm", "token_classify") is None
    finally:
        registry.unregister("toy_only_lm", "pretrain")


def test_register_rejects_bad_entries():
    with pytest.raises(ValueError, match="unknown task.*pretrain, classify, token_classify"):
        registry.register("toy", "summarize", nn.Identity)
    with pytest.raises(ValueError, match="needs a loader_mode"):
        registry.register("toy", "pretrain", nn.Identity)
    with pytest.raises(ValueError, match="loader_mode must be one of mlm, causal"):
        registry.register("toy", "pretrain", nn.Identity, loader_mode="span")
    with pytest.raises(ValueError, match="already registered to BertForPretraining"):
        registry.register("bert", "pretrain", GPTForCausalLM, loader_mode="mlm")
    assert "toy" not in registry.arch_names()


def test_checkpoint_kinds_map_to_tasks():
    assert registry.task_of_kind("pretrain") == "pretrain"
    assert registry.task_of_kind("classifier") == "classify"
    with pytest.raises(ValueError, match="unknown checkpoint kind 'adapter'"):
        registry.task_of_kind("adapter")


# ------------------------------------------------------------------------------------------- a toy architecture
class ToyBackbone(nn.Module):
    """Bag of embeddings: (B, S) ids -> (B, S, E); pools the last real token."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        registry.expect_arch(cfg, "toy", "ToyBackbone")
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)

    def forward(self, input_ids: Tensor, attention_mask: Optional[Tensor] = None,
                token_type_ids: Optional[Tensor] = None) -> Tensor:
        return self.embeddings(input_ids)

    def pool(self, hidden: Tensor, attention_mask: Optional[Tensor] = None) -> Tensor:
        return last_token(hidden, attention_mask)


class ToyLM(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.backbone = ToyBackbone(cfg)

    def forward(self, input_ids: Tensor, labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
        hidden = self.backbone(input_ids)
        return lm_outputs(hidden @ self.backbone.embeddings.weight.T, labels)


@pytest.fixture
def toy_arch():
    """Registers arch "toy" (pretrain + classify) for one test, then removes it again."""
    registry.register("toy", "pretrain", ToyLM, loader_mode="causal")
    registry.register("toy", "classify", SequenceClassifier, backbone=ToyBackbone, export_target="classify")
    yield "toy"
    registry.unregister("toy", "pretrain")
    registry.unregister("toy", "classify")


def toy_config(**kw) -> ModelConfig:
    return ModelConfig(arch="toy", vocab_size=40, hidden_size=16, num_heads=2, type_vocab_size=0, **kw)


def test_toy_arch_plugs_in(toy_arch):
    assert registry.arch_names() == ("bert", "gpt", "lstm", "toy")
    assert registry.tasks_of("toy") == ("pretrain", "classify")
    lm = build_pretraining_model(toy_config())
    assert isinstance(lm, ToyLM)
    ids = torch.randint(0, 40, (2, 5))
    out = lm(ids, labels=ids)
    assert out["logits"].shape == (2, 5, 40) and torch.isfinite(out["loss"])

    clf = build_classifier(toy_config(num_labels=3))
    assert type(clf) is SequenceClassifier and isinstance(clf.backbone, ToyBackbone)
    assert clf(ids, torch.ones(2, 5, dtype=torch.bool)).shape == (2, 3)
    assert isinstance(registry.build_model(toy_config(num_labels=2), "classify").backbone, ToyBackbone)


def test_toy_arch_reaches_cli_choices_and_export(toy_arch):
    from bigmodel_fast.export import targets
    from bigmodel_fast.train.config_fields import arch_choices

    assert "toy" in arch_choices()
    assert targets._builder_for("toy", "classifier") is targets._builder_for("bert", "classifier") is not None
    assert targets._builder_for("toy", "pretrain") is None  # its pretrain entry names no export target


def test_unregistered_arch_is_gone_again():
    assert "toy" not in registry.arch_names()
    with pytest.raises(ConfigError, match="'arch'.*bert, gpt, lstm"):
        toy_config()


def test_classifier_needs_a_registered_backbone(toy_arch):
    registry.unregister("toy", "classify")
    registry.register("toy", "classify", SequenceClassifier, export_target="classify")  # no backbone=
    with pytest.raises(ValueError, match="names no backbone"):
        SequenceClassifier(toy_config(num_labels=2))
