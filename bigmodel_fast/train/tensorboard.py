"""TensorBoard event files beside ``metrics.jsonl`` (``--tensorboard``): every numeric scalar of every record.

A record's ``step`` is the x axis (``global_step``); each other finite int or float becomes a scalar under its
key, values of nested dicts under ``outer/inner`` (the run summary's ``summary/tokens_per_s``, ...). Bools,
strings, lists, None and non-finite floats (``null`` in metrics.jsonl) are left out, so every TensorBoard point is
a number that metrics.jsonl holds too. Needs the ``tensorboard`` package (the ``plots`` extra); the writer is
``torch.utils.tensorboard.SummaryWriter``, imported only when a run asks for it. Each process that opens the
directory starts its own event file (a resumed run adds one); TensorBoard reads them all.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterator

from ..optional import require

__all__ = ["TensorBoardWriter", "scalars"]


def scalars(record: dict, prefix: str = "") -> Iterator[tuple[str, float]]:
    """``(tag, value)`` of every finite numeric scalar of ``record`` except its top-level ``step``, nested dicts
    flattened to ``outer/inner`` tags, in the record's order."""
    for key, value in record.items():
        if not prefix and key == "step":
            continue
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from scalars(value, f"{tag}/")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            yield tag, float(value)


class TensorBoardWriter:
    """Writes records as TensorBoard scalars into ``log_dir`` (flushed per record, like metrics.jsonl)."""

    def __init__(self, log_dir: str | Path, flag: str = "--tensorboard"):
        require("tensorboard", "plots", flag)
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        self._step = 0

    def write(self, record: dict[str, Any]) -> None:
        step = record.get("step")
        if isinstance(step, int) and not isinstance(step, bool):
            self._step = step  # a record without a step goes at the last one seen
        for tag, value in scalars(record):
            self._writer.add_scalar(tag, value, global_step=self._step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
