"""``benchmarks/gpu_suite.py --smoke`` on the CPU: every part runs with tiny shapes and writes its CSV; a run with a
bad setting becomes an error row, not a crash; a spent budget skips runs instead of starting them."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("tokenizers", reason="the suite's synthetic tokenizer.json is built with tokenizers")

ROOT = Path(__file__).resolve().parents[1]


def load_suite():
    spec = importlib.util.spec_from_file_location("gpu_suite", ROOT / "benchmarks" / "gpu_suite.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


suite = load_suite()


def read(out: Path, kind: str) -> list[dict]:
    path = out / f"gpu_suite_cpu_smoke_{kind}.csv"
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == suite.FIELDS[kind]
        rows = list(reader)
    for row in rows:  # every row says where and when it was measured
        assert row["gpu"] == "cpu" and row["torch"] and row["date"].endswith("UTC")
    return rows


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    """One smoke run (~30-40 s on 2 shared cores): the tiny GPT run with a peak given, the eager GPT run broken by a
    batch size the trainer rejects."""
    out = tmp_path_factory.mktemp("gpu_suite")
    assert suite.main(["--smoke", "--out", str(out), "--set", "smoke_gpt_eager.batch_size=0",
                       "--set", "smoke_gpt_compile.peak_tflops=0.001"]) == 0
    return out


def test_pretrain_rows_have_throughput_and_mfu_only_with_a_peak(smoke):
    rows = {r["run"]: r for r in read(smoke, "pretrain")}
    assert set(rows) == {"smoke_gpt_compile", "smoke_bert_seq32", "smoke_gpt_eager"}
    for name in ("smoke_gpt_compile", "smoke_bert_seq32"):
        r = rows[name]
        assert r["status"] == "ok", r["note"]
        assert float(r["tokens_per_s"]) > 0 and float(r["seq_per_s"]) > 0 and float(r["tflops"]) > 0
        assert float(r["flops_per_token"]) > 0
    bert = rows["smoke_bert_seq32"]
    assert bert["mfu"] == "" and bert["peak_tflops"] == ""  # CPU, no peak: MFU blank
    assert "pass --peak-tflops" in bert["peak_source"] and bert["goal_met"] == "False"
    gpt = rows["smoke_gpt_compile"]  # the peak given through --set: MFU = achieved / peak
    assert float(gpt["mfu"]) == pytest.approx(float(gpt["tflops"]) / 0.001, rel=1e-3)
    assert gpt["peak_source"] == "--peak-tflops" and gpt["goal_met"] in ("True", "False")
    bad = rows["smoke_gpt_eager"]
    assert bad["status"] == "error" and "batch_size" in bad["note"] and bad["tokens_per_s"] == ""


def test_tests_kernels_and_summary_rows(smoke):
    tests = {r["file"]: r for r in read(smoke, "tests")}
    assert tests["TOTAL"]["status"] == "ok" and int(tests["TOTAL"]["passed"]) > 0
    assert int(tests["TOTAL"]["failed"]) == 0 and set(tests) == {"TOTAL", *suite.SMOKE_TEST_FILES}
    kernels = {r["script"]: r for r in read(smoke, "kernels")}
    assert kernels["bench_attention.py"]["status"] == "ok", kernels["bench_attention.py"]["note"]
    assert "attention_cpu_interpreter.csv" in kernels["bench_attention.py"]["outputs"]
    assert (smoke / "attention_cpu_interpreter.csv").is_file()  # the benchmark's own CSV lands in --out
    assert kernels["bench_lstm.py"]["status"] == "skipped"
    summary = {r["part"]: r for r in read(smoke, "summary")}
    assert list(summary) == list(suite.PARTS)
    assert all(r["status"] == "ok" for r in summary.values()), summary
    assert "2 runs ok, 1 errors" in summary["pretrain"]["note"]


def test_spent_budget_skips_runs(tmp_path):
    assert suite.main(["--smoke", "--out", str(tmp_path), "--only", "pretrain", "--budget-s", "1"]) == 0
    rows = read(tmp_path, "pretrain")
    assert rows and all(r["status"] == "skipped" and "budget" in r["note"] for r in rows)


def test_outcome_counting_and_set_parsing():
    out = "\n".join([
        "tests/ops/test_a.py::test_x PASSED                                    [ 20%]",
        "tests/ops/test_a.py::test_y[cuda-1] SKIPPED (no GPU)                  [ 40%]",
        "tests/ops/test_a.py::test_z FAILED                                    [ 60%]",
        "tests/nn/test_b.py::test_w XFAIL (known)                              [ 80%]",
        "ERROR tests/nn/test_c.py - ImportError: boom",
    ])
    counts = suite.count_outcomes(out, ["tests/ops/test_a.py", "tests/nn/test_b.py", "tests/nn/test_c.py"])
    assert counts["tests/ops/test_a.py"] == {"passed": 1, "failed": 1, "skipped": 1, "errors": 0}
    assert counts["tests/nn/test_b.py"] == {"passed": 0, "failed": 0, "skipped": 1, "errors": 0}
    assert counts["tests/nn/test_c.py"]["errors"] == 1
    assert suite.parse_sets(["a.batch_size=16", "a.compile=on", "b.peak_tflops=1.5"]) == {
        "a": {"batch_size": 16, "compile": "on"}, "b": {"peak_tflops": 1.5}}
    with pytest.raises(SystemExit, match="RUN.FIELD=VALUE"):
        suite.parse_sets(["batch_size=16"])
    files = suite.cuda_test_files()
    assert "tests/ops/test_attention_triton.py" in files and "tests/test_gpu_suite.py" not in files
    assert files.index("tests/ops/test_attention_triton.py") < files.index("tests/export/test_aoti.py")
