"""The metrics log of a run: one strict-JSON object per line in ``metrics.jsonl`` (and, with ``tensorboard``, the
same records' numeric scalars as TensorBoard event files in that directory: :mod:`.tensorboard`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..jsonio import dumps


class MetricsLog:
    """Appends one JSON object per line to ``path`` (kept open; flushed per record).

    ``tensorboard``: also write each record's numeric scalars, keyed by its ``step``, to TensorBoard event files in
    ``path``'s directory (:class:`~.tensorboard.TensorBoardWriter`; needs the ``tensorboard`` package, checked
    here before the log file is opened); closed with the log."""

    def __init__(self, path: str | Path, tensorboard: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tb = None
        if tensorboard:
            from .tensorboard import TensorBoardWriter

            self._tb = TensorBoardWriter(self.path.parent)
        self._f = self.path.open("a", encoding="utf-8")
        self.t0 = time.time()

    def write(self, **record) -> None:
        record.setdefault("time", round(time.time() - self.t0, 3))
        self._f.write(dumps(record) + "\n")  # strict JSON: NaN/inf -> null
        self._f.flush()
        if self._tb is not None:
            self._tb.write(record)

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None


class NullLog:
    """The metrics log of a rank other than 0 in a data-parallel run: takes records and writes nothing."""

    path = None

    def write(self, **record) -> None:
        pass

    def close(self) -> None:
        pass


def read_metrics(path: str | Path) -> list[dict]:
    """All records of a metrics JSONL file."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
