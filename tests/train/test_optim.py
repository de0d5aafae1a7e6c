import math

import pytest
import torch

from bigmodel_fast.train.optim import OptimConfig, WarmupDecay, build_optimizer


def test_linear_schedule_shape():
    f = WarmupDecay(OptimConfig(warmup_steps=10, schedule="linear", min_lr_ratio=0.1), total_steps=110)
    warm = [f(s) for s in range(10)]
    assert all(b > a for a, b in zip(warm, warm[1:])) and warm[-1] < 1.0
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)


def test_cosine_schedule_and_auto_warmup():
    f = WarmupDecay(OptimConfig(warmup_steps=0, schedule="cosine", min_lr_ratio=0.0), total_steps=100)
    assert f(0) == pytest.approx(1.0)
    assert f(50) == pytest.approx(0.5)
    assert f(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    auto = WarmupDecay(OptimConfig(warmup_steps=-1), total_steps=1000)
    assert auto.warmup == 60


@pytest.mark.parametrize("bad", [dict(schedule="step"), dict(lr=0), dict(warmup_steps=-2), dict(min_lr_ratio=2)])
def test_bad_optim_config(bad):
    with pytest.raises(ValueError):
        OptimConfig(**bad)


def test_weight_decay_groups_and_tied_params_once():
    emb = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10)
    head.weight = emb.weight  # tied
    model = torch.nn.ModuleDict({"emb": emb, "head": head, "norm": torch.nn.LayerNorm(4)})
    opt = build_optimizer(model, OptimConfig(weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) == 1 and decay["params"][0] is emb.weight
    assert {id(p) for p in no_decay["params"]} == {id(head.bias), id(model["norm"].weight), id(model["norm"].bias)}
