"""Stage lines with elapsed seconds for the long silent steps (AOTInductor compile, the runner's CMake build), on
stderr, off under --no-progress."""

from __future__ import annotations

import io
import re
import subprocess

import pytest

from bigmodel_fast.stages import stage, stage_lines

LINE = r"\[{tag}\] {what}: {verdict} \d+\.\d s"


def test_stage_lines_start_end_and_failure():
    out = io.StringIO()
    with stage("aoti", "compiling", stream=out):
        pass
    with pytest.raises(RuntimeError), stage("aoti", "parity", stream=out):
        raise RuntimeError("x")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[aoti] compiling ..." and re.fullmatch(LINE.format(tag="aoti", what="compiling",
                                                                            verdict="done in"), lines[1])
    assert lines[2] == "[aoti] parity ..." and re.fullmatch(LINE.format(tag="aoti", what="parity",
                                                                         verdict="failed after"), lines[3])
    quiet = io.StringIO()
    with stage_lines(False), stage("aoti", "compiling", stream=quiet):
        pass
    with stage("aoti", "compiling", stream=quiet, enabled=False):
        pass
    assert quiet.getvalue() == ""


def test_cmake_steps_print_stage_lines(monkeypatch, tmp_path, capsys):
    from bigmodel_fast.export import runner

    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0 if len(calls) == 1 else 2, "", "boom")

    monkeypatch.setattr(runner.subprocess, "run", fake_run)
    with pytest.raises(runner.RunnerBuildError, match="failed"):
        runner._cmake_build(tmp_path / "b", [], jobs=2, verbose=False)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("[runner] cmake configure ") and err[0].endswith(" ...")
    assert re.fullmatch(r"\[runner\] cmake configure .*: done in \d+\.\d s", err[1])
    assert err[2].startswith("[runner] cmake build -j 2 ")
    assert re.fullmatch(r"\[runner\] cmake build -j 2 .*: failed after \d+\.\d s", err[3])
    calls.clear()
    with pytest.raises(runner.RunnerBuildError):
        runner._cmake_build(tmp_path / "b", [], jobs=2, verbose=False, progress=False)
    assert capsys.readouterr().err == ""


def test_export_no_progress_turns_the_lines_off(monkeypatch, capsys):
    from bigmodel_fast.cli import main
    from bigmodel_fast.export import runner

    def fake_build(build_dir, jobs=None):
        with stage("runner", "cmake build"):
            pass
        return build_dir

    monkeypatch.setattr(runner, "build_runner", fake_build)
    assert main(["export", "--build-runner", "--runner-dir", "x"]) == 0
    assert "[runner] cmake build: done in" in capsys.readouterr().err
    assert main(["export", "--build-runner", "--runner-dir", "x", "--no-progress"]) == 0
    assert "[runner]" not in capsys.readouterr().err


def test_aoti_stages(monkeypatch, capsys):
    """torch.export and the compile are announced; a failing compile reads "failed after" (the compile is
    replaced by a failure: the real one is test_aoti.py's)."""
    import torch._inductor

    from bigmodel_fast.export.aoti import export_aoti
    from bigmodel_fast.export.torchscript import ExportError
    from bigmodel_fast.models.classifier import SequenceClassifier
    from bigmodel_fast.models.config import ModelConfig

    def fail(*a, **k):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", fail)
    cfg = ModelConfig(arch="bert", vocab_size=50, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                      max_position=16, num_labels=2)
    with pytest.raises(ExportError, match="AOTInductor compile failed"):
        export_aoti(SequenceClassifier(cfg), "/tmp/never_written.pt2", example_len=4)
    err = capsys.readouterr().err
    assert re.search(r"\[aoti\] torch\.export of SequenceClassifier: done in \d+\.\d s", err)
    assert re.search(r"\[aoti\] compiling with AOTInductor .*: failed after \d+\.\d s", err)
