"""Model size presets, stored as JSON files in ``bigmodel_fast/presets/``."""

from __future__ import annotations

import json
from pathlib import Path

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name_or_path: str) -> dict:
    """Model-config fields of a preset: a name from :func:`available_presets` or a path to a JSON file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.json"
    if not path.is_file():
        raise ValueError(f"unknown model preset {name_or_path!r}: expected one of {available_presets()} "
                         f"or a path to a JSON file of model-config fields")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of model-config fields, got {type(data).__name__}")
    return data
