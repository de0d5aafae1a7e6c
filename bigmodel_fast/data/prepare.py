"""``bmf prepare``: raw files -> cleaned, filtered, deduplicated documents -> SentencePiece -> token shards.

Stages, in order (each switchable; its counts land in ``stats.json``):
read -> clean -> boilerplate-line removal (optional) -> quality filters (Gopher quality / repetition, C4, FineWeb)
-> PII masking -> exact dedup -> MinHash-LSH near-dedup -> held-out split -> tokenizer -> shards.

Output directory (read back by :class:`~bigmodel_fast.data.data_dir.PreparedData`)::

    tokenizer.model / tokenizer.vocab    SentencePiece model trained on the training split, or with --tokenizer
                                         that tokenizer's own file (tokenizer.model or tokenizer.json)
    train_00000.bin / .idx ...           token shards of the training documents
    valid_00000.bin / .idx               held-out documents (for held-out loss)
    stats.json                           documents read / dropped (and why) / deduplicated, tokens written;
                                         per source (input file, or directory of an input folder) the same
                                         counts (``sources``), the first 5 dropped documents of every quality rule
                                         (``dropped_samples``) and the warnings printed (``warnings``)
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
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .. import fsio
from ..config_cli import check_fields, setting
from ..jsonio import write_json
from .clean import CleanConfig, clean_documents
from .data_dir import STATS, TOKENIZER
from .dedup import MinHashIndex, dedup, remove_boilerplate_lines
from .minhash_config import MINHASH
from .pii import PIIConfig, mask_documents
from .quality import DEFAULT_PRESET, PRESETS, QualityConfig, drop_warnings, filter_documents, preset_config
from .shards import ShardWriter
from .sources import SPLIT_MODES, Document, iter_documents
from .stats import CleanStats, DedupStats, PIIStats, QualityStats, ReadStats, SourceStats
from .tokenizer import Tokenizer
from .tokenizer_base import TOKENIZER_FILES, BaseTokenizer, load_tokenizer

DEDUP_METHODS = ("minhash", "exact", "none")  # minhash: near duplicates, after exact
FILTER_GROUP = "filtering and dedup"  # argument-group title of the filter and dedup flags


@dataclass
class PrepareConfig:
    """Settings of one ``bmf prepare`` run (saved in stats.json).

    Each field's metadata is also its ``bmf prepare`` flag (:mod:`bigmodel_fast.config_cli`).
    """

    inputs: list[str] = setting(positional=True, help="files or directories (.txt .md .rst .jsonl .csv, "
                                "optionally .gz)")
    out: str = setting(help="output directory")
    tokenizer: str | None = setting(None, help="tokenize with this tokenizer instead of training a SentencePiece one: "
                                    "a checkpoint or HF model directory (tokenizer.model, tokenizer.json, vocab.txt, "
                                    "vocab.json + merges.txt) or a tokenizer file; --vocab-size is then ignored")
    vocab_size: int = setting(8000, min=16)
    character_coverage: float = setting(0.9995, help="share of characters that get their own piece; the rest use "
                                        "byte fallback")
    split: str = setting("file", choices=SPLIT_MODES, help="how plain-text files become documents")
    text_field: str = setting("text", help="text field of .jsonl/.csv inputs")
    min_chars: int = setting(20, help="drop cleaned documents shorter than this")
    # share of documents held out (at least one when there are two or more)
    valid_fraction: float = setting(0.02)
    max_tokens_per_shard: int = setting(50_000_000, cli=False)
    tokenizer_max_chars: int = setting(30_000_000, cli=False)  # characters of training text fed to SentencePiece
    seed: int = setting(0)
    num_threads: int = setting(0, help="0: all cores")
    progress: bool = setting(True, cli=False)  # flag: the hand-written --no-progress
    clean: CleanConfig = setting(default_factory=CleanConfig, cli=False)
    boilerplate_min_docs: int = setting(0, group=FILTER_GROUP, help="> 0: drop lines that repeat in at least this many "
                                        "documents")
    # the quality filter chain: the preset's rules and thresholds with `quality_config` on top (the CLI reads it from
    # --quality-config); after __post_init__ `quality_config` is the resolved QualityConfig
    quality: bool = setting(True, group=FILTER_GROUP, help="skip the quality filters (Gopher quality/repetition, C4, "
                            "FineWeb)")
    quality_preset: str = setting(DEFAULT_PRESET, choices=PRESETS, group=FILTER_GROUP,
                                  help="web: every rule (text extracted from web pages); curated: only repetition and "
                                  "obvious-junk rules, for docs/books/technical prose with code and lists; off: as "
                                  "--no-quality. --quality-config goes on top")
    quality_config: QualityConfig | dict | None = setting(None, cli=False)
    warn_drop_share: float = setting(0.10, group=FILTER_GROUP,
                                     help="warn when one quality rule drops more than this share of the documents "
                                     "(or a C4 line rule of the characters), 0..1")
    pii: bool = setting(True, group=FILTER_GROUP, help="do not mask e-mails, IPs, phone numbers")
    pii_config: PIIConfig = setting(default_factory=PIIConfig, cli=False)
    dedup: str = setting("minhash", choices=DEDUP_METHODS, group=FILTER_GROUP,
                         help="minhash: exact then near-duplicate removal (default)")
    # estimated Jaccard of word n-gram sets; the near_* defaults are MinHashConfig's
    near_threshold: float = setting(MINHASH.threshold, group=FILTER_GROUP, help="near-duplicate Jaccard threshold")
    near_ngram: int = setting(MINHASH.ngram, cli=False)
    near_num_perm: int = setting(MINHASH.num_perm, cli=False)
    near_bands: int = setting(MINHASH.bands, cli=False)
    minhash_index: str | None = setting(None, group=FILTER_GROUP, help="load/save the LSH index here to dedup against "
                                        "earlier runs")  # load (if present) and save: dedup across runs

    def __post_init__(self):
        if not self.inputs:
            raise ValueError("no input files or directories given")
        if not 0.0 <= self.valid_fraction < 1.0:
            raise ValueError(f"valid_fraction must be in [0, 1), got {self.valid_fraction}")
        check_fields(self)
        self.clean = replace(self.clean, min_chars=self.min_chars)
        if not 0.0 <= self.warn_drop_share <= 1.0:
            raise ValueError(f"warn_drop_share must be in [0, 1] (a share of the documents), got "
                             f"{self.warn_drop_share}")
        if isinstance(self.quality_config, QualityConfig):
            if self.quality_preset == "curated":
                raise ValueError("quality_config: a full QualityConfig replaces the preset; give a dict of overrides "
                                 "(the --quality-config JSON) to combine it with quality_preset='curated'")
        else:
            self.quality_config = preset_config(self.quality_preset, self.quality_config)
        if self.quality_preset == "off":
            self.quality = False


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


def _explicit_files(inputs: list[str]) -> frozenset[str]:
    """The inputs that name files (their ``Document.source`` spelling): each is its own source in stats.json."""
    return frozenset(str(Path(p)) for p in inputs if Path(p).is_file())


def _warn(stats: dict, messages: list[str]) -> None:
    """Print each warning to stderr and record it in ``stats["warnings"]``."""
    for msg in messages:
        print(f"bmf prepare: warning: {msg}", file=sys.stderr)
        stats.setdefault("warnings", []).append(msg)


def _filtered_docs(cfg: PrepareConfig, stats: dict, sources: SourceStats) -> list[Document]:
    """read -> clean -> boilerplate lines -> quality -> PII; fills ``stats`` (read, clean, boilerplate, quality,
    pii, warnings) and ``sources`` (documents read and dropped per source, samples of quality drops)."""
    read_stats, clean_stats = ReadStats(), CleanStats()
    docs = sources.count_read(iter_documents(cfg.inputs, text_field=cfg.text_field, stats=read_stats,
                                             split=cfg.split))
    docs = list(clean_documents(tqdm(docs, desc="read+clean", unit="doc", disable=not cfg.progress),
                                cfg.clean, clean_stats))
    read_per_source = {k: e["documents"] for k, e in sources.sources.items()}
    sources.drop_missing("clean", read_per_source, sources.census(map(sources.key, docs)))
    stats.update(read=read_stats.to_dict(), clean=clean_stats.to_dict())
    if cfg.boilerplate_min_docs > 0:
        texts, stats["boilerplate"] = remove_boilerplate_lines([d.text for d in docs],
                                                               min_docs=cfg.boilerplate_min_docs,
                                                               num_threads=cfg.num_threads)
        for d, t in zip(docs, texts):
            if not t.strip():
                sources.drop(d, "boilerplate:empty", sample=False)
        docs = [replace(d, text=t) for d, t in zip(docs, texts) if t.strip()]
    if cfg.quality:
        quality_stats = QualityStats()
        docs = list(filter_documents(tqdm(docs, desc="quality", unit="doc", disable=not cfg.progress),
                                     cfg.quality_config, quality_stats, sources=sources))
        stats["quality"] = quality_stats.to_dict()
        _warn(stats, drop_warnings(quality_stats, cfg.warn_drop_share))
    if cfg.pii:
        pii_stats = PIIStats()
        docs = list(mask_documents(docs, cfg.pii_config, pii_stats))
        stats["pii"] = pii_stats.to_dict()
    if not docs:
        dropped = {k: stats[k] for k in ("clean", "quality", "boilerplate") if k in stats}
        raise ValueError(f"no document left after reading, cleaning and filtering {cfg.inputs} "
                         f"(read {read_stats.documents}; where they went: {dropped})")
    return docs


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


def _deduplicated(cfg: PrepareConfig, texts: list[str], stats: dict, keys: list[str] | None = None,
                  sources: SourceStats | None = None) -> tuple[list[str], MinHashIndex | None]:
    """Exact, then MinHash-LSH near-duplicate removal (first occurrence kept); fills ``stats["dedup"]`` and, with
    ``keys`` (the source of each text) and ``sources``, the duplicates (``dedup:exact``/``dedup:minhash``) and the
    documents kept per source. Returns the kept texts and the updated streaming index (None without
    ``cfg.minhash_index``), not yet saved."""
    dedup_stats = DedupStats(seen=len(texts), method=cfg.dedup)
    keys = keys if keys is not None else [""] * len(texts)
    index = None

    def apply(keep, reason: str) -> tuple[list[str], list[str]]:
        if sources is not None:
            for key, k in zip(keys, keep):
                if not k:
                    d = sources.entry(key)["dropped"]
                    d[reason] = d.get(reason, 0) + 1
        return [t for t, k in zip(texts, keep) if k], [s for s, k in zip(keys, keep) if k]

    if cfg.dedup != "none":
        exact = dedup(texts, method="exact", num_threads=cfg.num_threads)
        texts, keys = apply(exact.keep, "dedup:exact")
        dedup_stats.reports["exact"] = exact.stats
        dedup_stats.drop("exact", exact.stats["duplicates"])
    if cfg.dedup == "minhash":
        keep, index = _near_duplicates(cfg, texts, dedup_stats.reports)
        n = len(keep)
        texts, keys = apply(keep, "dedup:minhash")
        dedup_stats.drop("minhash", n - len(texts))
    dedup_stats.kept = len(texts)
    if sources is not None:
        for key, t in zip(keys, texts):
            sources.keep(key, len(t))
    stats["dedup"] = dedup_stats.to_dict()
    if not texts:
        raise ValueError(f"all {dedup_stats.seen} documents are duplicates"
                         + (f" of the documents already in {cfg.minhash_index}" if cfg.minhash_index else "")
                         + "; nothing to write")
    return texts, index


_OWNED = re.compile(r"(tokenizer\.(model|json|vocab)|stats\.json|manifest\.json|(train|valid)_\d+\.(bin|idx))")


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


def given_tokenizer(path: str | Path) -> BaseTokenizer:
    """The tokenizer of ``--tokenizer``: a tokenizer file, a directory holding one of :data:`TOKENIZER_FILES`
    (a checkpoint, prepared data, a bundle), or a HF model directory (``vocab.txt`` / ``vocab.json`` + ``merges.txt``).
    """
    p = Path(path)
    if p.is_dir() and not any((p / n).is_file() for n in TOKENIZER_FILES):
        from .hf_tokenizer import HFTokenizer

        return HFTokenizer.from_hf_dir(p)
    return load_tokenizer(p)


def _write_output(cfg: PrepareConfig, tmp: Path, train: list[str], valid: list[str], stats: dict) -> BaseTokenizer:
    """Tokenizer and shards of both splits into the staging directory ``tmp``; fills ``stats``. With
    ``cfg.tokenizer`` that tokenizer's file is copied (byte for byte when it is one) instead of training one."""
    if cfg.tokenizer:
        tok = given_tokenizer(cfg.tokenizer)
        name = tok.save(tmp).name
    else:
        tok = Tokenizer.train(_capped(train, cfg.tokenizer_max_chars), tmp, vocab_size=cfg.vocab_size, seed=cfg.seed,
                              character_coverage=cfg.character_coverage, num_threads=max(cfg.num_threads, 1))
        name = TOKENIZER
    stats.update({
        "tokenizer": {"file": name, "vocab_size": tok.vocab_size, **({"source": str(cfg.tokenizer)}
                                                                     if cfg.tokenizer else {})},
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
    sources = SourceStats(explicit=_explicit_files(cfg.inputs))
    docs = _filtered_docs(cfg, stats, sources)
    texts, index = _deduplicated(cfg, [d.text for d in docs], stats, [sources.key(d) for d in docs], sources)
    stats.update(sources.to_dict())
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
