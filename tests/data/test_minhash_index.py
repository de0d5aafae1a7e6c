"""Tests for the streaming MinHash index (bigmodel_fast.data.dedup.MinHashIndex over _C.MinHashIndexCore):
batches equal one call, save / load round trip, corrupt index files, sharing between threads."""
from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

pytest.importorskip("bigmodel_fast._C", reason="native extension not built (run `pip install -e .`)")

from bigmodel_fast.data.dedup import MinHashIndex, MinHashIndexError, dedup  # noqa: E402

from .minhash_helpers import make_corpus, planted_corpus  # noqa: E402


@pytest.fixture(scope="module")
def corpus():
    return planted_corpus()


# ------------------------------------------------------------------------------------------------
# Streaming index
# ------------------------------------------------------------------------------------------------
def test_streaming_batches_equal_one_call(corpus):
    texts = corpus[0]
    whole = dedup(texts, clustering="greedy")
    index = MinHashIndex(num_threads=2)
    got, kept, offsets = [], [], []
    for lo, hi in [(0, 1), (1, 1), (1, 57), (57, 300), (300, 301), (301, len(texts))]:
        r = index.add(texts[lo:hi])
        got.append(r.cluster)
        kept.append(r.keep)
        offsets.append(r.stats["offset"])
        assert np.array_equal(r.keep, r.cluster == np.arange(lo, hi))
    np.testing.assert_array_equal(np.concatenate(got), whole.cluster)
    np.testing.assert_array_equal(np.concatenate(kept), whole.keep)
    np.testing.assert_array_equal(index.clusters(), whole.cluster)
    assert offsets == [0, 1, 1, 57, 300, 301]
    assert len(index) == len(texts) and index.num_clusters == whole.stats["kept"]
    assert index.signatures().shape == (len(texts), 112)
    per_doc = index.memory_bytes() / len(texts)
    assert 112 * 4 < per_doc < 4096


def test_save_load_round_trip(corpus, tmp_path):
    texts = corpus[0]
    whole = dedup(texts, threshold=0.7, ngram=4, num_perm=64, bands=16, seed=3, clustering="greedy")
    index = MinHashIndex(threshold=0.7, ngram=4, num_perm=64, bands=16, seed=3)
    first = index.add(texts[:250])
    path = tmp_path / "index.bmfmh"
    index.save(path)
    loaded = MinHashIndex.load(path)
    assert (loaded.threshold, loaded.ngram, loaded.num_perm, loaded.bands, loaded.seed) == (0.7, 4, 64, 16, 3)
    assert len(loaded) == 250 and loaded.num_clusters == index.num_clusters
    np.testing.assert_array_equal(loaded.signatures(), index.signatures())
    rest = loaded.add(texts[250:])
    np.testing.assert_array_equal(np.concatenate([first.cluster, rest.cluster]), whole.cluster)
    assert not (tmp_path / "index.bmfmh.tmp").exists()
    # Many small batches fill the bucket table to its maximum load factor; that round-trips as well.
    small = MinHashIndex()
    for lo in range(0, len(texts), 7):
        small.add(texts[lo : lo + 7])
    small.save(tmp_path / "small")
    again = MinHashIndex.load(tmp_path / "small")
    greedy = dedup(texts, clustering="greedy").cluster
    np.testing.assert_array_equal(again.clusters(), greedy)
    assert again.add(texts[:3]).cluster.tolist() == greedy[:3].tolist()
    # An empty index round-trips too.
    MinHashIndex().save(tmp_path / "empty")
    assert len(MinHashIndex.load(tmp_path / "empty")) == 0


def test_corrupt_index_files_raise(tmp_path):
    index = MinHashIndex()
    index.add(["alpha beta gamma delta epsilon zeta", "alpha beta gamma delta epsilon zeta", "other words"])
    good = tmp_path / "good.idx"
    index.save(good)
    data = good.read_bytes()

    def write(name: str, payload: bytes):
        p = tmp_path / name
        p.write_bytes(payload)
        return p

    cases = {
        "empty.idx": (b"", "truncated"),
        "magic.idx": (b"NOTANIDX" + data[8:], "not a MinHash index"),
        "version.idx": (data[:8] + (99).to_bytes(4, "little") + data[12:], "version 99"),
        "trunc_header.idx": (data[:50], "truncated"),
        "trunc_body.idx": (data[:-9], "truncated"),
        "trailing.idx": (data + b"\0\0\0", "trailing"),
        "flipped.idx": (data[:200] + bytes([data[200] ^ 0xFF]) + data[201:], "checksum"),
        "bands.idx": (data[:16] + (5).to_bytes(4, "little") + data[20:], "invalid parameters"),
        "huge_docs.idx": (data[:40] + (2**40).to_bytes(8, "little") + data[48:], "inconsistent sizes"),
    }
    for name, (payload, message) in cases.items():
        p = write(name, payload)
        with pytest.raises(MinHashIndexError, match=message) as err:
            MinHashIndex.load(p)
        assert str(p) in str(err.value)
        assert isinstance(err.value, ValueError)
    # Every possible truncation raises cleanly (never crashes).
    for cut in range(0, len(data), max(1, len(data) // 97)):
        with pytest.raises(MinHashIndexError):
            MinHashIndex.load(write("cut.idx", data[:cut]))
    with pytest.raises(FileNotFoundError, match="missing.idx"):
        MinHashIndex.load(tmp_path / "missing.idx")
    with pytest.raises(IsADirectoryError):
        MinHashIndex.load(tmp_path)
    with pytest.raises(OSError):
        index.save(tmp_path / "no_such_dir" / "x.idx")


def test_index_is_safe_to_share_between_threads():
    texts, _ = make_corpus(seed=9, n_base=200, n_planted=200)
    index = MinHashIndex()
    errors = []

    results = []

    def work(chunk):
        try:
            results.append(index.add(chunk, num_threads=2))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(texts[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(index) == len(texts)
    # Each batch got its own consecutive numbers, and its keep mask agrees with them.
    spans = sorted((r.stats["offset"], r.stats["documents"]) for r in results)
    assert [lo for lo, _ in spans] == list(itertools.accumulate([0] + [k for _, k in spans[:-1]]))
    for r in results:
        assert np.array_equal(r.keep, r.cluster == r.stats["offset"] + np.arange(r.stats["documents"]))
