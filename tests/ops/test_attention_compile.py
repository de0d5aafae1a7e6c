"""The Triton attention kernels compile for Hopper (sm_90) on this machine, GPU or not, onto the wgmma path.

The interpreter tests check what the kernels compute; this checks that the GPU compiler accepts them, which the
interpreter does not (benchmarks/ops/compile_attention.py; it runs in a subprocess because the test process has
TRITON_INTERPRET=1 set).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton")
ROOT = Path(__file__).resolve().parents[2]


def _has_nvidia_backend() -> bool:
    try:
        from triton.backends import backends
    except ImportError:
        return False
    return "nvidia" in backends


@pytest.mark.skipif(not _has_nvidia_backend(), reason="this Triton build has no NVIDIA backend to compile with")
def test_kernels_compile_for_sm90_with_wgmma(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "cache")  # really compile, whatever an earlier run cached
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ops" / "compile_attention.py"), "--quick"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = dict(re.findall(r"^(.+?): ptx=[0-9a-f]{12} wgmma=(\d+)$", proc.stdout, flags=re.M))
    assert len(rows) == 13, proc.stdout
    for label, wgmma in rows.items():
        if not label.startswith("preprocess"):  # every matmul kernel is on Hopper's tensor-core instructions
            assert int(wgmma) > 0, label
