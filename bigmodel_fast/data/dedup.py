"""Document de-duplication.

``dedup(texts)`` marks which documents to keep. The ``"exact"`` method hashes every text with XXH64
(native, multithreaded, GIL released: ``bigmodel_fast._C.xxh64_batch``), groups equal hashes with a
stable numpy argsort, keeps the first occurrence of each group and points every duplicate at it.
Members of a hash group are confirmed by string equality (vectorised over an object array), so a
64-bit hash collision can never merge two different texts. Callers pass already-cleaned text.

Near-duplicate detection (``method="minhash"``) is planned and not implemented yet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["DedupResult", "dedup", "METHODS"]

METHODS = ("exact", "minhash")


@dataclass
class DedupResult:
    """Outcome of :func:`dedup` over N texts.

    keep:    bool array (N,), True for the first occurrence of every distinct text.
    cluster: int64 array (N,), index of the first occurrence of the text at each position
             (``cluster[i] == i`` exactly where ``keep[i]``).
    stats:   dict with ``documents``, ``kept``, ``duplicates``, ``method`` and ``hash_collisions``
             (equal 64-bit hashes of different texts that string comparison told apart).
    """

    keep: np.ndarray
    cluster: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    def kept_indices(self) -> np.ndarray:
        """Indices of the kept documents, ascending: int64 array (kept,)."""
        return np.flatnonzero(self.keep)


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


def dedup(
    texts: Sequence[str],
    *,
    method: str = "exact",
    num_threads: int = 0,
    seed: int = 0,
) -> DedupResult:
    """Find duplicate documents.

    Args:
        texts: N documents (str, or bytes). Equality is exact: callers normalise/clean first.
        method: ``"exact"`` (hash + verify). ``"minhash"`` raises NotImplementedError for now.
        num_threads: hashing threads; 0 = all hardware threads.
        seed: XXH64 seed (does not change the result, only the hashes used internally).

    Returns:
        DedupResult with ``keep`` (N,) bool and ``cluster`` (N,) int64; the first occurrence is kept.

    Raises:
        NotImplementedError: for ``method="minhash"``.
        ValueError: unknown method or negative ``num_threads``; TypeError: a non-str/bytes item
            (the message names its index).
    """
    if method == "minhash":
        raise NotImplementedError(
            "dedup(method='minhash') (near-duplicate detection) is not implemented yet: it is planned in the "
            "near-dedup issue (#3); use method='exact' for now"
        )
    if method != "exact":
        raise ValueError(f"dedup: unknown method {method!r}; expected one of {METHODS}")
    if num_threads < 0:
        raise ValueError(f"dedup: num_threads must be >= 0 (0 = all hardware threads), got {num_threads}")

    items = texts if isinstance(texts, list) else list(texts)
    n = len(items)
    if n == 0:
        return DedupResult(
            keep=np.zeros(0, dtype=bool),
            cluster=np.zeros(0, dtype=np.int64),
            stats={"documents": 0, "kept": 0, "duplicates": 0, "method": method, "hash_collisions": 0},
        )

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

    keep = cluster == np.arange(n)
    kept = int(keep.sum())
    stats = {
        "documents": n,
        "kept": kept,
        "duplicates": n - kept,
        "method": method,
        "hash_collisions": collisions,
    }
    return DedupResult(keep=keep, cluster=cluster, stats=stats)
