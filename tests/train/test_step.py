"""The one optimizer step of both trainers (clip, norm, non-finite check, step, schedule, zero-grad) and the loop
state saved in the trainer state."""

from __future__ import annotations

import pytest
import torch

from bigmodel_fast.train.errors import NonFiniteError
from bigmodel_fast.train.loop_state import LoopState
from bigmodel_fast.train.metrics_log import MetricsLog, read_metrics
from bigmodel_fast.train.optim import OptimConfig, build_optimizer, build_scheduler
from bigmodel_fast.train.step import NonFiniteGuard, OptimizerStep


def _setup(tmp_path, budget=0, clip=1.0):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    cfg = OptimConfig(lr=0.1, warmup_steps=2, clip_grad=clip)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, 10)
    log = MetricsLog(tmp_path / "metrics.jsonl")
    guard = NonFiniteGuard(budget, lambda: "ckpt (step 0)")
    return model, opt, sched, log, OptimizerStep(model, opt, sched, cfg.clip_grad, guard, log)


def _loss(model, scale=1.0):
    loss = model(torch.ones(4, 3)).square().mean() * scale
    loss.backward()
    return loss.detach()


def test_a_step_clips_updates_advances_and_zeroes(tmp_path):
    model, opt, sched, log, step = _setup(tmp_path, clip=1e-3)
    before = [p.detach().clone() for p in model.parameters()]
    loss = _loss(model, scale=100.0)
    raw = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    outcome = step(1, loss)
    assert outcome.applied and float(outcome.grad_norm) == pytest.approx(float(raw))  # the norm before clipping
    assert all(p.grad is None for p in model.parameters())
    assert sched.state_dict() == {"step": 1}
    moved = [float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before)]
    assert all(m > 0 for m in moved)
    # clipped before AdamW saw them: the first moment is (1 - beta1) * the clipped gradient, of norm clip
    exp_avg = torch.cat([opt.state[p]["exp_avg"].flatten() for p in model.parameters()])
    assert float(exp_avg.norm()) == pytest.approx((1 - opt.param_groups[0]["betas"][0]) * 1e-3, rel=1e-4)
    log.close()
    assert read_metrics(log.path) == []  # only a skipped step writes a record


def test_a_skipped_step_leaves_the_weights_and_still_advances(tmp_path):
    model, opt, sched, log, step = _setup(tmp_path, budget=1)
    before = [p.detach().clone() for p in model.parameters()]
    outcome = step(3, _loss(model, scale=float("nan")))
    assert not outcome.applied and step.guard.skipped == 1
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert all(p.grad is None for p in model.parameters()) and sched.state_dict() == {"step": 1}
    log.close()
    (record,) = read_metrics(log.path)
    assert (record["step"], record["skipped_nonfinite"], record["loss"], record["grad_norm"]) == (3, 1, None, None)
    with pytest.raises(NonFiniteError, match=r"step 4: non-finite loss .*used up: 1 skipped\); last good "
                                             r"checkpoint: ckpt \(step 0\)"):
        step(4, _loss(model, scale=float("inf")))


def test_loop_state_round_trip_and_old_trainer_states():
    state = LoopState(step=12, skipped_nonfinite=2, grad_scaler_skipped=3)
    assert state.state_dict() == {"step": 12, "skipped_nonfinite": 2, "grad_scaler_skipped": 3}
    assert LoopState.from_state_dict(state.state_dict()) == state
    assert LoopState.from_state_dict({"step": 5, "optimizer": {}}) == LoopState(5, 0, 0)  # before skipped_nonfinite
    with pytest.raises(KeyError, match="step"):
        LoopState.from_state_dict({"skipped_nonfinite": 1})
    with pytest.raises(ValueError, match=">= 0"):
        LoopState.from_state_dict({"step": -1})
