"""Helpers shared by the MinHash tests (test_minhash*.py): a generated corpus with planted near-duplicates
and the exact shingle Jaccard of its pairs. A plain module, not a test file; the test files import it
relatively (``tests`` is a package)."""
from __future__ import annotations

import functools
import itertools

import numpy as np


def py_shingles(text: str, n: int = 5) -> set[str]:
    """Shingle set of generated lowercase ASCII text (no punctuation): plain split is the normalisation."""
    w = text.split()
    if len(w) < n:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# ------------------------------------------------------------------------------------------------
# Generated corpus with planted near-duplicates
# ------------------------------------------------------------------------------------------------
EDIT_RATES = (0.0, 0.002, 0.005, 0.01, 0.02, 0.05, 0.2)


def make_corpus(seed: int = 0, n_base: int = 300, n_planted: int = 300):
    """Random-word documents plus near-duplicates of some of them (word substitutions at known rates),
    shuffled. Returns (texts, family) with family[i] = index of the base document text i derives from."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    vocab = ["".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(4000)]
    base = [list(rng.choice(vocab, size=int(rng.integers(40, 220)))) for _ in range(n_base)]
    docs, family = [" ".join(w) for w in base], list(range(n_base))
    for k in range(n_planted):
        src = int(rng.integers(0, n_base))
        rate = EDIT_RATES[k % len(EDIT_RATES)]
        words = list(base[src])
        for i in np.flatnonzero(rng.random(len(words)) < rate):
            words[i] = vocab[int(rng.integers(0, len(vocab)))]
        docs.append(" ".join(words))
        family.append(src)
    order = rng.permutation(len(docs))
    return [docs[i] for i in order], np.array(family)[order]


@functools.lru_cache(maxsize=None)
def planted_corpus():
    """(texts, family, true_j) of make_corpus(), computed once per session; true_j maps each pair of
    documents sharing a shingle to its exact Jaccard (all other pairs have Jaccard 0)."""
    texts, family = make_corpus()
    shingles = [py_shingles(t) for t in texts]
    # Brute force: exact Jaccard of every pair that shares a shingle (all other pairs have Jaccard 0).
    post: dict[str, list[int]] = {}
    for i, s in enumerate(shingles):
        for x in s:
            post.setdefault(x, []).append(i)
    pairs = set()
    for ids in post.values():
        pairs.update(itertools.combinations(ids, 2))
    true_j = {(i, j): jaccard(shingles[i], shingles[j]) for i, j in pairs}
    return texts, family, true_j
