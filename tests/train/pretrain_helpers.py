"""The tiny pretraining run the pretraining tests share."""

from __future__ import annotations

from bigmodel_fast.train.pretrain import PretrainConfig

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64}


def tiny_config(data, out, **kw) -> PretrainConfig:
    """A CPU run of the ``TINY`` model on ``data`` (seq_len 32, batch 8, a metrics record every step, no progress
    bar, no periodic save); ``kw`` sets or overrides any other field."""
    base = dict(data=str(data), out=str(out), preset="tiny", model_overrides=TINY, seq_len=32, batch_size=8,
                save_every=1000, log_every=1, device="cpu", progress=False)
    base.update(kw)
    return PretrainConfig(**base)
