"""Ops test setup: run Triton kernels through the interpreter when there is no GPU.

``TRITON_INTERPRET=1`` must be in the environment before ``triton`` is first imported; ``bigmodel_fast`` imports
Triton lazily (on the first kernel call), so setting it here, at collection of ``tests/ops``, is early enough.
"""

from __future__ import annotations

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: larger sweep; skipped unless BMF_SLOW_TESTS=1 (too slow for the CPU Triton interpreter)"
    )
