"""Tests for the native XXH64 bindings ``bigmodel_fast._C.xxh64`` / ``xxh64_batch``."""
from __future__ import annotations

import threading

import numpy as np
import pytest

_C = pytest.importorskip("bigmodel_fast._C", reason="native extension not built (run `pip install -e .`)")

PRIME32 = 2654435761


def sanity_buffer(n: int) -> bytes:
    """Deterministic pseudo-random bytes: byte i is the top byte of a repeatedly squared 32-bit state."""
    out = bytearray()
    state = PRIME32
    for _ in range(n):
        out.append((state >> 24) & 0xFF)
        state = (state * state) & 0xFFFFFFFF
    return bytes(out)


# Reference values computed once with the reference implementation (python package `xxhash` 4.1.0,
# bundling libxxhash 0.8.4: `xxhash.xxh64_intdigest(sanity_buffer(n), seed=s)`); `xxhash` is NOT a
# dependency of this project. The lengths cover every code path: empty, 1/3-byte tails, 4-byte tail,
# 8-byte tail, mixed tails, one byte short of a stripe, exactly one stripe, stripe + 1, several stripes.
BUFFER_VECTORS = [
    (0, 0, 0xEF46DB3751D8E999),
    (0, PRIME32, 0xAC75FDA2929B17EF),
    (1, 0, 0x4FCE394CC88952D8),
    (1, PRIME32, 0x739840CB819FA723),
    (3, 0, 0x63E19DE8A52309F9),
    (3, PRIME32, 0x16FFBA65774BAE68),
    (4, 0, 0x9256E58AA397AEF1),
    (4, PRIME32, 0x09D5FFDFB928AB4B),
    (8, 0, 0xF74CB1451B32B8CF),
    (8, PRIME32, 0x9C44B77FBCC302C5),
    (14, 0, 0xCFFA8DB881BC3A3D),
    (14, PRIME32, 0x5B9611585EFCC9CB),
    (31, 0, 0xAD09D9A6941DD847),
    (31, PRIME32, 0x9C90D9D9C2E3D340),
    (32, 0, 0xAF5753D39159EDEE),
    (32, PRIME32, 0xDCAB9233B8CA7B0F),
    (33, 0, 0x6711CBDD8543BAA8),
    (33, PRIME32, 0x66E9CECF2F1DE71C),
    (100, 0, 0x7DA3F79A7D2667C2),
    (100, PRIME32, 0x69D2695B86943C22),
    (222, 0, 0x9DD507880DEBB03D),
    (222, PRIME32, 0xDC515172B8EE0600),
    (2367, 0, 0x2E717C2BB15C0A8A),
    (2367, PRIME32, 0xF7B7F152E920C87C),
]

# Published string vectors (xxHash / python-xxhash documentation), plus the max seed from `xxhash` 4.1.0.
STRING_VECTORS = [
    (b"", 0, 0xEF46DB3751D8E999),
    (b"a", 0, 0xD24EC4F1A98C6E5B),
    (b"abc", 0, 0x44BC2CF5AD770999),
    (b"Nobody inspects the spammish repetition", 0, 0xFBCEA83C8A378BF1),
    (b"", 2**64 - 1, 0x298F4C84B24F5380),
    (b"abc", 2**64 - 1, 0x28306E589CC02176),
]

UNICODE_TEXT = "héllo wörld ✓ 日本語"
UNICODE_XXH64 = 0xCC796F967E9163DC  # xxhash 4.1.0 over the UTF-8 bytes, seed 0


@pytest.mark.parametrize(("length", "seed", "expected"), BUFFER_VECTORS)
def test_reference_vectors_sanity_buffer(length, seed, expected):
    assert _C.xxh64(sanity_buffer(length), seed) == expected


@pytest.mark.parametrize(("data", "seed", "expected"), STRING_VECTORS)
def test_reference_vectors_strings(data, seed, expected):
    assert _C.xxh64(data, seed=seed) == expected


def test_str_is_hashed_as_utf8():
    assert _C.xxh64(UNICODE_TEXT) == UNICODE_XXH64
    assert _C.xxh64(UNICODE_TEXT) == _C.xxh64(UNICODE_TEXT.encode("utf-8"))


def test_buffer_objects_match_bytes():
    data = sanity_buffer(100)
    assert _C.xxh64(bytearray(data)) == _C.xxh64(data)
    assert _C.xxh64(memoryview(data)) == _C.xxh64(data)
    assert _C.xxh64(np.frombuffer(data, dtype=np.uint8)) == _C.xxh64(data)


def test_seed_changes_hash():
    assert _C.xxh64(b"abc", 1) != _C.xxh64(b"abc", 0)


def test_batch_matches_one_by_one_and_reference():
    texts = [sanity_buffer(n) for n, seed, _ in BUFFER_VECTORS if seed == PRIME32]
    out = _C.xxh64_batch(texts, seed=PRIME32)
    assert out.dtype == np.uint64 and out.shape == (len(texts),)
    expected = [e for _, s, e in BUFFER_VECTORS if s == PRIME32]
    assert [int(h) for h in out] == expected
    mixed = ["", "a", UNICODE_TEXT, b"abc", "x" * 1000]
    assert [int(h) for h in _C.xxh64_batch(mixed, 7)] == [_C.xxh64(t, 7) for t in mixed]


def test_batch_str_and_bytes_agree():
    texts = [f"doc {i} — ünïcode {i * i}" for i in range(500)]
    as_str = _C.xxh64_batch(texts)
    as_bytes = _C.xxh64_batch([t.encode("utf-8") for t in texts])
    np.testing.assert_array_equal(as_str, as_bytes)


def test_batch_identical_for_any_thread_count():
    rng = np.random.default_rng(0)
    lengths = rng.integers(0, 3000, size=5000)  # ~7.5 MB so the threaded path is really taken
    texts = [sanity_buffer(97)[: n % 97] * (1 + n // 97) for n in lengths]
    base = _C.xxh64_batch(texts, num_threads=1)
    for threads in (0, 2, 3, 8, 64, 10_000):
        np.testing.assert_array_equal(_C.xxh64_batch(texts, num_threads=threads), base)
    # Spot check against the scalar path.
    for i in (0, 1, 2500, 4999):
        assert int(base[i]) == _C.xxh64(texts[i])


def random_text(rng: np.random.Generator, max_code_point: int) -> str:
    cps = rng.integers(0, max_code_point, size=int(rng.integers(0, 80)))
    cps[(cps >= 0xD800) & (cps <= 0xDFFF)] = 0x41  # surrogates are not valid text
    return "".join(map(chr, cps.tolist()))


@pytest.mark.parametrize("max_code_point", [0x80, 0x100, 0x800, 0x10000, 0x110000])
def test_batch_utf8_encoding_of_every_str_kind(max_code_point):
    # Latin-1 (1-byte), BMP (2-byte) and astral (4-byte) CPython str kinds, plus 2/3/4-byte UTF-8 sequences.
    rng = np.random.default_rng(max_code_point)
    texts = [random_text(rng, max_code_point) for _ in range(300)]
    texts += ["\x7f\x80\xff", "\u07ff\u0800\uffff", "\U0010ffff"]  # encoding boundaries
    expected = [_C.xxh64(t.encode("utf-8"), 3) for t in texts]  # Python's own UTF-8 encoder is the oracle
    assert [int(h) for h in _C.xxh64_batch(texts, seed=3, num_threads=2)] == expected
    assert [_C.xxh64(t, 3) for t in texts] == expected


def test_batch_accepts_tuple_and_generator_and_empty():
    texts = ("a", "b", "c")
    np.testing.assert_array_equal(_C.xxh64_batch(texts), _C.xxh64_batch(list(texts)))
    np.testing.assert_array_equal(_C.xxh64_batch(t for t in texts), _C.xxh64_batch(list(texts)))
    empty = _C.xxh64_batch([])
    assert empty.dtype == np.uint64 and empty.shape == (0,)


def test_batch_from_concurrent_python_threads():
    texts = [f"text {i}" * 50 for i in range(2000)]
    expected = _C.xxh64_batch(texts, num_threads=1)
    results: list[np.ndarray] = []
    workers = [threading.Thread(target=lambda: results.append(_C.xxh64_batch(texts, num_threads=2))) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_batch_bad_item_type_names_index():
    with pytest.raises(TypeError, match=r"texts\[2\].*int"):
        _C.xxh64_batch(["a", b"b", 3, "d"])
    with pytest.raises(TypeError, match=r"texts\[0\].*NoneType"):
        _C.xxh64_batch([None])


def test_batch_rejects_single_string_and_non_sequences():
    with pytest.raises(TypeError, match="single str"):
        _C.xxh64_batch("abc")
    with pytest.raises(TypeError, match="sequence"):
        _C.xxh64_batch(5)


def test_batch_unencodable_str_names_index():
    with pytest.raises(ValueError, match=r"texts\[1\].*UTF-8 \(lone surrogate at character 4\)"):
        _C.xxh64_batch(["ok", "bad \ud800 surrogate"])
    # UCS-4 string with a surrogate; the smallest bad index is reported whatever the threads.
    texts = ["fine"] * 1000 + ["😀\udfff"] + ["x\ud800"] * 10
    with pytest.raises(ValueError, match=r"texts\[1000\].*character 1\)"):
        _C.xxh64_batch(texts, num_threads=4)


def test_negative_threads_and_bad_seeds_raise():
    with pytest.raises(ValueError, match="num_threads"):
        _C.xxh64_batch(["a"], num_threads=-1)
    with pytest.raises(ValueError, match="seed"):
        _C.xxh64(b"a", -1)
    with pytest.raises(ValueError, match="seed"):
        _C.xxh64_batch(["a"], seed=2**64)
    with pytest.raises(TypeError, match="seed"):
        _C.xxh64(b"a", seed="0")


def test_scalar_bad_type_raises():
    with pytest.raises(TypeError, match="str or bytes"):
        _C.xxh64(12)
    with pytest.raises(ValueError, match="UTF-8"):
        _C.xxh64("\udfff")
