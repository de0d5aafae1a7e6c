"""JSON files written atomically (temp file + rename), so a crash never leaves half a file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .fsio import write_bytes


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf) replaced by None, so it serialises as strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs) -> str:
    """Strict JSON (non-finite floats become ``null``; never a bare ``NaN``); ``kwargs`` go to :func:`json.dumps`."""
    kwargs.setdefault("ensure_ascii", False)
    return json.dumps(finite(obj), allow_nan=False, **kwargs)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as strict JSON, atomically and durably (temp file, fsync, rename, fsync of the directory)."""
    return write_bytes(path, (dumps(obj, indent=2, default=str) + "\n").encode("utf-8"))


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse ``path``; errors name the file and say what it should have been."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing {what}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: invalid {what} ({e})") from e
