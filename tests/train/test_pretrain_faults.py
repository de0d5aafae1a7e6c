"""Faults in training: a kill at every step of a save, concurrent runs, non-finite losses, changed resume settings,
strict-JSON metrics."""

import builtins
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast import fsio
from bigmodel_fast.cli import main
from bigmodel_fast.train import pretrain as pretrain_mod
from bigmodel_fast.train.errors import NonFiniteError
from bigmodel_fast.train.metrics_log import MetricsLog, read_metrics
from bigmodel_fast.train.optim import OptimConfig
from bigmodel_fast.train.pretrain import pretrain

from .pretrain_helpers import tiny_config

# every step of a save that touches the file system: the kill test stops the process before each one in turn
SAVE_OPS = [(os, "replace"), (os, "rename"), (os, "fsync"), (os, "mkdir"), (shutil, "copyfile"), (shutil, "rmtree"),
            (ckpt, "save_safetensors"), (ckpt, "save_file"), (builtins, "open")]


def _writes(args, kwargs) -> bool:
    mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
    return any(c in mode for c in "wax+")


def _hook(monkeypatch, on_op):
    for mod, name in SAVE_OPS:
        real = getattr(mod, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            if _name != "open" or _writes(args, kwargs):
                on_op(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(mod, name, wrapper)


def _save(dest, model, cfg, tok, state, step):
    ckpt.save_checkpoint(dest, model, cfg.to_dict(), tok, {"kind": "pretrain", "step": step}, {**state, "step": step})


def _killed_child(kill_at, save):
    """Fork; the child saves and dies (os._exit(137), like SIGKILL: no cleanup) right before op ``kill_at``."""
    pid = os.fork()
    if pid == 0:
        torch.set_num_threads(1)  # the parent's OpenMP pool does not survive fork: run copies inline
        count = [0]

        def on_op(name):
            count[0] += 1
            if count[0] == kill_at:
                os._exit(137)

        try:
            mp = pytest.MonkeyPatch()
            _hook(mp, on_op)
            save()
        finally:
            os._exit(0)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:  # a guard against a hung child, not a timing assertion
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the save child hung at op {kill_at}")
        time.sleep(0.01)


def test_kill_at_every_step_of_a_save_leaves_a_loadable_checkpoint(tiny_pretrained, tmp_path, monkeypatch):
    model, cfg, _ = ckpt.load_model(tiny_pretrained, "pretrain")
    state = ckpt.load_trainer_state(tiny_pretrained)
    tok = tiny_pretrained / ckpt.TOKENIZER
    dest = tmp_path / "run" / "checkpoint"
    _save(dest, model, cfg, tok, state, 1)

    ops = []
    with monkeypatch.context() as mp:
        _hook(mp, ops.append)
        _save(dest, model, cfg, tok, state, 1)
    assert {"replace", "fsync", "save_safetensors", "save_file", "open", "copyfile", "mkdir", "rmtree"} <= set(ops)
    steps_seen = set()
    for k in range(1, len(ops) + 2):  # len(ops) + 1: the save runs to completion
        code = _killed_child(k, lambda: _save(dest, model, cfg, tok, state, 2))
        assert code == (137 if k <= len(ops) else 0), (k, code)
        # where --resume looks: a complete, verified checkpoint of the old or the new step
        _, _, meta = ckpt.load_model(dest, "pretrain")
        assert meta["step"] in (1, 2) and ckpt.load_trainer_state(dest)["step"] == meta["step"], (k, ops[k - 1:k])
        assert fsio.verify_manifest(dest, required=True)
        steps_seen.add(meta["step"])
        _save(dest, model, cfg, tok, state, 1)  # the next save cleans what the killed one left
        assert sorted(p.name for p in dest.parent.iterdir()) == ["checkpoint"], k
    assert steps_seen == {1, 2}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (fault injection needs it)")
def test_sigkill_between_the_publishing_renames_then_resume(tiny_data, tmp_path):
    """The issue's reproduction: SIGKILL at the rename that would move checkpoint.tmp-PID into place."""
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "bigmodel_fast.cli", "pretrain", "--data", str(tiny_data), "--out", str(run),
            "--max-steps", "3", "--save-every", "1", "--seq-len", "32", "--batch-size", "4", "--eval-every", "100",
            "--device", "cpu", "--no-progress"]
    log = tmp_path / "strace.log"
    subprocess.run(["strace", "-f", "-qq", "-o", str(log), "-e", "trace=rename", *argv, "--stop-at", "2"],
                   check=True, capture_output=True)
    renames = [l for l in log.read_text().splitlines() if "rename(" in l]
    publish = [i for i, l in enumerate(renames, 1) if re.search(r'checkpoint\.tmp-\d+", "[^"]*/checkpoint"', l)]
    assert len(publish) == 2, renames
    shutil.rmtree(run)
    r = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename",
                        "-e", f"inject=rename:signal=KILL:when={publish[1]}", *argv, "--stop-at", "2"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert not (run / "checkpoint").exists() and any(p.name.startswith("checkpoint.") for p in run.iterdir())
    r = subprocess.run([*argv, "--resume"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "recovered it from checkpoint.tmp-" in r.stderr
    assert ckpt.read_meta(run / "checkpoint")[1]["step"] == 3
    assert sorted(p.name for p in run.iterdir() if p.name.startswith("checkpoint")) == ["checkpoint"]


def _cfg(data, out, **kw):
    return tiny_config(data, out, **{"max_steps": 6, "eval_every": 100, "eval_batches": 2,
                                     "optim": OptimConfig(lr=3e-3, warmup_steps=2), **kw})


def test_second_run_on_a_locked_run_directory_fails_at_once(tiny_data, tiny_pretrained, sentiment_small, tmp_path,
                                                            capsys):
    run = tmp_path / "run"
    with fsio.DirLock(run / ".lock", "run directory"):
        assert main(["pretrain", "--data", str(tiny_data), "--out", str(run), "--max-steps", "1", "--device", "cpu",
                     "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"PID {os.getpid()}" in err and str(run / ".lock") in err and "Traceback" not in err
        assert not (run / "checkpoint").exists() and not (run / "metrics.jsonl").exists()
    ft = tmp_path / "ft"
    with fsio.DirLock(ft / ".lock", "fine-tuning output directory"):
        assert main(["finetune", "--checkpoint", str(tiny_pretrained), "--train", str(sentiment_small["train"]),
                     "--out", str(ft), "--device", "cpu", "--no-progress"]) == 2
        assert f"PID {os.getpid()}" in capsys.readouterr().err
    pretrain(_cfg(tiny_data, run, max_steps=1))  # the lock is gone with its holder
    assert (run / "checkpoint" / ckpt.TRAINER).is_file()


def test_nonfinite_loss_stops_and_never_saves_nan(tiny_data, tmp_path, capsys):
    """--lr 1e6 --clip-grad 0 (the issue's reproduction): exit 1, the good checkpoint stays, no NaN weights saved."""
    run = tmp_path / "run"
    common = ["pretrain", "--data", str(tiny_data), "--out", str(run), "--seq-len", "32", "--batch-size", "4",
              "--eval-every", "100", "--device", "cpu", "--no-progress"]
    assert main([*common, "--max-steps", "2"]) == 0
    good = (run / "checkpoint" / ckpt.WEIGHTS).read_bytes()
    assert main([*common, "--max-steps", "30", "--resume", "--save-every", "1", "--lr", "1e6", "--clip-grad", "0"]) == 1
    err = capsys.readouterr().err
    line = [l for l in err.splitlines() if "error:" in l]
    assert len(line) == 1 and "Traceback" not in err
    assert re.search(r"step \d+: (non-finite loss|the weights hold non-finite)", line[0]), line
    assert re.search(rf"last good checkpoint: {re.escape(str(run / 'checkpoint'))} \(step \d+\)", line[0]), line
    model, _, meta = ckpt.load_model(run / "checkpoint", "pretrain")
    assert all(bool(torch.isfinite(p).all()) for p in model.state_dict().values())
    assert meta["step"] >= 2 and (meta["step"] > 2 or (run / "checkpoint" / ckpt.WEIGHTS).read_bytes() == good)
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))


def _nan_at(monkeypatch, bad_calls):
    """Make the model's loss NaN at the given forward calls (1-based, training and eval together)."""
    real_build = pretrain_mod.build_pretraining_model
    calls = [0]

    def build(cfg):
        model = real_build(cfg)
        real_forward = model.forward

        def forward(*a, **kw):
            out = real_forward(*a, **kw)
            calls[0] += 1
            if calls[0] in bad_calls:  # every loss key: the trainer sums the parts (mlm_loss, nsp_loss)
                for key in ("loss", "mlm_loss", "nsp_loss"):
                    if key in out:
                        out[key] = out[key] * float("nan")
            return out

        model.forward = forward
        return model

    monkeypatch.setattr(pretrain_mod, "build_pretraining_model", build)


def test_nonfinite_step_raises_naming_step_and_last_checkpoint(tiny_data, tmp_path, monkeypatch):
    _nan_at(monkeypatch, {4})
    with pytest.raises(NonFiniteError, match=r"step 4: non-finite loss \(nan\).*last good checkpoint: .*checkpoint "
                                             r"\(step 2\)"):
        pretrain(_cfg(tiny_data, tmp_path, save_every=2))
    assert ckpt.read_meta(tmp_path / "checkpoint")[1]["step"] == 2


def test_skip_nonfinite_skips_and_counts(tiny_data, tmp_path, monkeypatch):
    _nan_at(monkeypatch, {3})
    summary = pretrain(_cfg(tiny_data, tmp_path, skip_nonfinite=1))
    assert summary["steps"] == 6 and summary["skipped_nonfinite"] == 1
    records = read_metrics(tmp_path / "metrics.jsonl")
    skipped = [r for r in records if "skipped_nonfinite" in r]
    assert [(r["step"], r["skipped_nonfinite"], r["loss"]) for r in skipped] == [(3, 1, None)]
    assert [r["loss"] is None for r in records if "lr" in r] == [False, False, True, False, False, False]
    model, _, _ = ckpt.load_model(tmp_path / "checkpoint", "pretrain")
    assert all(bool(torch.isfinite(p).all()) for p in model.state_dict().values())
    assert ckpt.load_trainer_state(tmp_path / "checkpoint")["skipped_nonfinite"] == 1


def test_resume_with_changed_settings(tiny_data, tmp_path, capsys):
    pretrain(_cfg(tiny_data, tmp_path, stop_at=2))
    with pytest.raises(ValueError, match=r"meta\.json: --resume with changed settings \(seq_len 32 -> 16, "
                                         r"batch_size 8 -> 4\)"):
        pretrain(_cfg(tiny_data, tmp_path, resume=True, seq_len=16, batch_size=4))
    other = tmp_path / "elsewhere"
    shutil.copytree(tiny_data, other)
    with pytest.raises(ValueError, match=r"changed settings \(data "):
        pretrain(_cfg(other, tmp_path, resume=True))
    summary = pretrain(_cfg(tiny_data, tmp_path, resume=True, batch_size=4, allow_config_change=True))
    assert summary["steps"] == 6 and "batch_size" in capsys.readouterr().err
    changes = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "config_change" in r]
    assert changes == [{"step": 2, "config_change": {"batch_size": [8, 4]}, "time": changes[0]["time"]}]


def test_metrics_log_is_strict_json(tmp_path):
    log = MetricsLog(tmp_path / "m.jsonl")
    log.write(step=1, loss=float("nan"), grad_norm=float("inf"))
    log.close()
    text = (tmp_path / "m.jsonl").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["loss"] is None and json.loads(text)["grad_norm"] is None


def test_resume_check_resolves_the_data_path_of_older_checkpoints(tmp_path, monkeypatch):
    """A checkpoint written before meta.json had data_path stored the --data string as given; the same directory
    given another way (relative vs absolute) is no change, another directory is."""
    from dataclasses import asdict

    from bigmodel_fast.train.pretrain import PretrainConfig, config_changes

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    old = {"train_config": asdict(PretrainConfig(data="data", out="run"))}
    assert config_changes(PretrainConfig(data=str(tmp_path / "data"), out="run"), old) == {}
    assert set(config_changes(PretrainConfig(data=str(tmp_path / "other"), out="run"), old)) == {"data"}
