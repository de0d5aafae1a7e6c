"""``bmf prepare``: raw files -> cleaned, filtered, deduplicated documents -> SentencePiece -> token shards.

Stages, in order (each switchable; its counts land in ``stats.json``):
read -> clean -> boilerplate-line removal (optional) -> quality filters (Gopher quality / repetition, C4, FineWeb)
-> PII masking -> exact dedup -> MinHash-LSH near-dedup -> held-out split -> tokenizer -> shards.

Output directory (read back by :class:`~bigmodel_fast.data.data_dir.PreparedData`)::

    tokenizer.model / tokenizer.vocab    SentencePiece model trained on the training split
    train_00000.bin / .idx ...           token shards of the training documents
    valid_00000.bin / .idx               held-out documents (for held-out loss)
    stats.json                           documents read / dropped (and why) / deduplicated, tokens written
    manifest.json                        size and SHA-256 of every file above, written last (fsio)

Failure behaviour: the run holds an exclusive lock (``.<out>.lock`` beside OUT; a second run on the same OUT fails at
once naming the holder's PID), writes everything into ``<out>.tmp-<pid>`` and swaps it into place only when it is
complete (fsynced, with its manifest), so a failed or killed run leaves the previous OUT as it was. A kill between
the swap's two renames is repaired by the next reader or writer (:func:`~bigmodel_fast.fsio.recover_dir`);
temporaries of dead runs are removed at the next start. An existing OUT holding files prepare does not write is
refused, never deleted.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .clean import CleanConfig, CleanStats, clean_documents
from .dedup import MinHashIndex, dedup, remove_boilerplate_lines
from .pii import PIIConfig, mask_documents
from .quality import QualityConfig, QualityStats, filter_documents
from .. import fsio
from ..jsonio import write_json
from .data_dir import STATS, TOKENIZER
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
    boilerplate_min_docs: int = 0  # > 0: drop lines repeated in at least this many documents
    quality: bool = True  # the quality filter chain (rules and thresholds in `quality_config`)
    quality_config: QualityConfig = field(default_factory=QualityConfig)
    pii: bool = True  # mask e-mail addresses, IP addresses and phone numbers
    pii_config: PIIConfig = field(default_factory=PIIConfig)
    dedup: str = "minhash"  # minhash (near duplicates, after exact) | exact | none
    near_threshold: float = 0.8  # estimated Jaccard of word 5-gram sets
    near_ngram: int = 5
    near_num_perm: int = 112
    near_bands: int = 14
    minhash_index: str | None = None  # load (if present) and save the LSH index here: dedup across runs

    def __post_init__(self):
        if not self.inputs:
            raise ValueError("no input files or directories given")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        if self.vocab_size < 16:
            raise ValueError(f"vocab_size must be >= 16, got {self.vocab_size}")
        self.clean = replace(self.clean, min_chars=self.min_chars)
        if self.dedup not in ("minhash", "exact", "none"):
            raise ValueError(f"dedup must be 'minhash', 'exact' or 'none', got {self.dedup!r}")
        if isinstance(self.quality_config, dict):
            self.quality_config = QualityConfig.from_dict(self.quality_config)


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


def _filtered_texts(cfg: PrepareConfig, stats: dict) -> list[str]:
    """read -> clean -> boilerplate lines -> quality -> PII; fills ``stats`` (read, clean, boilerplate, quality, pii)."""
    read_stats, clean_stats = ReadStats(), CleanStats()
    docs = iter_documents(cfg.inputs, text_field=cfg.text_field, stats=read_stats, split=cfg.split)
    docs = list(clean_documents(tqdm(docs, desc="read+clean", unit="doc", disable=not cfg.progress),
                                cfg.clean, clean_stats))
    stats.update(read=read_stats.to_dict(), clean=clean_stats.to_dict())
    if cfg.boilerplate_min_docs > 0:
        texts, stats["boilerplate"] = remove_boilerplate_lines([d.text for d in docs], min_docs=cfg.boilerplate_min_docs,
                                                               num_threads=cfg.num_threads)
        docs = [replace(d, text=t) for d, t in zip(docs, texts) if t.strip()]
    if cfg.quality:
        quality_stats = QualityStats()
        docs = list(filter_documents(tqdm(docs, desc="quality", unit="doc", disable=not cfg.progress),
                                     cfg.quality_config, quality_stats))
        stats["quality"] = quality_stats.to_dict()
    if cfg.pii:
        counts: dict[str, int] = {}
        docs = list(mask_documents(docs, cfg.pii_config, counts))
        stats["pii"] = {"masked": counts}
    if not docs:
        dropped = {k: stats[k] for k in ("clean", "quality", "boilerplate") if k in stats}
        raise ValueError(f"no document left after reading, cleaning and filtering {cfg.inputs} "
                         f"(read {read_stats.documents}; where they went: {dropped})")
    return [d.text for d in docs]


def _near_duplicates(cfg: PrepareConfig, texts: list[str], report: dict) -> tuple[np.ndarray, MinHashIndex | None]:
    """Keep mask (N,) of MinHash-LSH near-dedup: one-shot union-find, or the persisted streaming index (greedy
    clusters, decisions final) when ``cfg.minhash_index`` is set, so later runs dedup against earlier ones.
    Returns the mask and that index, which the caller saves only once the run's output is written."""
    params = dict(threshold=cfg.near_threshold, ngram=cfg.near_ngram, num_perm=cfg.near_num_perm,
                  bands=cfg.near_bands, seed=cfg.seed)
    t0 = time.time()
    index = None
    if not cfg.minhash_index:
        near = dedup(texts, method="minhash", **params, num_threads=cfg.num_threads)
    else:
        path = Path(cfg.minhash_index)
        if path.is_file():
            index = MinHashIndex.load(path, num_threads=cfg.num_threads)
            saved = {k: getattr(index, k) for k in params}
            if any(abs(saved[k] - v) > 1e-9 for k, v in params.items()):
                raise ValueError(f"{path}: the MinHash index was built with {saved}, but this run asks for "
                                 f"{params}; use the same --near-* settings or a new --minhash-index path")
            report["index_loaded"] = {"path": str(path), "documents": len(index)}
        else:
            index = MinHashIndex(**params, num_threads=cfg.num_threads)
        near = index.add(texts)
    report["minhash"] = {**near.stats, **params, "seconds": round(time.time() - t0, 2)}
    return near.keep, index


def _deduplicated(cfg: PrepareConfig, texts: list[str], stats: dict) -> tuple[list[str], MinHashIndex | None]:
    """Exact, then MinHash-LSH near-duplicate removal (first occurrence kept); fills ``stats["dedup"]``.
    Returns the kept texts and the updated streaming index (None without ``cfg.minhash_index``), not yet saved."""
    report: dict = {"method": cfg.dedup, "documents_in": len(texts)}
    index = None
    if cfg.dedup != "none":
        exact = dedup(texts, method="exact", num_threads=cfg.num_threads)
        texts = [t for t, k in zip(texts, exact.keep) if k]
        report["exact"] = exact.stats
    if cfg.dedup == "minhash":
        keep, index = _near_duplicates(cfg, texts, report)
        texts = [t for t, k in zip(texts, keep) if k]
    report["documents_out"] = len(texts)
    report["duplicates"] = report["documents_in"] - len(texts)
    stats["dedup"] = report
    if not texts:
        raise ValueError(f"all {report['documents_in']} documents are duplicates"
                         + (f" of the documents already in {cfg.minhash_index}" if cfg.minhash_index else "")
                         + "; nothing to write")
    return texts, index


_OWNED = re.compile(r"(tokenizer\.model|tokenizer\.vocab|stats\.json|manifest\.json|(train|valid)_\d+\.(bin|idx))")


def _index_inside(cfg: PrepareConfig, out: Path) -> str | None:
    """The ``--minhash-index`` path relative to OUT when the index lives inside OUT (published with it), else None."""
    if not cfg.minhash_index:
        return None
    index, root = Path(cfg.minhash_index).absolute(), out.absolute()
    return index.relative_to(root).as_posix() if index.is_relative_to(root) else None


def _check_out_is_ours(out: Path, index_rel: str | None) -> None:
    """Refuse an existing OUT that holds anything prepare did not write: replacing OUT would delete it."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ValueError(f"{out}: exists and is not a directory; expected --out to name a directory for "
                         f"`bmf prepare` output")
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_dir() and index_rel and index_rel.startswith(rel + "/"):
            continue  # a folder on the way to the index file
        if (p.is_file() and _OWNED.fullmatch(rel)) or rel == index_rel:
            continue
        raise ValueError(f"{p}: not a file `bmf prepare` writes; {out} would be replaced as a whole and this would "
                         f"be lost. HINT: use an empty or new --out directory, or move the file away")


def _write_output(cfg: PrepareConfig, tmp: Path, train: list[str], valid: list[str], stats: dict) -> Tokenizer:
    """Tokenizer and shards of both splits into the staging directory ``tmp``; fills ``stats``."""
    tok = Tokenizer.train(_capped(train, cfg.tokenizer_max_chars), tmp, vocab_size=cfg.vocab_size, seed=cfg.seed,
                          character_coverage=cfg.character_coverage, num_threads=max(cfg.num_threads, 1))
    stats.update({
        "tokenizer": {"file": TOKENIZER, "vocab_size": tok.vocab_size},
        "train": _write_split(tmp, "train", train, tok, cfg),
        "valid": _write_split(tmp, "valid", valid, tok, cfg) if valid else {"documents": 0, "tokens": 0, "shards": []},
    })
    return tok


def _stage_index(cfg: PrepareConfig, out: Path, tmp: Path, index_rel: str | None, index) -> None:
    """An index inside OUT goes into the staging directory, to be published with the output: the updated one, or
    (when this run did not use it) the previous file unchanged."""
    if index_rel is None:
        return
    dest = tmp / index_rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if index is not None:
        index.save(dest)
    elif (out / index_rel).is_file():
        shutil.copy2(out / index_rel, dest)


def prepare(cfg: PrepareConfig) -> dict:
    """Run the whole data stage; returns the stats also written to ``<out>/stats.json``.

    Exclusive (lock beside OUT) and all-or-nothing: OUT is replaced only by a complete, fsynced output with a
    manifest; on any error the previous OUT is left untouched (see the module docstring)."""
    out = Path(cfg.out)
    with fsio.sibling_lock(out, "`bmf prepare` output directory"):
        fsio.recover_dir(out)
        fsio.clean_stale(out)
        return _prepare_locked(cfg, out)


def _prepare_locked(cfg: PrepareConfig, out: Path) -> dict:
    t0 = time.time()
    index_rel = _index_inside(cfg, out)
    _check_out_is_ours(out, index_rel)
    stats: dict = {"config": asdict(cfg)}
    texts = _filtered_texts(cfg, stats)
    texts, index = _deduplicated(cfg, texts, stats)
    is_valid = _split_valid(len(texts), cfg.valid_fraction, cfg.seed)
    train = [t for t, v in zip(texts, is_valid) if not v]
    valid = [t for t, v in zip(texts, is_valid) if v]

    tmp = fsio.staging_dir(out)
    try:
        _write_output(cfg, tmp, train, valid, stats)
        _stage_index(cfg, out, tmp, index_rel, index)
        stats["seconds"] = round(time.time() - t0, 2)
        write_json(tmp / STATS, stats)
        fsio.write_manifest(tmp)
        fsio.publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not out.exists():  # failed between publish_dir's two renames: put the previous output back
            fsio.recover_dir(out)
        raise
    if index is not None and index_rel is None:  # last: a run that fails earlier must not mark its documents as seen
        index.save(Path(cfg.minhash_index))
    return stats
