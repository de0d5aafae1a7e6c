"""Tests for bigmodel_fast.data.dedup, method="exact" (near-duplicates: test_minhash.py)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("bigmodel_fast._C", reason="native extension not built (run `pip install -e .`)")

from bigmodel_fast.data import dedup as dedup_mod  # noqa: E402
from bigmodel_fast.data.dedup import DedupResult, dedup  # noqa: E402


def expected_clusters(texts):
    """Independent oracle: first index of each text, via a plain dict."""
    first: dict = {}
    return np.array([first.setdefault(t, i) for i, t in enumerate(texts)], dtype=np.int64)


def test_planted_duplicates_removed_first_kept():
    texts = ["alpha", "beta", "alpha", "gamma", "beta", "alpha", "delta"]
    res = dedup(texts, method="exact")
    assert isinstance(res, DedupResult)
    assert res.keep.dtype == np.bool_ and res.cluster.dtype == np.int64
    assert res.keep.tolist() == [True, True, False, True, False, False, True]
    assert res.cluster.tolist() == [0, 1, 0, 3, 1, 0, 6]
    assert res.stats == {"documents": 7, "kept": 4, "duplicates": 3, "method": "exact", "hash_collisions": 0}
    assert res.kept_indices().tolist() == [0, 1, 3, 6]


def test_large_random_matches_oracle_for_any_threads_and_seed():
    rng = np.random.default_rng(1)
    pool = [f"document number {i} " * int(rng.integers(1, 20)) for i in range(300)]
    texts = [pool[j] for j in rng.integers(0, len(pool), size=3000)]
    oracle = expected_clusters(texts)
    for threads, seed in ((1, 0), (2, 0), (0, 12345)):
        res = dedup(texts, num_threads=threads, seed=seed, method="exact")
        np.testing.assert_array_equal(res.cluster, oracle)
        np.testing.assert_array_equal(res.keep, oracle == np.arange(len(texts)))
    assert res.stats["kept"] == len(set(texts))


def test_unicode_and_near_identical_texts():
    texts = ["café", "cafe\u0301", "café", "日本語のテキスト", "日本語のテキスト ", "日本語のテキスト",
             "😀", "😀"]
    res = dedup(texts, method="exact")
    # "cafe\u0301" (combining accent) is a different code point sequence: not an exact duplicate.
    np.testing.assert_array_equal(res.cluster, expected_clusters(texts))
    assert res.cluster.tolist() == [0, 1, 0, 3, 4, 3, 6, 6]


def test_empty_input_and_empty_strings():
    res = dedup([], method="exact")
    assert res.keep.shape == (0,) and res.keep.dtype == np.bool_
    assert res.cluster.shape == (0,) and res.cluster.dtype == np.int64
    assert res.stats["documents"] == 0 and res.stats["kept"] == 0
    res = dedup(["", "x", ""], method="exact")
    assert res.cluster.tolist() == [0, 1, 0]


def test_accepts_tuple_and_generator():
    texts = ("a", "b", "a")
    assert dedup(texts, method="exact").cluster.tolist() == [0, 1, 0]
    assert dedup((t for t in texts), method="exact").cluster.tolist() == [0, 1, 0]


def test_colliding_hashes_are_verified_by_string_equality(monkeypatch):
    calls = []

    def constant_hash(texts, *, seed, num_threads):
        calls.append(len(texts))
        return np.full(len(texts), 42, dtype=np.uint64)

    monkeypatch.setattr(dedup_mod, "_hash_texts", constant_hash)
    texts = ["one", "two", "one", "three", "two", "four"]
    res = dedup(texts, method="exact")
    assert calls == [6]
    assert res.cluster.tolist() == [0, 1, 0, 3, 1, 5]
    assert res.keep.tolist() == [True, True, False, True, False, True]
    assert res.stats["kept"] == 4 and res.stats["duplicates"] == 2
    assert res.stats["hash_collisions"] == 3  # 4 distinct texts shared one hash


def test_partial_collision_only_splits_affected_group(monkeypatch):
    # "x" and "y" collide; "z" has its own hash; everything else is untouched.
    table = {"x": 1, "y": 1, "z": 2}
    monkeypatch.setattr(
        dedup_mod, "_hash_texts", lambda texts, *, seed, num_threads: np.array([table[t] for t in texts], np.uint64)
    )
    texts = ["z", "x", "y", "z", "y", "x"]
    res = dedup(texts, method="exact")
    assert res.cluster.tolist() == [0, 1, 2, 0, 2, 1]
    assert res.stats["hash_collisions"] == 1


def test_default_method_is_minhash_and_bad_arguments():
    stats = dedup(["a b c", "a b c"]).stats
    assert stats["method"] == "minhash" and stats["clustering"] == "union_find"
    with pytest.raises(ValueError, match="unknown clustering 'fuzzy'.*union_find.*greedy"):
        dedup(["a"], clustering="fuzzy")
    with pytest.raises(ValueError, match="unknown method 'fuzzy'"):
        dedup(["a"], method="fuzzy")
    with pytest.raises(ValueError, match="num_threads"):
        dedup(["a"], method="exact", num_threads=-2)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        dedup(["a", 5], method="exact")
    with pytest.raises(TypeError, match="single str"):
        dedup("abc", method="exact")
