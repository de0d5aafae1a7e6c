"""Benchmark: native ``_C.xxh64_batch`` vs per-item Python hashing over the same strings.

Run: ``python -m pytest benchmarks/data/bench_hash.py -s`` (add ``--benchmark-json out.json`` to keep numbers).
Baselines: ``hashlib.blake2b(text.encode(), digest_size=8)`` and the builtin ``hash`` in a list
comprehension. str objects cache their hash and their UTF-8 form, so every round hashes fresh copies
(made in the untimed setup) to keep all contenders honest. The speed-up ratios are printed and stored in
``extra_info``; nothing here asserts on time.
"""
from __future__ import annotations

import hashlib
import time

import numpy as np
import pytest

_C = pytest.importorskip("bigmodel_fast._C", reason="native extension not built (run `pip install -e .`)")

NUM_TEXTS = 20_000
ROUNDS = 5


def make_texts(n: int = NUM_TEXTS, seed: int = 0) -> list[str]:
    """n documents of 4..400 words (~25 MB of UTF-8): 2/3 plain ASCII, 1/6 English with a curly quote
    (a non-ASCII str that is mostly ASCII, as typical web text), 1/6 mixed CJK/emoji-heavy."""
    rng = np.random.default_rng(seed)
    ascii_words = ["data", "model", "token", "shard", "attention", "gradient", "the", "of", "and", "a"]
    mixed_words = ["naïve", "Straße", "模型", "数据", "😀", "token", "the"]
    texts = []
    for i in range(n):
        k = int(rng.integers(4, 400))
        if i % 6 == 5:
            texts.append(f"{i} " + " ".join(mixed_words[j] for j in rng.integers(0, len(mixed_words), size=k)))
        else:
            quote = "it’s " if i % 6 == 4 else ""
            texts.append(f"{i} {quote}" + " ".join(ascii_words[j] for j in rng.integers(0, len(ascii_words), size=k)))
    return texts


TEXTS = make_texts()


def fresh_copies() -> tuple[tuple[list[str]], dict]:
    """Untimed setup for benchmark.pedantic: new str objects with no cached hash / UTF-8 buffer."""
    return ([(t + " ")[:-1] for t in TEXTS],), {}


def blake2b_all(texts: list[str]) -> list[int]:
    return [int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little") for t in texts]


def builtin_all(texts: list[str]) -> list[int]:
    return [hash(t) for t in texts]


def best_time(fn) -> float:
    """Best of 3 wall times of fn over fresh copies."""
    times = []
    for _ in range(3):
        (texts,), _ = fresh_copies()
        t0 = time.perf_counter()
        fn(texts)
        times.append(time.perf_counter() - t0)
    return min(times)


@pytest.mark.parametrize("num_threads", [1, 0])
def test_xxh64_batch(benchmark, num_threads):
    benchmark.group = "hash 20k texts"
    out = benchmark.pedantic(lambda texts: _C.xxh64_batch(texts, num_threads=num_threads), setup=fresh_copies,
                             rounds=ROUNDS)
    assert out.shape == (NUM_TEXTS,)
    ours = benchmark.stats.stats.min
    for name, fn in (("blake2b", blake2b_all), ("builtin_hash", builtin_all)):
        ratio = best_time(fn) / ours
        benchmark.extra_info[f"speedup_vs_{name}"] = round(ratio, 2)
        print(f"\nxxh64_batch(num_threads={num_threads}) vs per-item {name}: speed-up {ratio:.2f}x (>1 = ours faster)")


def test_blake2b_per_item(benchmark):
    benchmark.group = "hash 20k texts"
    out = benchmark.pedantic(blake2b_all, setup=fresh_copies, rounds=ROUNDS)
    assert len(out) == NUM_TEXTS


def test_builtin_hash_per_item(benchmark):
    benchmark.group = "hash 20k texts"
    out = benchmark.pedantic(builtin_all, setup=fresh_copies, rounds=ROUNDS)
    assert len(out) == NUM_TEXTS
