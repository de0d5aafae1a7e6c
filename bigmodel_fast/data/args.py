"""Argument checks shared by the data-stage APIs: the message names the argument and the range it must lie in."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

_U64 = 2**64


def check_int(name: str, value: Any, lo: int, hi: Optional[int] = None, note: str = "") -> int:
    """``value`` as a Python int in ``[lo, hi]`` (no upper bound when ``hi`` is None); bools are rejected.

    Raises:
        ValueError: ``"<name> must be an int in [lo, hi]<note>, got <value>"`` (``>= lo`` without ``hi``).
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < lo or (
            hi is not None and int(value) > hi):
        bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be an int {bounds}{note}, got {value!r}")
    return int(value)


def check_seed(seed: Any) -> int:
    """A random seed: an int in [0, 2**64) (what the native code takes as uint64)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < _U64:
        raise ValueError(f"seed must be an int in [0, 2**64), got {seed!r}")
    return int(seed)
