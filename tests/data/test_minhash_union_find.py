"""Tests for union-find MinHash clustering (dedup(clustering="union_find"), _C.minhash_union_find) against a
brute-force reference: connected components of the verified candidate pairs, the bucket member cap, chains."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

_C = pytest.importorskip("bigmodel_fast._C", reason="native extension not built (run `pip install -e .`)")

from bigmodel_fast.data.dedup import dedup, minhash_signatures  # noqa: E402


# ------------------------------------------------------------------------------------------------
# Union-find clustering against a brute-force reference
# ------------------------------------------------------------------------------------------------
def make_chain_corpus(seed: int, n_families: int = 250, words: int = 150, subs: int = 3, copies: float = 0.1):
    """Families of chains: member k+1 is member k with ``subs`` more words substituted, so with 3-gram
    shingles consecutive members have Jaccard ~0.88, members two apart ~0.78 and three apart ~0.69
    (A~B, B~C, A not~C at threshold 0.8). Chains of 1-6 members, some exact copies, all shuffled."""
    rng = np.random.default_rng(seed)
    vocab = [f"v{i}" for i in range(20000)]
    docs = []
    for _ in range(n_families):
        cur = [vocab[int(x)] for x in rng.integers(0, len(vocab), size=words)]
        for _ in range(int(rng.integers(1, 7))):
            docs.append(" ".join(cur))
            if rng.random() < copies:
                docs.append(" ".join(cur))  # an exact copy
            cur = list(cur)
            for i in rng.choice(words, size=subs, replace=False):
                cur[int(i)] = vocab[int(rng.integers(0, len(vocab)))]
    docs += ["", "!!!"]  # empty documents: never candidates
    return [docs[i] for i in rng.permutation(len(docs))]


def reference_components(texts, *, threshold, ngram, num_perm, bands, seed=0, max_members=None):
    """Brute force over minhash_signatures: connected components (cluster = lowest index) of the graph of
    candidate pairs (documents sharing a band bucket: all rows of the band equal) whose estimated Jaccard
    reaches the threshold. With ``max_members`` only pairs with a document among the first max_members
    (lowest-index) documents of a shared bucket count. Returns (cluster, largest bucket, bridged): bridged
    = number of same-component candidate pairs that did not verify (transitive merges)."""
    sig = minhash_signatures(texts, num_perm=num_perm, ngram=ngram, seed=seed, num_threads=1)
    n, rows = len(texts), num_perm // bands
    need = int(np.ceil(threshold * num_perm - 1e-9))
    nonempty = [i for i, t in enumerate(texts) if _C.minhash_words(t)]
    buckets: dict = {}
    for b in range(bands):
        for i in nonempty:
            buckets.setdefault((b, sig[i, b * rows : (b + 1) * rows].tobytes()), []).append(i)
    pairs = set()
    for members in buckets.values():  # members ascending
        for x, y in itertools.combinations(members, 2):
            if max_members is None or members.index(x) < max_members:
                pairs.add((x, y))
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    failed = []
    for x, y in sorted(pairs):
        if int(np.sum(sig[x] == sig[y])) >= need:
            rx, ry = find(x), find(y)
            parent[max(rx, ry)] = min(rx, ry)
        else:
            failed.append((x, y))
    cluster = np.array([find(i) for i in range(n)], dtype=np.int64)
    bridged = sum(cluster[x] == cluster[y] for x, y in failed)
    return cluster, max(len(m) for m in buckets.values()), bridged


@pytest.mark.parametrize("params", [dict(threshold=0.8, ngram=3, num_perm=112, bands=14, seed=0),
                                    dict(threshold=0.75, ngram=3, num_perm=64, bands=16, seed=7)])
def test_union_find_equals_brute_force_components(params):
    from bigmodel_fast.data.dedup import UNION_FIND_BUCKET_MEMBERS

    for corpus_seed in (0, 1):
        texts = make_chain_corpus(corpus_seed)
        ref, largest, bridged = reference_components(texts, **params)
        # The documented guarantee is exact (all verified candidate pairs) when no bucket exceeds K + 1.
        assert largest <= UNION_FIND_BUCKET_MEMBERS + 1
        assert bridged > 0  # the corpus does chain: same-component pairs below the threshold exist
        results = [dedup(texts, num_threads=t, **params) for t in (1, 2, 4)]
        for res in results:
            np.testing.assert_array_equal(res.cluster, ref)
            np.testing.assert_array_equal(res.keep, ref == np.arange(len(texts)))
            assert res.stats == results[0].stats  # deterministic, stats included
        s = results[0].stats
        assert s["clustering"] == "union_find" and s["empty_documents"] == 2
        assert s["components_merged"] == s["verified_pairs"] == s["duplicates"]
        assert s["verified_pairs"] <= s["candidate_pairs"]
        # Greedy never chains through a later document: every greedy cluster lies inside one component,
        # and on this corpus it keeps strictly more documents.
        greedy = dedup(texts, clustering="greedy", **params)
        assert greedy.stats["clustering"] == "greedy" and "components_merged" not in greedy.stats
        np.testing.assert_array_equal(ref[greedy.cluster], ref)
        assert greedy.stats["kept"] > s["kept"]


def test_union_find_bucket_cap_matches_restricted_reference():
    # Buckets larger than K + 1: the result is exactly the components of the verified candidate pairs
    # with a document among the first K of a shared bucket (the documented guarantee), for several K.
    # Few-word texts over a 12-word vocabulary, 8 bands of 1 row: crowded buckets (> 100 documents).
    params = dict(threshold=0.75, ngram=1, num_perm=8, bands=8, seed=0)
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{int(x)}" for x in rng.choice(12, size=int(rng.integers(4, 7)), replace=False))
             for _ in range(300)]
    full, largest, _ = reference_components(texts, **params)
    assert largest > 100
    restricted = []
    for k in (1, 2, 4, 32, largest - 1):
        ref, _, _ = reference_components(texts, max_members=k, **params)
        restricted.append(ref)
        for threads in (1, 3):
            cluster, stats = _C.minhash_union_find(texts, max_members=k, num_threads=threads, **params)
            np.testing.assert_array_equal(cluster, ref)
            assert stats["clusters"] == int(np.sum(ref == np.arange(len(texts))))
            assert stats["components_merged"] == stats["verified_pairs"]
        if k == largest - 1:
            np.testing.assert_array_equal(cluster, full)
    kept = [int(np.sum(r == np.arange(len(texts)))) for r in restricted]
    assert kept[0] > kept[1] > kept[2] > kept[-1]  # the cap matters on this corpus: fewer edges, more kept
    with pytest.raises(ValueError, match="max_members"):
        _C.minhash_union_find(texts, max_members=0)


def test_union_find_chain_and_clustering_argument():
    # A~B and B~C but A not~C (estimated Jaccard): union-find puts all three in A's cluster; greedy keeps
    # C when it comes before B (C has no earlier match, then B can join only one of them).
    rng = np.random.default_rng(11)
    words = [f"t{int(x)}" for x in rng.integers(0, 10**6, size=150)]
    a = list(words)
    b = list(a)
    b[10:13] = ["x1", "x2", "x3"]
    c = list(b)
    c[100:103] = ["y1", "y2", "y3"]
    c[50:53] = ["z1", "z2", "z3"]
    texts = [" ".join(a), " ".join(c), " ".join(b)]  # A, C, B
    params = dict(threshold=0.8, ngram=3)
    sig = minhash_signatures(texts, ngram=3)
    est = lambda i, j: float(np.mean(sig[i] == sig[j]))  # noqa: E731
    assert est(0, 2) >= 0.8 and est(1, 2) >= 0.8 and est(0, 1) < 0.8
    uf = dedup(texts, **params)
    assert uf.cluster.tolist() == [0, 0, 0] and uf.stats["components_merged"] == 2
    assert dedup(texts, clustering="greedy", **params).cluster.tolist() == [0, 1, 0]
    for bad in ("unionfind", "", None, 3):
        with pytest.raises(ValueError, match="unknown clustering"):
            dedup(texts, clustering=bad)
    with pytest.raises(ValueError, match="unknown clustering"):
        dedup(texts, method="exact", clustering="bogus")
