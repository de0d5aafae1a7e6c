"""``bmf plot`` / plot_runs: the series drawn are metrics.jsonl's, runs overlay, bad lines and files are handled."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="bmf plot needs matplotlib (the plots extra)")

from bigmodel_fast.cli import main  # noqa: E402
from bigmodel_fast.eval.run_plots import PlotConfig, plot_runs, read_series  # noqa: E402
from bigmodel_fast.optional import MissingDependencyError  # noqa: E402
from bigmodel_fast.train.metrics_log import MetricsLog, read_metrics  # noqa: E402


def _pretrain_like(run, steps=12, scale=1.0, mfu=True):
    """A metrics.jsonl with the records bmf pretrain writes: log windows, held-out evals, a skipped step and the
    summary."""
    log = MetricsLog(run / "metrics.jsonl")
    for step in range(1, steps + 1):
        log.write(step=step, loss=scale * 8.0 / step, mlm_loss=7.0 / step, window_tokens=256,
                  window_tokens_per_s=1000.0 + step, tflops=0.5, mfu=0.01 * step if mfu else None,
                  lr=1e-3 * min(1.0, step / 4))
        if step % 4 == 0:
            log.write(step=step, eval_loss=scale * 9.0 / step, eval_mlm_loss=8.5 / step, unigram_loss=6.0)
    log.write(step=5, skipped_nonfinite=1, loss=None, grad_norm=None)  # step.py's record of a skipped step
    log.write(step=steps, summary={"tokens_per_s": 1234.0, "train_loss": 0.5})
    log.close()
    return read_metrics(run / "metrics.jsonl")


def _expected(records, key):
    points = {r["step"]: r[key] for r in records if key in r and "skipped_nonfinite" not in r}
    return {"steps": sorted(points), "values": [points[s] for s in sorted(points)]}


def _png_size(path):
    from matplotlib.image import imread

    img = imread(str(path))
    rgb = np.round(img[..., :3] * 255).astype(np.uint32).reshape(-1, 3)
    assert len(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])) > 50
    return [img.shape[1], img.shape[0]]


def test_one_run_series_equal_metrics_jsonl(tmp_path):
    run = tmp_path / "run_a"
    records = _pretrain_like(run)
    result = plot_runs([run])
    assert result["path"] == str(run / "curves.png")
    assert _png_size(result["path"]) == result["image_size"]
    assert result["panels"] == ["training loss", "held-out loss", "learning rate", "throughput", "MFU"]
    series = result["runs"]["run_a"]
    assert set(series) == {"loss", "eval_loss", "lr", "window_tokens_per_s", "mfu"}
    for key in series:
        assert series[key] == _expected(records, key), key
    assert series["loss"]["steps"] == list(range(1, 13))  # the skipped step's record is not a point
    assert series["eval_loss"]["steps"] == [4, 8, 12]


def test_two_runs_overlay_and_need_out(tmp_path, capsys):
    a, b = tmp_path / "a" / "run", tmp_path / "b" / "run"  # the same name: the legend uses the paths
    _pretrain_like(a)
    rec_b = _pretrain_like(b, steps=8, scale=2.0, mfu=False)
    with pytest.raises(ValueError, match="--out PNG is required with 2 run directories"):
        plot_runs([a, b])
    result = plot_runs([a, b], tmp_path / "both.png")
    assert list(result["runs"]) == [str(a), str(b)]
    assert result["runs"][str(b)]["loss"] == _expected(rec_b, "loss")
    assert result["runs"][str(b)]["mfu"]["values"] == [None] * 8  # logged as null: no line, MFU from run a only
    assert "MFU" in result["panels"]
    _png_size(tmp_path / "both.png")

    assert main(["plot", str(a), str(b), "--out", str(tmp_path / "cli.png")]) == 0
    assert f"wrote {tmp_path / 'cli.png'}" in capsys.readouterr().out
    assert main(["plot", str(a), str(b)]) == 2
    assert "--out PNG is required" in capsys.readouterr().err


def test_finetune_keys_and_resumed_steps(tmp_path):
    run = tmp_path / "ft"
    log = MetricsLog(run / "metrics.jsonl")
    for step in (2, 4, 6):
        log.write(step=step, epoch=0, loss=1.0 / step, lr=5e-4)
    log.write(step=6, epoch=0, valid_macro_f1=0.4, valid_accuracy=0.5, valid_predicted_classes=["a"])
    for step in (4, 6, 8):  # resumed from step 2: the later records win
        log.write(step=step, epoch=1, loss=2.0 / step, lr=4e-4)
    log.write(step=8, epoch=1, valid_macro_f1=0.6, valid_accuracy=0.7)
    log.close()
    result = plot_runs([run / "metrics.jsonl"], tmp_path / "ft.png")  # the file itself works too
    series = result["runs"]["ft"]
    assert series["loss"] == {"steps": [2, 4, 6, 8], "values": [0.5, 0.5, 2.0 / 6, 0.25]}
    assert series["valid_macro_f1"] == {"steps": [6, 8], "values": [0.4, 0.6]}
    assert series["valid_accuracy"]["values"] == [0.5, 0.7] and "valid_predicted_classes" not in series
    assert result["panels"] == ["training loss", "validation metrics", "learning rate"]


def test_undecodable_lines_are_skipped_with_a_warning(tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    lines = [json.dumps({"step": 1, "loss": 3.0, "lr": 1e-3}), '{"step": 2, "loss": 2.', "[1, 2]",
             json.dumps({"step": 3, "loss": 1.0, "lr": 1e-3}), b"\xff\xfe".decode("latin-1")]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.warns(UserWarning) as caught:
        series = read_series(run)
    messages = [str(w.message) for w in caught]
    assert any(f"{run / 'metrics.jsonl'}:2: not JSON" in m for m in messages)
    assert any(f"{run / 'metrics.jsonl'}:3: not a JSON object" in m for m in messages)
    assert any(f"{run / 'metrics.jsonl'}:5:" in m for m in messages)
    assert series["loss"] == {"steps": [1, 3], "values": [3.0, 1.0]}


def test_missing_or_empty_metrics_are_value_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match=f"{tmp_path / 'nope' / 'metrics.jsonl'}: no such file"):
        plot_runs([tmp_path / "nope"])
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "metrics.jsonl: no such file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text('{"step": 1, "config_change": {}}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_runs([tmp_path / "empty"])


def test_bmf_plot_without_matplotlib_fails_at_the_start(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"^bmf plot needs matplotlib: pip install -e '\.\[plots\]'"):
        PlotConfig(runs=[str(tmp_path)])
    assert main(["plot", str(tmp_path / "missing-run")]) == 2  # the dependency error, before the run is read
    err = capsys.readouterr().err
    assert "bmf plot needs matplotlib" in err and "no such file" not in err and len(err.strip().splitlines()) == 1
