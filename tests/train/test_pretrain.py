import math

import pytest

from bigmodel_fast.train.metrics_log import read_metrics
from bigmodel_fast.train.optim import OptimConfig
from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

from .pretrain_helpers import tiny_config


def _cfg(data, out, **kw):
    return tiny_config(data, out, **{"max_steps": 40, "eval_every": 10, "eval_batches": 4,
                                     "optim": OptimConfig(lr=3e-3, warmup_steps=4), **kw})


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_tiny_pretrain_held_out_loss_falls(tiny_data, tmp_path, arch):
    summary = pretrain(_cfg(tiny_data, tmp_path, arch=arch))
    losses = [loss for _, loss in summary["eval_losses"]]
    assert len(losses) == 4 and all(math.isfinite(l) for l in losses)
    assert losses[-1] < losses[0] - 0.3, losses
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 41))
    assert all(r["window_tokens_per_s"] > 0 for r in records if "loss" in r)
    assert (tmp_path / "checkpoint" / "model.safetensors").is_file()


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_resume_equals_uninterrupted_run(tiny_data, tmp_path, arch):
    straight = tmp_path / "straight"
    pretrain(_cfg(tiny_data, straight, arch=arch, max_steps=8, eval_every=100))
    parted = tmp_path / "parted"
    pretrain(_cfg(tiny_data, parted, arch=arch, max_steps=8, eval_every=100, stop_at=4))
    pretrain(_cfg(tiny_data, parted, arch=arch, max_steps=8, eval_every=100, resume=True))

    def losses(run):
        return {r["step"]: r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r}

    a, b = losses(straight), losses(parted)
    assert sorted(b) == list(range(1, 9))
    for step in range(1, 9):
        assert abs(a[step] - b[step]) <= 1e-6, (step, a[step], b[step])
    lr_a = [r["lr"] for r in read_metrics(straight / "metrics.jsonl") if "lr" in r]
    lr_b = [r["lr"] for r in read_metrics(parted / "metrics.jsonl") if "lr" in r]
    assert lr_a == pytest.approx(lr_b, rel=1e-12)


def test_resume_without_checkpoint_is_a_clear_error(tiny_data, tmp_path):
    with pytest.raises(FileNotFoundError, match="no resumable checkpoint"):
        pretrain(_cfg(tiny_data, tmp_path, resume=True))


def test_config_validation():
    with pytest.raises(ValueError, match="arch"):
        PretrainConfig(data="d", out="o", arch="rnn")
    with pytest.raises(ValueError, match="batch_size"):
        PretrainConfig(data="d", out="o", batch_size=0)
