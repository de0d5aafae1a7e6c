"""``--tensorboard``: the event files beside metrics.jsonl hold its numeric scalars; a missing package fails first."""

from __future__ import annotations

import json
import sys

import pytest

from bigmodel_fast.optional import MissingDependencyError
from bigmodel_fast.train.metrics_log import MetricsLog, read_metrics
from bigmodel_fast.train.pretrain import PretrainConfig
from bigmodel_fast.train.tensorboard import scalars

from .pretrain_helpers import TINY


def _events(run_dir) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value)]}`` read back from the TensorBoard event files of ``run_dir``."""
    pytest.importorskip("tensorboard", reason="--tensorboard needs the tensorboard package (the plots extra)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _expected(records) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for rec in records:
        for tag, value in scalars(rec):
            out.setdefault(tag, []).append((rec["step"], value))
    return out


def _same(events, expected):
    assert set(events) == set(expected)
    for tag, points in expected.items():
        got = events[tag]
        assert [s for s, _ in got] == [s for s, _ in points], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in points], rel=1e-6), tag  # stored as float32


def test_scalars_are_the_finite_numbers_of_a_record():
    rec = {"step": 3, "loss": 2.5, "n": 4, "ok": True, "name": "x", "mfu": None, "bad": float("nan"),
           "pts": [1, 2], "summary": {"tokens_per_s": 10.0, "inner": {"a": 1}}}
    assert list(scalars(rec)) == [("loss", 2.5), ("n", 4.0), ("summary/tokens_per_s", 10.0), ("summary/inner/a", 1.0)]


def test_metrics_log_writes_the_same_scalars_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard", reason="--tensorboard needs the tensorboard package (the plots extra)")
    log = MetricsLog(tmp_path / "metrics.jsonl", tensorboard=True)
    for step in range(1, 6):
        log.write(step=step, loss=1.0 / step, lr=1e-3 * step, mfu=None, window_tokens_per_s=1000.5 + step)
    log.write(step=5, eval_loss=0.75, eval_lm_ppl=float("inf"))
    log.write(step=5, summary={"tokens_per_s": 999.0, "arch": "gpt"})
    log.close()
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 5, 5]
    assert list(tmp_path.glob("events.out.tfevents.*"))  # next to metrics.jsonl
    events = _events(tmp_path)
    _same(events, _expected(records))
    assert events["loss"][2] == (3, pytest.approx(1 / 3))
    assert "mfu" not in events and "eval_lm_ppl" not in events  # null in metrics.jsonl: no point either
    assert "time" in events and events["summary/tokens_per_s"] == [(5, 999.0)]


def test_bmf_pretrain_tensorboard_and_bmf_plot(tiny_data, tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="--tensorboard needs the tensorboard package (the plots extra)")
    from bigmodel_fast.cli import main

    preset = tmp_path / "tiny.json"
    preset.write_text(json.dumps(TINY), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(tiny_data), "--out", str(run), "--arch", "gpt", "--preset", str(preset),
                 "--seq-len", "32", "--batch-size", "4", "--max-steps", "4", "--log-every", "1", "--eval-every",
                 "2", "--eval-batches", "1", "--save-every", "1000", "--device", "cpu", "--no-progress",
                 "--tensorboard"]) == 0
    records = read_metrics(run / "metrics.jsonl")
    events = _events(run)
    _same(events, _expected(records))
    assert [s for s, _ in events["loss"]] == [1, 2, 3, 4] and [s for s, _ in events["eval_loss"]] == [2, 4]
    assert {"lr", "window_tokens_per_s", "summary/tokens_per_s"} <= set(events)

    pytest.importorskip("matplotlib", reason="bmf plot needs matplotlib (the plots extra)")
    capsys.readouterr()
    assert main(["plot", str(run)]) == 0  # the curves of a real run: the keys bmf pretrain writes
    assert (run / "curves.png").is_file()
    assert f"wrote {run / 'curves.png'} (training loss, held-out loss, learning rate, throughput)" in \
        capsys.readouterr().out


def test_missing_tensorboard_fails_when_the_config_is_checked(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(MissingDependencyError, match=r"^--tensorboard needs tensorboard: pip install -e '\.\[plots\]'"):
        PretrainConfig(data="d", out="o", tensorboard=True)
    assert PretrainConfig(data="d", out="o").tensorboard is False  # off: nothing is imported or checked
    from bigmodel_fast.cli import main

    run = tmp_path / "run"
    assert main(["pretrain", "--data", str(tmp_path / "no-data"), "--out", str(run), "--tensorboard"]) == 2
    err = capsys.readouterr().err
    assert "--tensorboard needs tensorboard" in err and len(err.strip().splitlines()) == 1
    assert not run.exists()  # nothing was started
    with pytest.raises(MissingDependencyError, match="--tensorboard needs tensorboard"):
        MetricsLog(tmp_path / "m" / "metrics.jsonl", tensorboard=True)
    assert not (tmp_path / "m" / "metrics.jsonl").exists()
