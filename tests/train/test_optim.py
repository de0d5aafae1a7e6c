import math

import pytest
import torch

from bigmodel_fast.train.optim import OptimConfig, WarmupDecay, build_optimizer, build_scheduler


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


def _lrs(cfg: OptimConfig, total_steps: int, n: int) -> list[float]:
    """The learning rate optimizer steps 0 .. n-1 use (what ``get_last_lr`` reports before each step)."""
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, total_steps)
    lrs = []
    for _ in range(n):
        lrs.append(sched.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == lrs[-1]  # what the optimizer itself uses
        sched.step()
    return lrs


def test_linear_warmup_pins_the_first_learning_rates():
    cfg = OptimConfig(lr=1e-3, warmup_steps=4, schedule="linear", min_lr_ratio=0.1)
    lrs = _lrs(cfg, total_steps=24, n=30)
    assert lrs[:6] == pytest.approx([2e-4, 4e-4, 6e-4, 8e-4, 1e-3, 9.55e-4], rel=1e-12, abs=0)
    assert lrs[14] == pytest.approx(5.5e-4, rel=1e-12, abs=0)  # half way through the decay
    assert lrs[24] == pytest.approx(cfg.min_lr_ratio * cfg.lr, rel=1e-12, abs=0)  # the decay ends at min_lr_ratio
    assert lrs[24:] == [lrs[24]] * 6  # and stays there


def test_cosine_and_constant_after_warmup():
    cos = _lrs(OptimConfig(lr=2.0, warmup_steps=1, schedule="cosine", min_lr_ratio=0.0), total_steps=5, n=7)
    assert cos == pytest.approx([1.0, 2.0, 1.0 + math.cos(math.pi / 4), 1.0, 1.0 - math.cos(math.pi / 4), 0.0, 0.0],
                                rel=1e-12, abs=1e-15)
    const = _lrs(OptimConfig(lr=1.0, warmup_steps=2, schedule="constant"), total_steps=10, n=5)
    assert const == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0, 1.0], rel=1e-12, abs=0)


def test_schedule_state_round_trip():
    """A schedule restored from ``state_dict`` continues where the first one was (the rates stay as the optimizer's
    restored state holds them until the next step)."""
    cfg = OptimConfig(lr=1e-3, warmup_steps=4)
    whole = _lrs(cfg, total_steps=12, n=12)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=cfg.lr)
    first = build_scheduler(opt, cfg, 12)
    for _ in range(5):
        first.step()
    assert first.state_dict() == {"step": 5}
    opt2 = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=cfg.lr)
    second = build_scheduler(opt2, cfg, 12)
    opt2.load_state_dict(opt.state_dict())
    second.load_state_dict(first.state_dict())
    rest = []
    for _ in range(7):
        rest.append(second.get_last_lr()[0])
        second.step()
    assert rest == whole[5:]


@pytest.mark.parametrize("bad", [{}, {"step": -1}, {"step": "3"}, {"step": 2.5}])
def test_schedule_state_must_hold_a_step(bad):
    sched = build_scheduler(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))]), OptimConfig(), 10)
    with pytest.raises((KeyError, ValueError)):
        sched.load_state_dict(bad)
