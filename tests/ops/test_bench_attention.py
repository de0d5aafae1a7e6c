"""Smoke test of benchmarks/ops/bench_attention.py: the CPU dry run (Triton interpreter) writes a complete CSV.

The benchmark itself only means something on a GPU; this keeps its control flow (warm-up, peak memory, timing,
CSV rows, tuned-config notes) from rotting between GPU sessions.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "ops" / "bench_attention.py"


def test_dry_run_writes_every_row(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("TRITON_INTERPRET", None)  # the script must set it itself before importing triton
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--dry-run", "--causal", "1", "--impls", "triton", "sdpa", "--out",
         str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (csv_path,) = tmp_path.glob("attention_*.csv")
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    errors = [r["note"] for r in rows if r["note"].startswith(("error", "OOM"))]
    assert not errors, errors
    got = {(r["impl"], int(r["seq"]), r["direction"]) for r in rows}
    want = {(impl, s, d) for impl in ("triton", "sdpa") for s in (64, 128) for d in ("fwd", "bwd", "fwd+bwd")}
    assert got == want
    for r in rows:
        assert r["gpu"] == "cpu-interpreter" and r["torch"] and r["triton"] and r["date"]
        assert float(r["ms"]) > 0 and r["causal"] == "1" and r["dtype"] == "fp16"
        if r["impl"] == "triton":  # the tuned block sizes of all three kernels are recorded
            assert all(k in r["note"] for k in ("fwd:", "bwd_dkdv:", "bwd_dq:")), r["note"]


def test_dispatch_benchmark_runs_and_ranks_paths(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "ops" / "bench_attention_dispatch.py"), "--calls", "50",
         "--repeat", "1", "--out", str(tmp_path), "--tag", "t"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "attention_dispatch_t.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["direction"], r["path"].split()[0]) for r in rows] == [
        ("fwd", "custom_op"), ("fwd", "autograd.Function"), ("fwd+bwd", "custom_op"),
        ("fwd+bwd", "autograd.Function"), ("fwd", "attention()"), ("fwd+bwd", "attention()")]
    assert all(float(r["us_per_call"]) > 0 and r["cpu"] and r["torch"] for r in rows)
    assert {float(r["ratio_vs_custom_op"]) for r in rows if r["path"] == "custom_op"} == {1.0}
