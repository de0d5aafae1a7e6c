"""Document de-duplication: exact (XXH64) and near-duplicate (MinHash-LSH), plus boilerplate-line removal.

``dedup(texts)`` marks which documents to keep; both methods keep the first occurrence (lowest index) of
every cluster and use its index as the cluster id.

``method="exact"`` hashes every text with XXH64 (native, multithreaded, GIL released:
``bigmodel_fast._C.xxh64_batch``), groups equal hashes with a stable numpy argsort, keeps the first
occurrence of each group and points every duplicate at it. Members of a hash group are confirmed by
string equality (vectorised over an object array), so a 64-bit hash collision can never merge two
different texts. Callers pass already-cleaned text.

``method="minhash"`` (the default) finds near-duplicates, all in C++ (``csrc/dedup/minhash.*``):

* Normalisation: lowercase; punctuation, symbols, emoji and whitespace separate words (runs fold to one);
  characters of scripts written without spaces (CJK ideographs, kana, Thai, Lao, Khmer, Myanmar, ...) are
  one word each, so Chinese/Japanese text gets character n-grams.
* Shingles: every run of ``ngram`` consecutive words; a text with fewer words has one shingle (all of
  them); a text with no word at all is "empty": its own cluster, never merged with anything.
* Signature: ``num_perm`` slots, slot i = min over shingles x of ``((a_i*x + b_i) mod 2**64) >> 32``
  (x: a 32-bit shingle hash; a_i, b_i: 64-bit from splitmix64(seed)). Stored as uint32.
* LSH: ``bands`` bands of ``num_perm // bands`` rows; documents sharing a band bucket are candidates,
  and a candidate pair is only accepted ("verified") when its estimated Jaccard (fraction of equal slots)
  reaches ``threshold``.
* Clustering, ``clustering=`` (one-shot :func:`dedup` only; the default is ``"union_find"``):

  - ``"union_find"`` (issue #3's spec; the union-find clustering of datatrove's MinHash pipeline, which
    however does not verify pairs): every verified pair is merged with union-find (path halving, union by
    minimum index), so clusters are the connected components of the verified-pair graph; the lowest
    index of each component is kept and is its cluster id. Merging is transitive: a document bridging two
    clusters merges them, so a member can be less similar than the threshold to the kept document
    (A~B and B~C put A, B, C in one cluster even when A is not ~ C).
    Candidates: documents are bucketed in index order and every bucket stores its first
    ``UNION_FIND_BUCKET_MEMBERS`` (K = 32) documents; each document is verified against the stored members
    of each of its buckets, skipping a member already in its component (that pair would connect nothing
    new) or already compared in another band.
    Guarantee: the clusters are exactly the connected components of the graph of verified candidate pairs
    that have at least one document among the first K documents (lowest indices) of a bucket they share;
    hence exactly the components over ALL verified candidate pairs whenever no bucket holds more than
    K + 1 documents. Effect of the cap: two documents that both come after the first K of every bucket
    they share are not compared; they still end in one cluster when linked through other verified pairs
    (e.g. both similar to an early member). It bounds the work at K comparisons per document and band
    (a bucket whose stored members are all in the document's component, e.g. exact copies, costs one
    lookup), like greedy's 32 representatives.
  - ``"greedy"``: documents are processed in index order and each joins the lowest cluster among its
    verified candidates (or starts its own, kept); clusters are never merged afterwards, so a later
    document never bridges two clusters and a keep decision is final when it is made. This is what the
    streaming :class:`MinHashIndex` needs and does: ``dedup(clustering="greedy")`` equals adding the same
    texts to an index in any batches. A bucket keeps at most 32 representatives (a new document is stored
    in a bucket only if its cluster has none there yet), which bounds the comparisons per document.

  Both are deterministic: signatures are computed in parallel, each document on its own, and the
  clustering pass is sequential in document order, so result and stats are the same for any
  ``num_threads``. Within the guarantee every greedy cluster lies inside one union-find component (greedy
  only ever joins verified candidate pairs), so union-find keeps at most as many documents. Union-find
  takes ~5-10% more time than greedy on the pydoc benchmark corpus (benchmarks/data/bench_dedup.py) and,
  during the call, per document 4*num_perm bytes of signature, 8*bands of band keys, 9 bytes of
  union-find state and up to ``bands`` bucket entries (~31-54 bytes each), all freed on return.

Memory (``MinHashIndex``): per document 4*num_perm bytes of signature + 4 bytes of cluster id, plus one
bucket entry (a 16-byte hash slot at load factor 0.35-0.7 + an 8-byte list node: ~31-54 bytes) per band
whose bucket has no member of the document's cluster yet: all ``bands`` for a document that starts a
cluster, none for an exact copy. At the defaults that is ~0.9-1.2 KB per distinct document and ~0.45 KB
per exact duplicate, plus a reusable scratch buffer of 8*bands + 1 bytes per document of the largest
batch added (``MinHashIndex.memory_bytes()`` reports the actual total).

``remove_boilerplate_lines`` drops lines (navigation, licence footers) that occur in many documents.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .args import check_int, check_seed
from .minhash_config import MINHASH, MinHashConfig

__all__ = [
    "DedupResult",
    "dedup",
    "CLUSTERINGS",
    "METHODS",
    "MinHashIndex",
    "MinHashIndexError",
    "minhash_signatures",
    "remove_boilerplate_lines",
]

METHODS = ("exact", "minhash")
CLUSTERINGS = ("union_find", "greedy")
UNION_FIND_BUCKET_MEMBERS = MINHASH.max_members  # K: documents stored per LSH bucket by union-find (see above)


@dataclass
class DedupResult:
    """Outcome of :func:`dedup` over N texts (or of :meth:`MinHashIndex.add` over a batch).

    keep:    bool array (N,), True for the first occurrence of every cluster.
    cluster: int64 array (N,), index of the first document of the cluster of the text at each position
             (``cluster[i] == i`` exactly where ``keep[i]``; for ``MinHashIndex.add`` the indices are
             global: ``cluster[i] == stats["offset"] + i`` exactly where ``keep[i]``).
    stats:   dict with ``documents``, ``kept``, ``duplicates``, ``method``; exact dedup adds
             ``hash_collisions`` (equal 64-bit hashes of different texts that string comparison told
             apart); minhash adds ``candidate_pairs`` (document pairs compared), ``verified_pairs`` (of
             which the estimated Jaccard reached the threshold), ``empty_documents``, ``clustering`` and the
             parameters; union-find adds ``components_merged`` (unions that joined two different components:
             every verified pair does, as pairs already in one component are not compared, so it equals
             ``verified_pairs`` and the number of non-empty duplicates).
    """

    keep: np.ndarray
    cluster: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def kept_indices(self) -> np.ndarray:
        """Indices (into this result) of the kept documents, ascending: int64 array (kept,)."""
        return np.flatnonzero(self.keep)


class MinHashIndexError(ValueError):
    """A MinHash index file is not one :meth:`MinHashIndex.save` wrote, or is truncated or corrupt.

    The message starts with the file's path, then says what is wrong.
    """


def _native():
    from bigmodel_fast import _C  # imported lazily so the pure-Python parts import without a build

    return _C


def _check_threads(num_threads: Any) -> int:
    return check_int("num_threads", num_threads, 0, note=" (0 = all hardware threads)")


def _minhash_config(threshold: Any, ngram: Any, num_perm: Any, bands: Any, seed: Any) -> MinHashConfig:
    """The checked parameters (ValueError naming a bad one and its range; limits from ``_C.MINHASH_LIMITS``)."""
    return MinHashConfig(threshold=threshold, ngram=ngram, num_perm=num_perm, bands=bands, seed=seed).checked()


def _index_core(cfg: MinHashConfig) -> Any:
    """A new native index (``_C.MinHashIndexCore``) with the parameters of ``cfg`` (checked)."""
    return _native().MinHashIndexCore(cfg.threshold, cfg.ngram, cfg.num_perm, cfg.bands, cfg.seed, cfg.max_members)


def _as_list(texts: Any) -> list:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"texts must be a sequence of str, got a single {type(texts).__name__} (wrap it in a list)")
    return texts if isinstance(texts, list) else list(texts)


def _hash_texts(texts: list, *, seed: int, num_threads: int) -> np.ndarray:
    """XXH64 of every text: uint64 array (N,). A module-level hook so tests can force collisions."""
    from bigmodel_fast import _C  # imported lazily so the pure-Python parts import without a build

    return _C.xxh64_batch(texts, seed=seed, num_threads=num_threads)


def _split_colliding_group(members: np.ndarray, texts: list, cluster: np.ndarray) -> int:
    """Re-cluster one equal-hash group by real string equality (rare path).

    members: int64 array (G,) of ascending indices sharing a hash. Writes ``cluster`` in place and
    returns the number of extra distinct texts found (the collisions).
    """
    first_of: dict[Any, int] = {}
    for i in members.tolist():
        cluster[i] = first_of.setdefault(texts[i], i)
    return len(first_of) - 1


class MinHashIndex:
    """Streaming MinHash-LSH near-duplicate index (native core: ``_C.MinHashIndexCore``).

    ``add(texts)`` clusters a batch against everything added before (documents are numbered 0, 1, ... in
    the order they are added) and returns a :class:`DedupResult` whose ``cluster`` holds global document
    indices. The index clusters greedily (a keep decision is final when it is made; see the module
    docstring): adding a corpus in any number of batches gives exactly the result of
    ``dedup(corpus, clustering="greedy")`` with the same parameters. Union-find clustering (``dedup``'s
    default) is one-shot only: a later document can merge two earlier clusters, which would revoke a keep
    decision already handed out. ``save(path)`` / ``MinHashIndex.load(path)`` persist the index (signatures,
    cluster ids and buckets; not the texts) in a little-endian binary file: magic ``BMFMHIX\\0``, format
    version, parameters, sizes, the arrays and an XXH64-based checksum. Memory per document: see the
    module docstring (``memory_bytes()`` reports the actual figure).

    Args: see :func:`dedup`. ``num_threads`` is the default for ``add`` (0 = all hardware threads).
    """

    def __init__(
        self,
        *,
        threshold: float = MINHASH.threshold,
        ngram: int = MINHASH.ngram,
        num_perm: int = MINHASH.num_perm,
        bands: int = MINHASH.bands,
        seed: int = MINHASH.seed,
        num_threads: int = 0,
        _core: Any = None,
    ) -> None:
        self.num_threads = _check_threads(num_threads)
        self._core = _index_core(_minhash_config(threshold, ngram, num_perm, bands, seed)) if _core is None else _core

    # -- parameters and size -------------------------------------------------------------------------
    threshold = property(lambda self: self._core.threshold)
    ngram = property(lambda self: self._core.ngram)
    num_perm = property(lambda self: self._core.num_perm)
    bands = property(lambda self: self._core.bands)
    seed = property(lambda self: self._core.seed)
    num_docs = property(lambda self: self._core.num_docs, doc="documents added so far")
    num_clusters = property(lambda self: self._core.num_clusters, doc="kept documents so far")

    def __len__(self) -> int:
        return self._core.num_docs

    def __repr__(self) -> str:
        return (
            f"MinHashIndex(documents={self.num_docs}, kept={self.num_clusters}, threshold={self.threshold}, "
            f"ngram={self.ngram}, num_perm={self.num_perm}, bands={self.bands}, seed={self.seed})"
        )

    def memory_bytes(self) -> int:
        """Bytes held by the signatures, cluster ids and buckets."""
        return self._core.memory_bytes()

    def signatures(self) -> np.ndarray:
        """Copy of the stored signatures: uint32 (num_docs, num_perm)."""
        return self._core.signatures()

    def clusters(self) -> np.ndarray:
        """Cluster id of every document added so far: int64 (num_docs,)."""
        return self._core.clusters()

    # -- adding ----------------------------------------------------------------------------------------
    def add(self, texts: Iterable[str], *, num_threads: int | None = None) -> DedupResult:
        """Cluster a batch of texts against everything seen so far (and each other).

        Returns a DedupResult over the batch: ``keep`` (bool (B,)), ``cluster`` (int64 (B,), global document
        indices) and ``stats`` (``offset`` = global index of the batch's first document, ``total_documents``,
        ``total_kept``, ...). Raises TypeError naming the index of a non-str item (nothing is added then).
        """
        threads = self.num_threads if num_threads is None else _check_threads(num_threads)
        items = _as_list(texts)
        # The native call numbers the batch under the index's lock (safe with concurrent adds).
        cluster, native_stats = self._core.add(items, num_threads=threads)
        n = len(items)
        offset = native_stats["offset"]
        keep = cluster == np.arange(offset, offset + n, dtype=np.int64)
        return _result(keep, cluster, "minhash", **native_stats)

    # -- persistence -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the index to ``path`` (via ``path + '.tmp'`` and a rename). OSError on I/O failure."""
        self._core.save(os.fspath(path))

    @classmethod
    def load(cls, path: str | os.PathLike, *, num_threads: int = 0) -> "MinHashIndex":
        """Read an index written by :meth:`save`.

        Raises FileNotFoundError / IsADirectoryError, or :class:`MinHashIndexError` (a ValueError) naming the
        file when it is not a MinHash index, has an unsupported version, is truncated or corrupt.
        """
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(2, "MinHash index file not found", str(p))
        if p.is_dir():
            raise IsADirectoryError(21, "MinHash index path is a directory", str(p))
        try:
            core = _native().MinHashIndexCore.load(str(p))
        except ValueError as exc:
            raise MinHashIndexError(str(exc)) from None
        return cls(num_threads=num_threads, _core=core)


def minhash_signatures(
    texts: Iterable[str], *, num_perm: int = MINHASH.num_perm, ngram: int = MINHASH.ngram, seed: int = MINHASH.seed,
    num_threads: int = 0
) -> np.ndarray:
    """MinHash signatures (the ones :func:`dedup` uses): uint32 (N, num_perm); an empty text gets all
    0xFFFFFFFF. The estimated Jaccard of two texts is ``np.mean(sig_a == sig_b)``."""
    cfg = _minhash_config(MINHASH.threshold, ngram, num_perm, 1, seed)  # bands=1 divides any num_perm
    return _native().minhash_signatures(
        _as_list(texts), num_perm=cfg.num_perm, ngram=cfg.ngram, seed=cfg.seed, num_threads=_check_threads(num_threads)
    )


def dedup(
    texts: Sequence[str],
    *,
    method: str = "minhash",
    threshold: float = MINHASH.threshold,
    ngram: int = MINHASH.ngram,
    num_perm: int = MINHASH.num_perm,
    bands: int = MINHASH.bands,
    seed: int = MINHASH.seed,
    num_threads: int = 0,
    clustering: str = "union_find",
) -> DedupResult:
    """Find duplicate (``"exact"``) or near-duplicate (``"minhash"``) documents.

    Args:
        texts: N documents (str; ``"exact"`` also takes bytes).
        method: ``"minhash"`` (near-duplicates, see the module docstring) or ``"exact"`` (hash + verify).
        threshold, ngram, num_perm, bands: minhash: see :class:`~bigmodel_fast.data.minhash_config.MinHashConfig`
            (defaults and ranges; the limits are the C++ ones, ``_C.MINHASH_LIMITS``).
        seed: minhash: seeds the hash family (results are reproducible for a given seed); exact: the XXH64
            seed (does not change the result).
        num_threads: worker threads; 0 = all hardware threads. The result does not depend on it.
        clustering: minhash: ``"union_find"`` (default: connected components of the verified candidate
            pairs, transitive) or ``"greedy"`` (each document joins the lowest earlier cluster it verifies
            against, never merging clusters; equals streaming through :class:`MinHashIndex`). See the
            module docstring for the trade-off and union-find's exact guarantee.

    Returns:
        DedupResult with ``keep`` (N,) bool and ``cluster`` (N,) int64; the first occurrence is kept.

    Raises:
        ValueError: unknown method or clustering, or an invalid parameter (the message names it and the
            expected range).
        TypeError: a non-str item (the message names its index).
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"dedup: unknown method {method!r}; expected one of {METHODS}")
    if not isinstance(clustering, str) or clustering not in CLUSTERINGS:
        raise ValueError(f"dedup: unknown clustering {clustering!r}; expected one of {CLUSTERINGS}")
    num_threads = _check_threads(num_threads)
    if method == "exact":
        return _dedup_exact(_as_list(texts), seed=check_seed(seed), num_threads=num_threads)
    cfg = _minhash_config(threshold, ngram, num_perm, bands, seed)
    if clustering == "greedy":
        res = MinHashIndex(num_threads=num_threads, _core=_index_core(cfg)).add(texts)
        keep, cluster = res.keep, res.cluster
        extra = {k: res.stats[k] for k in ("candidate_pairs", "verified_pairs", "empty_documents")}
    else:
        items = _as_list(texts)
        cluster, native = _native().minhash_union_find(items, **cfg.params(), num_threads=num_threads)
        keep = cluster == np.arange(len(items), dtype=np.int64)
        extra = {k: native[k] for k in ("candidate_pairs", "verified_pairs", "components_merged",
                                        "empty_documents")}
    return _result(keep, cluster, "minhash", clustering=clustering, **extra, threshold=cfg.threshold,
                   ngram=cfg.ngram, num_perm=cfg.num_perm, bands=cfg.bands, rows=cfg.rows, seed=cfg.seed)


def _result(keep: np.ndarray, cluster: np.ndarray, method: str, **extra: Any) -> DedupResult:
    """The result with ``stats`` = the counts every method reports (``documents``, ``kept``, ``duplicates``,
    ``method``), then the method's ``extra`` ones. ``keep``, ``cluster``: (N,)."""
    n, kept = len(keep), int(keep.sum())
    stats = {"documents": n, "kept": kept, "duplicates": n - kept, "method": method, **extra}
    return DedupResult(keep=keep, cluster=cluster, stats=stats)


def _dedup_exact(items: list, *, seed: int, num_threads: int) -> DedupResult:
    """Exact dedup: XXH64 of every text, equal hashes verified by string equality."""
    n = len(items)
    if n == 0:
        return _result(np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64), "exact", hash_collisions=0)

    hashes = np.asarray(_hash_texts(items, seed=seed, num_threads=num_threads), dtype=np.uint64)  # (N,)
    if hashes.shape != (n,):
        raise RuntimeError(f"dedup: hash function returned shape {hashes.shape}, expected ({n},)")

    # Stable sort: within a hash group indices stay ascending, so the group head is the first occurrence.
    order = np.argsort(hashes, kind="stable")  # (N,)
    sorted_h = hashes[order]  # (N,)
    is_head = np.empty(n, dtype=bool)  # (N,) True at the first element of each hash group
    is_head[0] = True
    np.not_equal(sorted_h[1:], sorted_h[:-1], out=is_head[1:])
    group_id = np.cumsum(is_head) - 1  # (N,) group index of each sorted position
    heads = order[is_head]  # (G,) first index of each group
    cluster = np.empty(n, dtype=np.int64)
    cluster[order] = heads[group_id]

    # Verify: every non-head must equal its head's text. Object-array comparison runs the string
    # equality in C (identity/length short-cuts first), with no Python-level loop.
    dup_idx = np.flatnonzero(cluster != np.arange(n))  # (D,)
    collisions = 0
    if dup_idx.size:
        objs = np.empty(n, dtype=object)
        objs[:] = items
        same = objs[dup_idx] == objs[cluster[dup_idx]]  # (D,) bool
        if not np.all(same):  # rare path: only the groups holding a real 64-bit collision
            group_of = np.empty(n, dtype=np.int64)  # (N,) group index of each original position
            group_of[order] = group_id
            starts = np.flatnonzero(is_head)  # (G,) sorted position where each group begins
            ends = np.append(starts[1:], n)  # (G,)
            for g in np.unique(group_of[dup_idx[~same]]).tolist():
                members = order[starts[g] : ends[g]]  # ascending original indices (stable sort)
                collisions += _split_colliding_group(members, items, cluster)

    return _result(cluster == np.arange(n), cluster, "exact", hash_collisions=collisions)


def remove_boilerplate_lines(
    texts: Iterable[str],
    *,
    min_docs: int = 10,
    min_chars: int = 1,
    num_threads: int = 0,
) -> tuple[list[str], dict[str, Any]]:
    """Drop lines that are repeated across many documents (navigation text, licence footers, ...).

    A line's key is the line with its whitespace runs folded to one space and stripped; a key that
    occurs in at least ``min_docs`` different documents (several times in one document counts once) is
    boilerplate, and every line with that key is removed everywhere. Blank lines and keys shorter than
    ``min_chars`` characters are never removed. Keys are counted by their 64-bit XXH64 (native,
    threaded) with numpy; a 64-bit collision is not verified (probability ~ lines**2 / 2**64).
    Untouched documents are returned as the same str objects; in the others the remaining lines keep
    their own line endings.

    Returns (new_texts, stats) with stats ``documents``, ``lines``, ``removed_lines``, ``removed_chars``,
    ``boilerplate_keys`` (distinct keys removed), ``documents_changed``, ``documents_emptied``.

    Raises TypeError naming the index of a non-str item; ValueError for min_docs < 2 or min_chars < 0.
    """
    min_docs = check_int("min_docs", min_docs, 2, 2**62)
    min_chars = check_int("min_chars", min_chars, 0, 2**62)
    num_threads = _check_threads(num_threads)
    items = _as_list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be str, got {type(t).__name__}")
    n = len(items)
    lines_of = [t.splitlines(keepends=True) for t in items]
    counts = np.fromiter((len(ls) for ls in lines_of), dtype=np.int64, count=n)
    total_lines = int(counts.sum())
    stats: dict[str, Any] = {"documents": n, "lines": total_lines, "removed_lines": 0, "removed_chars": 0,
                             "boilerplate_keys": 0, "documents_changed": 0, "documents_emptied": 0}
    if total_lines == 0:
        return list(items), stats
    keys = [" ".join(line.split()) for ls in lines_of for line in ls]
    eligible = np.fromiter((len(k) >= max(1, min_chars) for k in keys), dtype=bool, count=total_lines)
    hashes = np.asarray(_native().xxh64_batch(keys, seed=0, num_threads=num_threads), dtype=np.uint64)
    doc_of = np.repeat(np.arange(n, dtype=np.int64), counts)  # (L,)
    # Document frequency of every eligible key: unique (hash, doc) pairs, then count per hash.
    h_e, d_e = hashes[eligible], doc_of[eligible]
    order = np.lexsort((d_e, h_e))
    h_s, d_s = h_e[order], d_e[order]
    first = np.ones(h_s.size, dtype=bool)
    first[1:] = (h_s[1:] != h_s[:-1]) | (d_s[1:] != d_s[:-1])
    uniq_h, df = np.unique(h_s[first], return_counts=True)
    boiler_h = uniq_h[df >= min_docs]
    stats["boilerplate_keys"] = int(boiler_h.size)
    if boiler_h.size == 0:
        return list(items), stats
    drop = eligible & np.isin(hashes, boiler_h)  # (L,)
    out = list(items)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    changed_docs = np.unique(doc_of[drop])
    removed_chars = 0
    for d in changed_docs.tolist():
        s0 = int(starts[d])
        ls = lines_of[d]
        dmask = drop[s0 : s0 + len(ls)]
        kept = [line for line, gone in zip(ls, dmask) if not gone]
        removed_chars += len(items[d]) - sum(len(x) for x in kept)
        out[d] = "".join(kept)
        stats["documents_emptied"] += not out[d].strip()
    stats["removed_lines"] = int(drop.sum())
    stats["removed_chars"] = removed_chars
    stats["documents_changed"] = int(changed_docs.size)
    return out, stats
