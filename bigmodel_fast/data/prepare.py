"""``bmf prepare``: raw files -> cleaned, deduplicated documents -> SentencePiece -> token shards.

Output directory (read back by :class:`~bigmodel_fast.data.prepared.PreparedData`)::

    tokenizer.model / tokenizer.vocab    SentencePiece model trained on the training split
    train_00000.bin / .idx ...           token shards of the training documents
    valid_00000.bin / .idx               held-out documents (for held-out loss)
    stats.json                           documents read / dropped (and why) / deduplicated, tokens written
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .clean import CleanConfig, CleanStats, clean_documents
from .dedup import dedup
from ..jsonio import write_json
from .prepared import STATS
from .shards import ShardWriter
from .sources import ReadStats, iter_documents
from .tokenizer import Tokenizer


@dataclass
class PrepareConfig:
    """Settings of one ``bmf prepare`` run (saved in stats.json)."""

    inputs: list[str]
    out: str
    vocab_size: int = 8000
    character_coverage: float = 0.9995  # rarer characters are spelled with byte-fallback pieces
    split: str = "file"  # how .txt/.md/.rst files become documents: file | paragraph | line
    text_field: str = "text"
    min_chars: int = 20  # cleaned documents shorter than this are dropped
    valid_fraction: float = 0.02  # share of documents held out (at least one when there are two or more)
    max_tokens_per_shard: int = 50_000_000
    tokenizer_max_chars: int = 30_000_000  # characters of training text fed to SentencePiece
    seed: int = 0
    num_threads: int = 0
    progress: bool = True
    clean: CleanConfig = field(default_factory=CleanConfig)

    def __post_init__(self):
        if not self.inputs:
            raise ValueError("no input files or directories given")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.vocab_size < 16:
            raise ValueError(f"vocab_size must be >= 16, got {self.vocab_size}")
        self.clean = replace(self.clean, min_chars=self.min_chars)


def _split_valid(n: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask (n,) of held-out documents, a seeded random choice."""
    is_valid = np.zeros(n, dtype=bool)
    if n >= 2 and fraction > 0:
        k = min(max(1, round(fraction * n)), n - 1)
        is_valid[np.random.default_rng(seed).choice(n, size=k, replace=False)] = True
    return is_valid


def _capped(texts, max_chars: int):
    total = 0
    for t in texts:
        if total >= max_chars:
            return
        total += len(t)
        yield t


def _write_split(out: Path, name: str, texts: list[str], tok: Tokenizer, cfg: PrepareConfig) -> dict:
    """Encode ``texts`` in chunks and write ``<name>_NNNNN.bin/.idx`` shards; returns counts."""
    chunk = 2048
    num_tokens = 0
    with ShardWriter(out, prefix=name, vocab_size=tok.vocab_size, max_tokens=cfg.max_tokens_per_shard) as writer:
        bar = tqdm(total=len(texts), desc=f"encode {name}", unit="doc", disable=not cfg.progress)
        for start in range(0, len(texts), chunk):
            for ids in tok.encode_batch(texts[start : start + chunk], num_threads=cfg.num_threads):
                writer.add(ids)
                num_tokens += len(ids)
            bar.update(min(chunk, len(texts) - start))
        bar.close()
    return {"documents": len(texts), "tokens": num_tokens, "shards": [p.name for p in writer.paths]}


def prepare(cfg: PrepareConfig) -> dict:
    """Run the whole data stage; returns the stats also written to ``<out>/stats.json``."""
    t0 = time.time()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in itertools.chain(out.glob("train_*.bin"), out.glob("train_*.idx"),
                               out.glob("valid_*.bin"), out.glob("valid_*.idx")):
        old.unlink()  # a re-run must not mix old shards with new ones

    read_stats, clean_stats = ReadStats(), CleanStats()
    docs = iter_documents(cfg.inputs, text_field=cfg.text_field, stats=read_stats, split=cfg.split)
    docs = tqdm(docs, desc="read+clean", unit="doc", disable=not cfg.progress)
    texts = [d.text for d in clean_documents(docs, cfg.clean, clean_stats)]
    if not texts:
        raise ValueError(f"no document left after reading and cleaning {cfg.inputs} "
                         f"(read {read_stats.documents}, all dropped: {clean_stats.to_dict()})")

    dd = dedup(texts, method="exact", num_threads=cfg.num_threads)
    texts = [t for t, k in zip(texts, dd.keep) if k]
    is_valid = _split_valid(len(texts), cfg.valid_fraction, cfg.seed)
    train = [t for t, v in zip(texts, is_valid) if not v]
    valid = [t for t, v in zip(texts, is_valid) if v]

    tok = Tokenizer.train(_capped(train, cfg.tokenizer_max_chars), out, vocab_size=cfg.vocab_size, seed=cfg.seed,
                          character_coverage=cfg.character_coverage, num_threads=max(cfg.num_threads, 1))
    stats = {
        "config": asdict(cfg),
        "read": read_stats.to_dict(),
        "clean": clean_stats.to_dict(),
        "dedup": dd.stats,
        "tokenizer": {"file": tok.model_file.name, "vocab_size": tok.vocab_size},
        "train": _write_split(out, "train", train, tok, cfg),
        "valid": _write_split(out, "valid", valid, tok, cfg) if valid else {"documents": 0, "tokens": 0, "shards": []},
    }
    stats["seconds"] = round(time.time() - t0, 2)
    write_json(out / STATS, stats)
    return stats
