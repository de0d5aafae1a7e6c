from __future__ import annotations

import functools
import warnings

import pytest
import torch

from bigmodel_fast.models import (
    BertForPretraining,
    GPTForCausalLM,
    SequenceClassifier,
    build_classifier,
)
from bigmodel_fast.ops.dropout import dropout


@pytest.fixture
def tiny(tiny_config):
    """Classifier configs: ``tiny_config`` with 3 labels."""
    return functools.partial(tiny_config, num_labels=3)


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_shape_and_num_labels_required(arch, tiny):
    model = build_classifier(tiny(arch))
    ids = torch.randint(1, 64, (4, 9))
    assert model(ids, torch.ones(4, 9, dtype=torch.bool)).shape == (4, 3)
    assert model(ids).shape == (4, 3)
    with pytest.raises(ValueError, match="num_labels"):
        SequenceClassifier(tiny(arch, num_labels=0))


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_padding_invariance(arch, tiny):
    torch.manual_seed(0)
    model = build_classifier(tiny(arch)).eval()
    ids = torch.randint(5, 64, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    ids[~mask] = 0
    base = model(ids, mask)
    padded = torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    pmask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(model(padded, pmask), base, atol=1e-5, rtol=1e-5)
    # row 1 alone, unpadded, gives the same logits as inside the padded batch
    torch.testing.assert_close(model(ids[1:, :4], mask[1:, :4]), base[1:], atol=1e-5, rtol=1e-5)


def test_gpt_pools_last_real_token(tiny):
    torch.manual_seed(1)
    model = build_classifier(tiny("gpt")).eval()
    ids = torch.randint(5, 64, (1, 6))
    mask = torch.tensor([[True] * 4 + [False] * 2])
    hidden = model.backbone(ids, mask)
    torch.testing.assert_close(model.backbone.pool(hidden, mask), hidden[:, 3])
    torch.testing.assert_close(model(ids, mask), model.classifier(hidden[:, 3]))


def test_dropout_before_classification_layer(tiny):
    torch.manual_seed(2)
    model = build_classifier(tiny("bert", dropout=0.5)).eval()
    ids = torch.randint(5, 64, (8, 6))
    base = model(ids)
    model.dropout.train()  # only the pre-classifier dropout is active
    torch.manual_seed(3)
    noisy = model(ids)
    assert not torch.allclose(noisy, base)
    pooled = model.backbone.pool(model.backbone(ids))
    torch.manual_seed(3)
    torch.testing.assert_close(noisy, model.classifier(dropout(pooled, 0.5, True)))


@pytest.mark.parametrize("arch,pretrain_cls", [("bert", BertForPretraining), ("gpt", GPTForCausalLM)])
def test_load_backbone_from_pretraining(arch, pretrain_cls, tiny):
    torch.manual_seed(4)
    cfg = tiny(arch)
    pre = pretrain_cls(cfg).eval()
    torch.manual_seed(5)  # different init for the classifier
    clf = SequenceClassifier(cfg).eval()
    ids = torch.randint(5, 64, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[0, 6:] = False
    assert not torch.allclose(clf.backbone(ids, mask), pre.backbone(ids, mask))
    missing, unexpected = clf.load_backbone(pre.state_dict())
    assert missing == [] and unexpected == []
    torch.testing.assert_close(clf.backbone(ids, mask), pre.backbone(ids, mask), atol=0, rtol=0)
    # a bare backbone state dict works too
    clf2 = SequenceClassifier(cfg)
    assert clf2.load_backbone(pre.backbone.state_dict()) == ([], [])


def test_load_backbone_errors(tiny):
    bert = BertForPretraining(tiny("bert"))
    gpt_clf = SequenceClassifier(tiny("gpt"))
    # different arch: GPT backbone has no segment embeddings / pooler -> unexpected keys are reported
    missing, unexpected = gpt_clf.load_backbone(bert.state_dict())
    assert "backbone.pooler.weight" in unexpected
    with pytest.raises(ValueError, match="none of the"):
        gpt_clf.load_backbone({"foo.weight": torch.zeros(1)})
    big = SequenceClassifier(tiny("bert", hidden_size=64))
    with pytest.raises(ValueError, match="shape"):
        big.load_backbone(bert.state_dict())


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_scriptable(arch, tiny):
    torch.manual_seed(6)
    model = build_classifier(tiny(arch)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(model)
    for s in (3, 17):
        ids = torch.randint(5, 64, (2, s))
        mask = torch.ones(2, s, dtype=torch.bool)
        mask[1, s // 2 + 1:] = False
        torch.testing.assert_close(scripted(ids, mask), model(ids, mask), atol=1e-5, rtol=1e-5)
    if arch == "bert":
        tt = torch.ones(2, 17, dtype=torch.long)
        torch.testing.assert_close(scripted(ids, mask, tt), model(ids, mask, tt), atol=1e-5, rtol=1e-5)


def test_overfits_labels(tiny, overfit):
    torch.manual_seed(7)
    model = build_classifier(tiny("bert"))
    ids = torch.randint(5, 64, (6, 10))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    losses = overfit(model, lambda: torch.nn.functional.cross_entropy(model(ids), y), 25)
    assert losses[-1] < 0.5 * losses[0]
