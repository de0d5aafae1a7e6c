"""The pretraining summary and logs: run-average tokens/s, BERT's MLM / NSP parts, held-out loss vs unigram."""

import json
import math

import numpy as np
import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.cli import main
from bigmodel_fast.data.data_dir import PreparedData
from bigmodel_fast.data.shards import Shard, write_shard
from bigmodel_fast.data.tokenizer_base import load_tokenizer
from bigmodel_fast.models import build_pretraining_model
from bigmodel_fast.nn import IGNORE_INDEX
from bigmodel_fast.train.metrics_log import read_metrics
from bigmodel_fast.train.optim import OptimConfig
from bigmodel_fast.train.pretrain import build_model_config, make_loader, pretrain
from bigmodel_fast.train.pretrain_stats import format_summary, unigram_cross_entropy, unigram_log_probs

from .pretrain_helpers import tiny_config

STEPS, LOG_EVERY = 4, 2


def _cfg(data, out, **kw):
    return tiny_config(data, out, **{"max_steps": STEPS, "log_every": LOG_EVERY, "eval_every": STEPS,
                                     "eval_batches": 1, "optim": OptimConfig(lr=3e-3, warmup_steps=1), **kw})


def test_unigram_baseline_equals_direct_numpy(tmp_path):
    # two shards, 9 tokens of a 6-id vocabulary: counts [1, 2, 3, 0, 3, 0]
    write_shard(tmp_path / "a", [[0, 1, 2], [4, 4]], vocab_size=6)
    write_shard(tmp_path / "b", [[1, 2, 2, 4]], vocab_size=6)
    a, b = Shard(tmp_path / "a"), Shard(tmp_path / "b")
    lp = unigram_log_probs([a, b], 6, chunk=2)  # chunks smaller than a shard: counted the same
    counts = np.array([1, 2, 3, 0, 3, 0])
    want = np.log((counts + 1) / (9 + 6))
    assert np.allclose(lp, want, rtol=0, atol=1e-12)
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)
    targets = [2, 3, 4, 0]
    direct = -np.mean([math.log(4 / 15), math.log(1 / 15), math.log(4 / 15), math.log(2 / 15)])
    assert unigram_cross_entropy(lp, targets) == pytest.approx(direct, abs=1e-12)


def _direct_heldout(cfg, run, arch):
    """Held-out batch 0 through the saved model, computed here: the fields the last eval record must hold."""
    data = PreparedData(cfg.data)
    tok = load_tokenizer(data.tokenizer_file)
    model = build_pretraining_model(build_model_config(cfg, tok))
    ckpt.load_weights(run / "checkpoint", model)
    model.eval()
    loader = make_loader(cfg, data.valid_shards(), tok, seed=cfg.seed + 1)
    batch = loader.batch(0)
    with torch.no_grad():
        out = model(**batch)
    if arch == "bert":
        logits, targets = out["mlm_logits"], out["mlm_targets"]
        torch.testing.assert_close(out["mlm_loss"] + out["nsp_loss"], out["loss"], rtol=0, atol=1e-6)
    else:
        keep = batch["labels"] != IGNORE_INDEX
        logits, targets = out["logits"][keep], batch["labels"][keep]
    counts = np.zeros(tok.vocab_size, dtype=np.int64)
    for shard in data.train_shards():
        counts += np.bincount(np.asarray(shard.tokens, dtype=np.int64), minlength=tok.vocab_size)
    p = (counts + 1) / (counts.sum() + tok.vocab_size)
    t = targets.numpy()
    return {"loss": float(out["loss"]), "nsp": float(out["nsp_loss"]) if arch == "bert" else None,
            "target_loss": float(torch.nn.functional.cross_entropy(logits, targets)),
            "accuracy": float((logits.argmax(-1) == targets).double().mean()), "n": len(t),
            "unigram": float(-np.log(p[t]).mean())}


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_summary_and_records(tiny_data, tmp_path, arch):
    cfg = _cfg(tiny_data, tmp_path, arch=arch)
    summary = pretrain(cfg)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert records[-1]["summary"] == json.loads(json.dumps(summary))  # the last record is the summary

    # run-average tokens/s: every step's tokens over the windows' training time (the records say both)
    windows = [r for r in records if "window_tokens" in r]
    assert [r["step"] for r in windows] == list(range(LOG_EVERY, STEPS + 1, LOG_EVERY))
    assert sum(r["window_tokens"] for r in windows) == summary["tokens"] == STEPS * cfg.batch_size * cfg.seq_len
    assert sum(r["window_seconds"] for r in windows) == pytest.approx(summary["train_seconds"], rel=1e-12)
    assert summary["tokens_per_s"] == pytest.approx(summary["tokens"] / summary["train_seconds"], rel=1e-12)
    assert all(r["window_tokens_per_s"] == pytest.approx(r["window_tokens"] / r["window_seconds"], abs=0.06)
               for r in windows)
    assert "tokens_per_s" not in windows[-1]  # the windowed rate is named as such

    kind = {"bert": "mlm", "gpt": "lm"}[arch]
    if arch == "bert":  # MLM + NSP = the total, per window and in the summary
        for r in windows:
            assert r["mlm_loss"] + r["nsp_loss"] == pytest.approx(r["loss"], abs=1e-5)
            assert r["mlm_ppl"] == pytest.approx(math.exp(r["mlm_loss"]), rel=1e-12)
            assert 0.0 <= r["mlm_accuracy"] <= 1.0
        assert summary["mlm_loss"] + summary["nsp_loss"] == pytest.approx(summary["train_loss"], abs=1e-5)
        assert summary["mlm_accuracy"] == windows[-1]["mlm_accuracy"]
    else:
        assert "mlm_loss" not in summary and "nsp_loss" not in windows[-1]

    held = summary["heldout"]
    assert summary["heldout_step"] == STEPS and records[-2] == {"step": STEPS, **held, "time": records[-2]["time"]}
    direct = _direct_heldout(cfg, tmp_path, arch)
    assert held["eval_targets"] == direct["n"] > 0
    assert held[f"eval_{kind}_accuracy"] == pytest.approx(direct["accuracy"], abs=1e-12)
    assert held[f"eval_{kind}_loss"] == pytest.approx(direct["target_loss"], abs=1e-4)
    assert held[f"eval_{kind}_ppl"] == pytest.approx(math.exp(held[f"eval_{kind}_loss"]), rel=1e-12)
    assert held["eval_loss"] == pytest.approx(direct["loss"], abs=1e-4)
    assert held["unigram_loss"] == pytest.approx(direct["unigram"], abs=1e-9)
    assert held["unigram_ppl"] == pytest.approx(math.exp(direct["unigram"]), rel=1e-9)
    if arch == "bert":
        assert held["eval_nsp_loss"] == pytest.approx(direct["nsp"], abs=1e-4)
    else:
        assert "eval_nsp_loss" not in held

    text = format_summary(summary)
    assert f"{summary['tokens']:,} tokens" in text and "tokens/s (run average)" in text
    assert f"held-out {kind.upper()} loss {held[f'eval_{kind}_loss']:.4f}" in text
    assert f"vs unigram {held['unigram_loss']:.4f}" in text
    assert ("= MLM" in text and "+ NSP" in text and "masked-token accuracy" in text) == (arch == "bert")


def test_stop_at_and_resume_count_their_own_steps(tiny_data, tmp_path):
    first = pretrain(_cfg(tiny_data, tmp_path, max_steps=5, stop_at=3, nsp=False, grad_accum=2))
    windows = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "window_tokens" in r]
    assert [r["step"] for r in windows] == [2, 3]  # the last, short window is logged at --stop-at
    assert first["tokens"] == 3 * 8 * 32 * 2 and "heldout" not in first  # no eval before max-steps
    assert "nsp_loss" not in windows[-1] and windows[-1]["mlm_loss"] == pytest.approx(windows[-1]["loss"], abs=1e-6)
    second = pretrain(_cfg(tiny_data, tmp_path, max_steps=5, resume=True, nsp=False, grad_accum=2))
    assert second["start_step"] == 3 and second["tokens"] == 2 * 8 * 32 * 2 and "heldout" in second
    assert "NSP" not in format_summary(second)


def test_no_heldout_is_said(tiny_data, tmp_path):
    summary = pretrain(_cfg(tiny_data, tmp_path, max_steps=1, eval_batches=0))
    assert summary["no_heldout"] == "--eval-batches 0" and "heldout" not in summary
    assert "held-out: --eval-batches 0" in format_summary(summary)


def test_cli_prints_the_summary_block(tiny_data, tmp_path, capsys):
    assert main(["pretrain", "--data", str(tiny_data), "--out", str(tmp_path), "--arch", "gpt", "--seq-len", "16",
                 "--batch-size", "2", "--max-steps", "1", "--eval-batches", "1", "--device", "cpu",
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "tokens/s (run average)" in printed and "vs unigram" in printed
    assert "(last record: this summary)" in printed.splitlines()[-1]
