"""Tests for MinHash near-duplicate detection: bigmodel_fast.data.dedup (method="minhash", minhash_signatures,
remove_boilerplate_lines) and the native core bigmodel_fast._C.minhash_*: normalisation, signatures (SIMD paths,
Python reference), dedup end to end, determinism and bad input. The streaming index is tested in
test_minhash_index.py, union-find clustering in test_minhash_union_find.py; shared helpers: minhash_helpers.py."""
from __future__ import annotations

import gzip
import itertools
import json

import numpy as np
import pytest

_C = pytest.importorskip("bigmodel_fast._C", reason="native extension not built (run `pip install -e .`)")

from bigmodel_fast.data.dedup import (  # noqa: E402
    MinHashIndex,
    dedup,
    minhash_signatures,
    remove_boilerplate_lines,
)

from .minhash_helpers import make_corpus, planted_corpus  # noqa: E402


def _isa_supported(name: str) -> bool:
    try:
        _C.minhash_isa(name)
        return True
    except ValueError:
        return False


ISAS = [isa for isa in ("scalar", "avx2", "avx512") if _isa_supported(isa)]

# ------------------------------------------------------------------------------------------------
# Independent Python reference of the hashing (see csrc/dedup/minhash.h)
# ------------------------------------------------------------------------------------------------
M64 = (1 << 64) - 1


def mix64(z: int) -> int:
    z ^= z >> 33
    z = (z * 0xFF51AFD7ED558CCD) & M64
    z ^= z >> 33
    z = (z * 0xC4CEB9FE1A85EC53) & M64
    return z ^ (z >> 33)


def word_hash(b: bytes, seed: int) -> int:
    h = seed ^ ((len(b) * 0x9E3779B97F4A7C15) & M64)
    p, n = 0, len(b)
    while n > 8:
        h = ((h ^ int.from_bytes(b[p : p + 8], "little")) * 0x9FB21C651E98DF25) & M64
        h = ((h << 31) | (h >> 33)) & M64
        p, n = p + 8, n - 8
    return mix64(h ^ int.from_bytes(b[p : p + n], "little"))


def ref_shingle_hashes(words: list[str], ngram: int, seed: int) -> list[int]:
    if not words:
        return []
    wh = [word_hash(w.encode("utf-8"), seed) for w in words]
    n = min(ngram, len(wh))
    base = 0xD6E8FEB86659FD93
    out = []
    for k in range(len(wh) - n + 1):
        acc = sum(wh[k + j] * pow(base, n - 1 - j, 1 << 64) for j in range(n)) & M64
        out.append(mix64(acc) & 0xFFFFFFFF)
    return out


def ref_family(num_perm: int, seed: int) -> list[tuple[int, int]]:
    state, out = seed, []

    def nxt() -> int:
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    for _ in range(num_perm):
        a = nxt()
        out.append((a, nxt()))
    return out


def ref_signature(text: str, num_perm: int, ngram: int, seed: int) -> list[int]:
    xs = ref_shingle_hashes(_C.minhash_words(text, isa="scalar"), ngram, seed)
    if not xs:
        return [0xFFFFFFFF] * num_perm
    return [min((((a * x + b) & M64) >> 32) for x in xs) for a, b in ref_family(num_perm, seed)]


@pytest.fixture(scope="module")
def corpus():
    return planted_corpus()


# ------------------------------------------------------------------------------------------------
# Normalisation and signatures
# ------------------------------------------------------------------------------------------------
def test_normalisation_words():
    words = _C.minhash_words("Hello, WORLD!! Ça va?  naïve STRASSE—Straße; ΚΑΛΗΜΕΡΑ Привет 😀 it's 2024")
    assert words == ["hello", "world", "ça", "va", "naïve", "strasse", "straße", "καλημερα", "привет", "it", "s",
                     "2024"]
    # Scripts without spaces: one word per character; kana too; punctuation separates.
    assert _C.minhash_words("中文文本，测试。") == ["中", "文", "文", "本", "测", "试"]
    assert _C.minhash_words("カタカナとひらがな") == list("カタカナとひらがな")
    assert _C.minhash_words("ภาษาไทย") == list("ภาษาไทย")
    assert _C.minhash_words("mixed中文text") == ["mixed", "中", "文", "text"]
    # Soft hyphen / zero-width characters are ignored inside words; whitespace of any kind separates.
    assert _C.minhash_words("co\u00adop\u200bera\ttion\u3000x\u00a0y") == ["coopera", "tion", "x", "y"]
    assert _C.minhash_words("") == [] and _C.minhash_words(" ,.;!? \n\t—") == []


def test_lowercase_matches_python_in_covered_blocks():
    ranges = [(0x41, 0x5A), (0xC0, 0xDE), (0x100, 0x17F), (0x1CD, 0x1DC), (0x1DE, 0x1EF), (0x1F8, 0x21F),
              (0x222, 0x233), (0x386, 0x3AB), (0x400, 0x42F), (0x460, 0x481), (0x48A, 0x4BF), (0x4D0, 0x52F),
              (0x531, 0x556), (0x10A0, 0x10C5), (0x1C90, 0x1CBA), (0x1E00, 0x1E95), (0x1EA0, 0x1EFF),
              (0xFF21, 0xFF3A)]
    checked = 0
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if cp == 0x130 or not ch.isalpha() or len(ch.lower()) != 1:
                continue
            assert _C.minhash_words("x" + ch) == ["x" + ch.lower()], hex(cp)
            checked += 1
    assert checked > 700


@pytest.mark.parametrize("isa", ISAS)
def test_simd_paths_match_scalar(isa):
    rng = np.random.default_rng(3)
    alphabet = list("abcdefghijKLMNOP0123456789 ,.;:!?-'\n\t") + ["é", "中", "ß", "😀"]
    texts = ["".join(rng.choice(alphabet[: 38 if i % 3 else len(alphabet)], size=int(rng.integers(0, 300))))
             for i in range(300)]
    texts += ["a" * 31, "a" * 32, "a" * 33, " " * 64 + "x", "x" + " " * 63, "word " * 40]
    for t in texts:
        assert _C.minhash_words(t, isa=isa) == _C.minhash_words(t, isa="scalar")
    np.testing.assert_array_equal(_C.minhash_signatures(texts, isa=isa), _C.minhash_signatures(texts, isa="scalar"))


def test_signatures_match_python_reference():
    texts = ["the quick brown fox jumps over the lazy dog", "Short text", "one", "",
             "Ünïcödé wörds and a looooooooooooooooong word, 中文字符也可以 " * 3]
    for num_perm, ngram, seed in ((16, 5, 0), (24, 3, 12345), (13, 2, 5), (8, 1, 2**64 - 1), (8, 20, 7)):
        sig = _C.minhash_signatures(texts, num_perm=num_perm, ngram=ngram, seed=seed)
        assert sig.dtype == np.uint32 and sig.shape == (len(texts), num_perm)
        for t, row in zip(texts, sig):
            assert row.tolist() == ref_signature(t, num_perm, ngram, seed)
    # Shingles: n-grams of words; fewer than n words -> one shingle of all of them.
    assert _C.minhash_shingles("A b, c d e f", 5) == ["a b c d e", "b c d e f"]
    assert _C.minhash_shingles("Just THREE words!", 5) == ["just three words"]
    assert _C.minhash_shingles("?!", 5) == []


def test_estimated_jaccard_tracks_true_jaccard(corpus):
    texts, _, true_j = corpus
    sig = minhash_signatures(texts)
    pairs = [p for p, j in true_j.items() if j > 0.3]
    est = np.array([np.mean(sig[i] == sig[j]) for i, j in pairs])
    tru = np.array([true_j[p] for p in pairs])
    assert len(pairs) > 100
    assert np.mean(np.abs(est - tru)) < 0.03
    assert np.max(np.abs(est - tru)) < 0.15


# ------------------------------------------------------------------------------------------------
# dedup(method="minhash")
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clustering", ["union_find", "greedy"])
def test_near_duplicates_recall_and_precision_vs_brute_force(corpus, clustering):
    texts, family, true_j = corpus
    res = dedup(texts, threshold=0.8, ngram=5, num_perm=112, bands=14, clustering=clustering)
    cl = res.cluster
    n = len(texts)
    assert res.keep.dtype == np.bool_ and cl.dtype == np.int64 and cl.shape == (n,)
    assert np.array_equal(res.keep, cl == np.arange(n))
    assert np.all(cl <= np.arange(n)) and np.all(cl[cl] == cl)  # cluster id = first (lowest) member
    # Recall: every pair with true Jaccard >= 0.9 ends in one cluster.
    strong = [p for p, j in true_j.items() if j >= 0.9]
    assert len(strong) > 100
    assert all(cl[i] == cl[j] for i, j in strong)
    # Precision: documents derived from different bases (true Jaccard ~ 0) are never merged.
    assert np.all(family == family[cl])
    # At the threshold itself (estimation noise allowed): document-level precision/recall of the duplicate
    # decisions against brute force (a document is a true duplicate when an earlier one has Jaccard >= 0.8),
    # and pair-level recall (true pairs ending in one cluster).
    best_earlier = np.zeros(n)
    for (i, j), jac in true_j.items():
        best_earlier[j] = max(best_earlier[j], jac)
    truth_dup, pred_dup = best_earlier >= 0.8, ~res.keep
    tp = int(np.sum(truth_dup & pred_dup))
    assert tp / pred_dup.sum() >= 0.95 and tp / truth_dup.sum() >= 0.95
    if clustering == "greedy":  # no duplicate decision far below the threshold
        assert np.all(best_earlier[pred_dup] >= 0.7)
    else:  # union-find: a removed document may be justified by a later one (transitive clusters), but
        # every member of a cluster has a true near-duplicate (J >= 0.7) in it.
        best_in_cluster = np.zeros(n)
        for (i, j), jac in true_j.items():
            if cl[i] == cl[j]:
                best_in_cluster[i] = max(best_in_cluster[i], jac)
                best_in_cluster[j] = max(best_in_cluster[j], jac)
        sizes = np.bincount(cl, minlength=n)
        assert np.all(best_in_cluster[sizes[cl] > 1] >= 0.7)
    truth = [p for p, j in true_j.items() if j >= 0.8]
    assert np.mean([cl[i] == cl[j] for i, j in truth]) >= 0.95
    s = res.stats
    assert s["method"] == "minhash" and s["documents"] == n and s["kept"] == int(res.keep.sum())
    assert s["clustering"] == clustering and ("components_merged" in s) == (clustering == "union_find")
    assert s["duplicates"] == n - s["kept"] and s["verified_pairs"] <= s["candidate_pairs"]
    assert (s["num_perm"], s["bands"], s["rows"], s["ngram"], s["threshold"]) == (112, 14, 8, 5, 0.8)
    # Exact copies are always duplicates; keep the first.
    assert dedup(["x y z w v u", "x y z w v u"], clustering=clustering).cluster.tolist() == [0, 0]


def test_deterministic_across_thread_counts_and_seeded():
    texts, _ = make_corpus(seed=5, n_base=1500, n_planted=1500)
    for clustering in ("greedy", "union_find"):
        results = [dedup(texts, num_threads=t, clustering=clustering) for t in (1, 2, 4)]
        for r in results[1:]:
            np.testing.assert_array_equal(r.cluster, results[0].cluster)
            assert r.stats == results[0].stats
    sigs = [minhash_signatures(texts, num_threads=t) for t in (1, 2, 4)]
    np.testing.assert_array_equal(sigs[0], sigs[1])
    np.testing.assert_array_equal(sigs[0], sigs[2])
    # Another seed: other hash functions; only decisions near the threshold may change.
    other = dedup(texts, seed=99)
    assert not np.array_equal(minhash_signatures(texts[:5], seed=99), sigs[0][:5])
    assert np.mean(other.keep == results[0].keep) > 0.95
    np.testing.assert_array_equal(dedup(texts, seed=99, num_threads=1).cluster, other.cluster)


def test_empty_short_and_long_texts():
    rng = np.random.default_rng(1)
    long_words = [f"w{int(x)}" for x in rng.integers(0, 50_000, size=200_000)]
    long_a = " ".join(long_words)
    long_words[100_000] = "changed"
    long_b = " ".join(long_words)
    texts = ["", "word", "", "WORD!", "!!!", "another", long_a, long_b, "  ", "word"]
    res = dedup(texts)
    # Empty (no word): each its own cluster, never merged with anything (nor with each other).
    assert res.cluster.tolist() == [0, 1, 2, 1, 4, 5, 6, 6, 8, 1]
    assert res.stats["empty_documents"] == 4
    # Texts shorter than ngram words are one shingle: "word" != "another".
    assert dedup(["a b", "a b c", "A, B!"]).cluster.tolist() == [0, 1, 0]


def test_non_ascii_and_cjk_near_duplicates():
    from bigmodel_fast.data import sample_files as samples

    path = [p for p in samples.corpus_paths() if "zh" in p.name][0]
    with gzip.open(path, "rt", encoding="utf-8") as f:
        zh = [json.loads(line)["text"] for line in itertools.islice(f, 3000)]
    zh = sorted({t for t in zh if len(t) >= 150})[:60]
    rng = np.random.default_rng(2)
    variants = []
    for t in zh:
        chars = list(t)
        i = int(rng.integers(0, len(chars)))
        chars[i] = "变" if chars[i] != "变" else "化"  # one character changed: >= 0.9 Jaccard for >= 150 chars
        variants.append("".join(chars))
    texts = zh + variants
    res = dedup(texts)
    n = len(zh)
    assert res.cluster[n:].tolist() == list(range(n))  # every variant found, pointing at its original
    assert res.keep[:n].all()  # distinct news paragraphs never merged
    # Case, accents and punctuation differences do not matter; different accents do.
    latin = ["Ça coûte CHER, très cher à Zürich — vraiment très cher aujourd'hui.",
             "ça coûte cher très cher à zürich vraiment très cher aujourd hui",
             "ca coute cher tres cher a zurich vraiment tres cher aujourd hui"]
    assert dedup(latin).cluster.tolist() == [0, 0, 2]


def test_templated_corpus_work_stays_bounded():
    # 3000 documents sharing a long common part (Jaccard ~0.5 to each other): the same band buckets fill
    # up, but a bucket keeps at most 32 representatives, so comparisons per document stay bounded.
    rng = np.random.default_rng(4)
    common = " ".join(f"c{i}" for i in range(60))
    texts = [common + " " + " ".join(f"u{int(x)}" for x in rng.integers(0, 10**6, size=25)) for _ in range(3000)]
    res = dedup(texts)
    assert res.stats["kept"] == len(texts)
    assert 0 < res.stats["candidate_pairs"] <= len(texts) * 14 * 32



# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
def test_bad_input_and_parameters():
    with pytest.raises(TypeError, match=r"texts\[2\] must be str, got int"):
        dedup(["a", "b", 3])
    with pytest.raises(TypeError, match=r"texts\[0\] must be str, got bytes"):
        dedup([b"bytes"])
    with pytest.raises(TypeError, match="single str"):
        dedup("not a list")
    index = MinHashIndex()
    index.add(["one two three"])
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        index.add(["fine", None])
    assert len(index) == 1  # nothing of the bad batch was added
    bad = [
        (dict(threshold=0), "threshold"), (dict(threshold=1.5), "threshold"), (dict(threshold="x"), "threshold"),
        (dict(ngram=0), "ngram"), (dict(ngram=2.5), "ngram"), (dict(num_perm=0), "num_perm"),
        (dict(num_perm=10**6), "num_perm"), (dict(bands=0), "bands"), (dict(bands=200), "bands"),
        (dict(bands=15), "divisible"), (dict(num_threads=-1), "num_threads"), (dict(seed=-1), "seed"),
        (dict(seed=2**64), "seed"), (dict(method="fuzzy"), "unknown method"),
    ]
    for kwargs, message in bad:
        with pytest.raises(ValueError, match=message):
            dedup(["a b c"], **kwargs)
    # The native core validates too (it must never crash when called directly).
    with pytest.raises(ValueError, match="bands must divide num_perm"):
        _C.MinHashIndexCore(0.8, 5, 112, 15, 0)
    with pytest.raises(ValueError, match="threshold"):
        _C.MinHashIndexCore(float("nan"), 5, 112, 14, 0)
    with pytest.raises(ValueError, match="isa"):
        _C.minhash_signatures(["a"], isa="sse9")
    with pytest.raises(TypeError, match="texts"):
        _C.minhash_signatures(12)
    assert _C.minhash_signatures([]).shape == (0, 112)
    assert dedup([]).keep.shape == (0,)
    assert _C.minhash_words("a\ud800b") == ["a", "b"]  # lone surrogates separate words, no error


def test_minhash_defaults_and_limits_come_from_one_place():
    """MinHashConfig holds the Python defaults, the C++ bindings' defaults equal them, and the limits Python
    checks against are the C++ ones (_C.MINHASH_LIMITS), not retyped copies."""
    import dataclasses

    from bigmodel_fast.data.dedup import UNION_FIND_BUCKET_MEMBERS
    from bigmodel_fast.data.minhash_config import MINHASH, MinHashConfig, minhash_limits

    assert dict(_C.MINHASH_DEFAULTS) == dataclasses.asdict(MINHASH)
    assert UNION_FIND_BUCKET_MEMBERS == MINHASH.max_members == _C.MINHASH_DEFAULTS["max_members"]
    assert MINHASH.rows == MINHASH.num_perm // MINHASH.bands
    limits = minhash_limits()
    assert limits == dict(_C.MINHASH_LIMITS)
    assert set(limits) == {"max_num_perm", "max_ngram", "max_members", "max_text_chars"}
    top = limits["max_num_perm"]
    assert MinHashConfig(num_perm=top, bands=1).checked().num_perm == top
    with pytest.raises(ValueError, match=f"num_perm must be an int in \\[1, {top}\\]"):
        MinHashConfig(num_perm=top + 1, bands=1).checked()
    with pytest.raises(ValueError, match=f"ngram must be an int in \\[1, {limits['max_ngram']}\\]"):
        dedup(["a b"], ngram=limits["max_ngram"] + 1)
    with pytest.raises(ValueError, match="max_members"):
        MinHashConfig(max_members=limits["max_members"] + 1).checked()
    assert minhash_signatures(["a b c"], num_perm=top).shape == (1, top)
    # dedup reports the checked parameters
    stats = dedup(["a b c d e f", "a b c d e f"]).stats
    assert {k: stats[k] for k in ("threshold", "ngram", "num_perm", "bands", "seed")} == {
        k: getattr(MINHASH, k) for k in ("threshold", "ngram", "num_perm", "bands", "seed")}


# ------------------------------------------------------------------------------------------------
# Boilerplate lines
# ------------------------------------------------------------------------------------------------
def test_remove_boilerplate_lines():
    footer = "Copyright (c) Example Corp. All rights reserved."
    nav = "Home | About | Contact"
    docs = []
    for i in range(30):
        body = f"Paragraph {i} says something unique about topic {i}.\nIt has a second line {i * 7}.\n"
        if i % 2 == 0:
            body = nav + "\n" + body
        docs.append(body + "\n" + ("  " + footer.replace(" ", "   ") + "  \n" if i < 25 else ""))
    docs.append("A lone document.\n")
    docs.append(nav)  # a document that is only boilerplate
    out, stats = remove_boilerplate_lines(docs, min_docs=10)
    assert len(out) == len(docs)
    for before, after in zip(docs, out):
        assert footer not in " ".join(after.split()) and nav not in after
        if nav not in before and footer not in " ".join(before.split()):
            assert after is before  # untouched documents are returned as is
    assert out[0] == "Paragraph 0 says something unique about topic 0.\nIt has a second line 0.\n\n"
    assert out[-1] == "" and out[-2] == "A lone document.\n"
    assert stats["boilerplate_keys"] == 2
    assert stats["removed_lines"] == 25 + 16 and stats["documents_emptied"] == 1
    assert stats["documents"] == len(docs) and stats["documents_changed"] == 28
    # Below min_docs nothing is removed; blank lines never count.
    out2, stats2 = remove_boilerplate_lines(docs, min_docs=40)
    assert stats2["removed_lines"] == 0 and all(a is b for a, b in zip(out2, docs))
    _, stats3 = remove_boilerplate_lines(docs, min_docs=10, min_chars=30)
    assert stats3["boilerplate_keys"] == 1  # the navigation line is too short to count
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        remove_boilerplate_lines(["a", 1])
    with pytest.raises(ValueError, match="min_docs"):
        remove_boilerplate_lines(["a"], min_docs=1)
    assert remove_boilerplate_lines([]) == ([], {"documents": 0, "lines": 0, "removed_lines": 0, "removed_chars": 0,
                                                 "boilerplate_keys": 0, "documents_changed": 0,
                                                 "documents_emptied": 0})
