"""The directory ``bmf prepare`` writes, seen from the readers (trainer, loaders)."""

from __future__ import annotations

import glob
from pathlib import Path

from .. import fsio
from ..jsonio import read_json
from .shards import Shard, open_shards, split_shard_paths
from .tokenizer_base import TOKENIZER_FILES, TokenizerFileNotFoundError, find_tokenizer_file

STATS = "stats.json"
TOKENIZER = "tokenizer.model"  # what `bmf prepare` trains; with --tokenizer the file may be tokenizer.json


class PreparedData:
    """Paths and shards of a prepared data directory; errors say what is missing and how to make it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _recover(self.path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such data directory; create it with `bmf prepare --out {path}`")
        if not self.tokenizer_file.is_file():
            raise FileNotFoundError(f"{self.path}: missing {' or '.join(TOKENIZER_FILES)}; expected a directory "
                                    "written by `bmf prepare`")
        fsio.verify_manifest(self.path, hashes=False)  # cheap: every listed file there with its size

    @property
    def tokenizer_file(self) -> Path:
        """``tokenizer.model`` or ``tokenizer.json`` (the first of :data:`TOKENIZER_FILES` there)."""
        try:
            return find_tokenizer_file(self.path)
        except TokenizerFileNotFoundError:
            return self.path / TOKENIZER

    def _split(self, name: str) -> list[Shard]:
        bins = split_shard_paths(self.path, name)
        return open_shards(bins) if bins else []

    def train_shards(self) -> list[Shard]:
        shards = self._split("train")
        if not shards:
            raise FileNotFoundError(
                f"{self.path}: no train_*.bin shards; expected a directory written by `bmf prepare`")
        return shards

    def valid_shards(self) -> list[Shard]:
        """Held-out shards (may be empty for a one-document corpus)."""
        return self._split("valid")

    def stats(self) -> dict:
        f = self.path / STATS
        return read_json(f, "prepare stats") if f.is_file() else {}


def _recover(path: Path) -> None:
    """Put back a data directory whose replacement was interrupted between its two renames (fsio.recover_dir),
    unless a live ``bmf prepare`` holds its lock: that run is about to publish it itself."""
    if path.exists() or not path.parent.is_dir():
        return
    name = glob.escape(path.name)
    if not any(path.parent.glob(f"{name}.tmp-*")) and not any(path.parent.glob(f"{name}.old-*")):
        return  # nothing to recover from: leave no lock file behind a mistyped path
    lock = fsio.sibling_lock(path, "`bmf prepare` output directory")
    try:
        lock.acquire()
    except fsio.LockedError as e:
        raise FileNotFoundError(f"{path}: missing while `bmf prepare` is replacing it ({e})") from None
    except OSError:  # cannot create the lock file (read-only place): nobody can be writing there either
        fsio.recover_dir(path)
        return
    try:
        fsio.recover_dir(path)
    finally:
        lock.release()
