"""The trainer's speed switches on CPU: fp16 with a GradScaler (overflow skips, state saved and resumed exactly),
activation checkpointing (the same steps), torch.compile (the eager losses)."""

from __future__ import annotations

import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.train import speed
from bigmodel_fast.train.metrics_log import read_metrics
from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

from .pretrain_helpers import TINY, tiny_config


def _losses(run) -> list[float]:
    return [r["loss"] for r in read_metrics(run / "metrics.jsonl") if "lr" in r]


def test_fp16_overflow_is_skipped_by_the_scaler_not_counted_as_nonfinite(tiny_data, tmp_path):
    """A first scale of 2^24 overflows fp16 gradients: the scaler skips those steps and halves its scale each time,
    as torch.amp.GradScaler does; the run neither stops nor spends its --skip-nonfinite budget."""
    init = 2.0 ** 24
    summary = pretrain(tiny_config(tiny_data, tmp_path, max_steps=8, amp="fp16", grad_scaler_init=init,
                                   eval_every=1000))
    skipped = summary["grad_scaler_skipped"]
    assert skipped >= 1 and summary["skipped_nonfinite"] == 0 and summary["steps"] == 8
    records = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "grad_scaler_skipped" in r]
    assert [r["grad_scaler_skipped"] for r in records] == list(range(1, skipped + 1))
    state = ckpt.load_trainer_state(tmp_path / "checkpoint")
    assert state["grad_scaler"]["scale"] == init * 0.5 ** skipped  # no growth within growth_interval 2000
    assert state["grad_scaler_skipped"] == skipped
    # every logged loss is finite (an overflow skip still measured the loss)
    assert all(x is not None for x in _losses(tmp_path))
    # the weights moved on the steps the scaler let through
    assert skipped < 8


def test_fp16_scaler_state_resumes_exactly(tiny_data, tmp_path):
    cfg = dict(max_steps=8, amp="fp16", grad_scaler_init=2.0 ** 20, eval_every=1000)
    full, part = tmp_path / "full", tmp_path / "part"
    pretrain(tiny_config(tiny_data, full, **cfg))
    pretrain(tiny_config(tiny_data, part, stop_at=3, **cfg))
    mid = ckpt.load_trainer_state(part / "checkpoint")["grad_scaler"]
    assert mid["scale"] < 2.0 ** 20  # the first steps overflowed: the saved scale is the lowered one
    pretrain(tiny_config(tiny_data, part, resume=True, **cfg))
    assert _losses(full) == _losses(part)
    a, b = ckpt.load_trainer_state(full / "checkpoint"), ckpt.load_trainer_state(part / "checkpoint")
    assert a["grad_scaler"] == b["grad_scaler"] and a["grad_scaler_skipped"] == b["grad_scaler_skipped"]


def test_amp_fp16_with_fsdp_is_refused():
    with pytest.raises(ValueError, match="amp fp16 with parallel fsdp"):
        PretrainConfig(data="d", out="o", amp="fp16", parallel="fsdp")


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_activation_checkpointing_takes_the_same_steps(tiny_data, tmp_path, arch):
    """Recomputing each block in the backward (with the dropout RNG state preserved) gives the same gradients."""
    plain = pretrain(tiny_config(tiny_data, tmp_path / "plain", arch=arch, max_steps=5, eval_every=1000))
    ac = pretrain(tiny_config(tiny_data, tmp_path / "ac", arch=arch, max_steps=5, eval_every=1000,
                              activation_checkpointing=True))
    assert ac["activation_checkpointing"] == 2 and plain["activation_checkpointing"] == 0
    a, b = _losses(tmp_path / "plain"), _losses(tmp_path / "ac")
    assert len(a) == 5 and all(abs(x - y) <= 1e-6 * abs(x) for x, y in zip(a, b)), list(zip(a, b))
    w1 = ckpt.load_model(tmp_path / "plain" / "checkpoint", "pretrain")[0].state_dict()
    w2 = ckpt.load_model(tmp_path / "ac" / "checkpoint", "pretrain")[0].state_dict()
    assert w1.keys() == w2.keys()  # the wrapper adds no names to the checkpoint


def test_compile_gives_the_eager_losses(tiny_data, tmp_path):
    """torch.compile (inductor on CPU) fuses and reorders the float reductions of layer norms, softmax and the
    loss, so each step differs from eager by float rounding (~1e-6 relative); over 4 Adam steps that stays below
    1e-4 relative, while a wrong graph (a missed mask, a wrong scale) changes the loss by more than 1e-2. Dropout
    is 0: compiled dropout draws its masks from another generator (inductor's), so they cannot match eager's."""
    overrides = {**TINY, "dropout": 0.0}
    eager = pretrain(tiny_config(tiny_data, tmp_path / "eager", arch="bert", max_steps=4, eval_every=1000,
                                 compile="off", model_overrides=overrides))
    compiled = pretrain(tiny_config(tiny_data, tmp_path / "compiled", arch="bert", max_steps=4, eval_every=1000,
                                    compile="on", model_overrides=overrides))
    assert compiled["compile"] is True and eager["compile"] is False
    a, b = _losses(tmp_path / "eager"), _losses(tmp_path / "compiled")
    assert len(a) == 4 and all(abs(x - y) <= 1e-4 * abs(x) for x, y in zip(a, b)), list(zip(a, b))


def test_compile_auto_is_cuda_only_and_modes_are_checked():
    assert speed.compile_enabled("auto", torch.device("cuda")) is True
    assert speed.compile_enabled("auto", torch.device("cpu")) is False
    assert speed.compile_enabled("on", torch.device("cpu")) is True
    with pytest.raises(ValueError, match="compile must be one of auto, on, off"):
        speed.compile_enabled("yes", torch.device("cpu"))
    with pytest.raises(ValueError, match="compile"):
        PretrainConfig(data="d", out="o", compile="fast")
    with pytest.raises(ValueError, match="peak_tflops must be > 0"):
        PretrainConfig(data="d", out="o", peak_tflops=-1.0)


def test_metrics_log_tflops_and_mfu_only_with_a_peak(tiny_data, tmp_path):
    """On CPU the achieved TFLOP/s is logged; MFU only when --peak-tflops gives a peak (then MFU = TFLOP/s / peak,
    the peak of all ranks' devices)."""
    from bigmodel_fast.train.flops import training_flops_per_token

    plain = pretrain(tiny_config(tiny_data, tmp_path / "a", max_steps=3, eval_every=1000))
    peaked = pretrain(tiny_config(tiny_data, tmp_path / "b", max_steps=3, eval_every=1000, peak_tflops=0.5))
    windows = [r for r in read_metrics(tmp_path / "a" / "metrics.jsonl") if "lr" in r]
    assert all(r["tflops"] > 0 and r["mfu"] is None for r in windows)
    for r in (r for r in read_metrics(tmp_path / "b" / "metrics.jsonl") if "lr" in r):
        assert r["mfu"] == pytest.approx(r["tflops"] / 0.5, rel=1e-5)
        assert r["tflops"] == pytest.approx(r["window_tokens_per_s"] * peaked["flops_per_token"] / 1e12, rel=1e-3)
    assert plain["mfu"] is None and plain["peak_source"].startswith("no peak known for CPU")
    assert peaked["peak_tflops"] == 0.5 and peaked["mfu"] == pytest.approx(peaked["tflops"] / 0.5, rel=1e-5)
    cfg = ckpt.read_meta(tmp_path / "a" / "checkpoint")[0]
    from bigmodel_fast.models.config import ModelConfig

    assert plain["flops_per_token"] == training_flops_per_token(ModelConfig.from_dict(cfg), 32, 0.15, True)
