"""The directory ``bmf prepare`` writes, seen from the readers (trainer, loaders)."""

from __future__ import annotations

from pathlib import Path

from ..jsonio import read_json
from .shards import Shard, open_shards

STATS = "stats.json"
TOKENIZER = "tokenizer.model"


class PreparedData:
    """Paths and shards of a prepared data directory; errors say what is missing and how to make it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such data directory; create it with `bmf prepare --out {path}`")
        if not self.tokenizer_file.is_file():
            raise FileNotFoundError(f"{self.path}: missing {TOKENIZER}; expected a directory written by `bmf prepare`")

    @property
    def tokenizer_file(self) -> Path:
        return self.path / TOKENIZER

    def _split(self, name: str) -> list[Shard]:
        bins = sorted(self.path.glob(f"{name}_*.bin"))
        return open_shards(bins) if bins else []

    def train_shards(self) -> list[Shard]:
        shards = self._split("train")
        if not shards:
            raise FileNotFoundError(f"{self.path}: no train_*.bin shards; expected a directory written by `bmf prepare`")
        return shards

    def valid_shards(self) -> list[Shard]:
        """Held-out shards (may be empty for a one-document corpus)."""
        return self._split("valid")

    def stats(self) -> dict:
        f = self.path / STATS
        return read_json(f, "prepare stats") if f.is_file() else {}
