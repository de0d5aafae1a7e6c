"""Whether Triton is installed and whether it runs kernels in its CPU interpreter, read without importing Triton.

The ops' dispatchers (attention, LSTM) and their kernel modules share these so that they never disagree.
"""

from __future__ import annotations

import importlib.util
import os

HAS_TRITON = importlib.util.find_spec("triton") is not None


def interpreting() -> bool:
    """True when ``TRITON_INTERPRET`` asks for the CPU interpreter, with Triton's own truthy values: ``1``,
    ``true`` or ``on``, in any case (Triton reads it when it is first imported)."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on")
