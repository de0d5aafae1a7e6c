"""The metrics log of a run: one strict-JSON object per line in ``metrics.jsonl``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..jsonio import dumps


class MetricsLog:
    """Appends one JSON object per line to ``path`` (kept open; flushed per record)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", encoding="utf-8")
        self.t0 = time.time()

    def write(self, **record) -> None:
        record.setdefault("time", round(time.time() - self.t0, 3))
        self._f.write(dumps(record) + "\n")  # strict JSON: NaN/inf -> null
        self._f.flush()

    def close(self) -> None:
        self._f.close()


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
