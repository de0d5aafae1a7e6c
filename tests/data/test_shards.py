"""Tests for bigmodel_fast.data.shards (token shard writer/reader and validation)."""
from __future__ import annotations

import os
import pickle
import signal
import struct
from pathlib import Path

import numpy as np
import pytest

from bigmodel_fast.data.loader import CausalLoader, MLMLoader, SpecialIds
from bigmodel_fast.data.shards import (
    BIN_MAGIC,
    HEADER_SIZE,
    IDX_MAGIC,
    Shard,
    ShardFormatError,
    ShardWriter,
    check_vocab,
    dtype_for_vocab,
    open_shards,
    resolve_shard_paths,
    shard_name,
    split_shard_paths,
    write_shard,
)

from .shard_helpers import NON_REGULAR, make_non_regular, set_header_vocab, set_token


def make_docs(rng: np.random.Generator, n: int, vocab: int, max_len: int = 50) -> list[np.ndarray]:
    return [rng.integers(0, vocab, size=int(rng.integers(0, max_len))) for _ in range(n)]


@pytest.fixture
def small_shard(tmp_path):
    docs = [[1, 2, 3], [], [4, 5], [6]]
    info = write_shard(tmp_path / "s", docs, vocab_size=10)
    return tmp_path / "s", info, docs


def patch_bytes(path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("vocab", "dtype"), [(1000, np.uint16), (65536, np.uint16), (65537, np.uint32), (200_000, np.uint32)]
)
def test_round_trip(tmp_path, vocab, dtype):
    rng = np.random.default_rng(vocab)
    docs = make_docs(rng, 40, vocab)
    docs[3] = np.array([vocab - 1, 0], dtype=np.int64)  # extreme ids survive the narrow dtype
    info = write_shard(tmp_path / "rt", docs, vocab_size=vocab)
    lengths = [len(d) for d in docs]
    assert (info.num_docs, info.num_tokens, info.vocab_size) == (40, sum(lengths), vocab)
    assert info.dtype == np.dtype(dtype).name
    assert info.bin_path.stat().st_size == HEADER_SIZE + sum(lengths) * np.dtype(dtype).itemsize

    for arg in (tmp_path / "rt", info.bin_path, str(info.idx_path)):
        shard = Shard(arg, validate_ids=True)
        assert shard.path == info.bin_path
        assert shard.tokens.dtype == dtype and shard.offsets.dtype == np.int64
        assert len(shard) == 40 and shard.num_tokens == sum(lengths) and shard.vocab_size == vocab
        assert shard.doc_lengths().tolist() == lengths
        for i, d in enumerate(docs):
            np.testing.assert_array_equal(shard[i], np.asarray(d))
    np.testing.assert_array_equal(shard[-1], docs[-1])
    with pytest.raises(IndexError):
        shard[40]


def test_header_layout_on_disk(small_shard):
    prefix, info, _ = small_shard
    raw = info.bin_path.read_bytes()
    magic, version, code, vocab, ntok, ndocs = struct.unpack_from("<8sIIQQQ", raw)
    assert (magic, version, code, vocab, ntok, ndocs) == (BIN_MAGIC, 1, 1, 10, 6, 4)
    assert raw[40:64] == b"\x00" * 24
    assert np.frombuffer(raw[64:], dtype="<u2").tolist() == [1, 2, 3, 4, 5, 6]
    idx = info.idx_path.read_bytes()
    assert idx[:8] == IDX_MAGIC
    assert np.frombuffer(idx[64:], dtype="<i8").tolist() == [0, 3, 3, 5, 6]


def test_empty_document_and_zero_documents(tmp_path, small_shard):
    prefix, _, _ = small_shard
    shard = Shard(prefix)
    assert shard[1].shape == (0,) and shard[1].dtype == np.uint16
    info = write_shard(tmp_path / "none", [], vocab_size=100)
    assert (info.num_docs, info.num_tokens) == (0, 0)
    empty = Shard(tmp_path / "none", validate_ids=True)
    assert len(empty) == 0 and empty.tokens.shape == (0,) and empty.offsets.tolist() == [0]
    only_empty = Shard(write_shard(tmp_path / "e", [[], []], vocab_size=5).prefix)
    assert len(only_empty) == 2 and only_empty.doc_lengths().tolist() == [0, 0]


def test_dtype_choice():
    assert dtype_for_vocab(1) == np.uint16
    assert dtype_for_vocab(65536) == np.uint16
    assert dtype_for_vocab(65537) == np.uint32
    with pytest.raises(ValueError, match="vocab_size"):
        dtype_for_vocab(0)
    with pytest.raises(ValueError, match="vocab_size"):
        dtype_for_vocab(2**32 + 1)


def test_writer_rejects_bad_docs_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"document 1: token id 10 out of range"):
        write_shard(tmp_path / "bad", [[1], [10]], vocab_size=10)
    with pytest.raises(ValueError, match=r"document 0: token id -1"):
        write_shard(tmp_path / "bad", [[-1]], vocab_size=10)
    with pytest.raises(ValueError, match="integers"):
        write_shard(tmp_path / "bad", [[1.5]], vocab_size=10)
    with pytest.raises(ValueError, match="1-D"):
        write_shard(tmp_path / "bad", [[[1, 2]]], vocab_size=10)
    assert list(tmp_path.iterdir()) == []  # no final files, no temp files


def test_shard_writer_rollover(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(0, 300, size=n) for n in (4, 3, 5, 1, 2, 6, 0, 3)]
    with ShardWriter(tmp_path / "out", vocab_size=300, prefix="train", max_tokens=8) as w:
        for d in docs:
            w.add(d)
    infos = w.close()  # idempotent after __exit__
    assert w.paths == [i.bin_path for i in infos]
    # Shards close once they reach 8 tokens: [4,3,5]=12 | [1,2,6]=9 | [0,3]=3
    assert [i.num_docs for i in infos] == [3, 3, 2]
    assert [i.num_tokens for i in infos] == [12, 9, 3]
    assert [i.bin_path.name for i in infos] == ["train_00000.bin", "train_00001.bin", "train_00002.bin"]
    shards = open_shards(tmp_path / "out")
    assert [s.path for s in shards] == [i.bin_path for i in infos]
    got = [s[j] for s in shards for j in range(len(s))]
    assert len(got) == len(docs)
    for a, b in zip(got, docs):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="closed"):
        w.add([1])


def test_shard_writer_exception_discards_partial(tmp_path):
    with pytest.raises(RuntimeError):
        with ShardWriter(tmp_path, vocab_size=50, max_tokens=4) as w:
            w.add([1, 2, 3, 4])  # completes shard 0
            w.add([5])
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard_00000.bin", "shard_00000.idx"]
    assert ShardWriter(tmp_path / "nothing", vocab_size=5).close() == []


def test_pickle_reopens(small_shard):
    prefix, _, docs = small_shard
    clone = pickle.loads(pickle.dumps(Shard(prefix)))
    assert clone.num_docs == 4
    np.testing.assert_array_equal(clone[2], docs[2])


# ----------------------------------------------------------------------------------- corrupt files


def assert_format_error(prefix, match, **kw):
    with pytest.raises(ShardFormatError, match=match) as ei:
        Shard(prefix, **kw)
    msg = str(ei.value)
    assert "HINT:" in msg and "expected" in msg
    return ei.value


def test_truncated_bin(small_shard):
    prefix, info, _ = small_shard
    info.bin_path.write_bytes(info.bin_path.read_bytes()[:-2])
    err = assert_format_error(prefix, r"truncated.*expected 76 bytes")
    assert err.path == info.bin_path and str(info.bin_path) in str(err)
    info.bin_path.write_bytes(info.bin_path.read_bytes()[:10])
    assert_format_error(prefix, "too short for the header")


def test_truncated_idx(small_shard):
    prefix, info, _ = small_shard
    info.idx_path.write_bytes(info.idx_path.read_bytes()[:-8])
    err = assert_format_error(prefix, r"truncated.*5 int64 offsets")
    assert err.path == info.idx_path


def test_trailing_bytes(small_shard):
    prefix, info, _ = small_shard
    info.bin_path.write_bytes(info.bin_path.read_bytes() + b"\x00\x00")
    assert_format_error(prefix, "trailing bytes")


def test_wrong_magic_and_swapped_files(small_shard):
    prefix, info, _ = small_shard
    patch_bytes(info.bin_path, 0, b"GARBAGE!")
    assert_format_error(prefix, "wrong magic b'GARBAGE!'")
    patch_bytes(info.bin_path, 0, IDX_MAGIC)
    assert_format_error(prefix, "swapped")


def test_wrong_version(small_shard):
    prefix, info, _ = small_shard
    patch_bytes(info.idx_path, 8, struct.pack("<I", 7))
    err = assert_format_error(prefix, "unsupported format version 7; expected version 1")
    assert err.path == info.idx_path and "bmf prepare" in err.hint


def test_unknown_dtype_and_header_mismatch(small_shard):
    prefix, info, _ = small_shard
    patch_bytes(info.bin_path, 12, struct.pack("<I", 9))
    assert_format_error(prefix, "unknown dtype code 9")
    patch_bytes(info.bin_path, 12, struct.pack("<I", 1))
    patch_bytes(info.idx_path, 16, struct.pack("<Q", 11))
    assert_format_error(prefix, "vocab_size is 11 but s.bin says 10")


def test_non_monotone_offsets(small_shard):
    prefix, info, _ = small_shard
    patch_bytes(info.idx_path, HEADER_SIZE + 8 * 2, struct.pack("<q", 1))  # [0, 3, 1, 5, 6]
    assert_format_error(prefix, r"not monotone: offsets\[1\] = 3 > offsets\[2\] = 1")


def test_offsets_beyond_num_tokens(small_shard):
    prefix, info, _ = small_shard
    patch_bytes(info.idx_path, HEADER_SIZE + 8 * 3, struct.pack("<q", 99))
    assert_format_error(prefix, r"offsets\[3\] = 99 is out of range")
    patch_bytes(info.idx_path, HEADER_SIZE + 8 * 3, struct.pack("<q", 5))
    patch_bytes(info.idx_path, HEADER_SIZE + 8 * 4, struct.pack("<q", 5))  # last != num_tokens
    assert_format_error(prefix, r"offsets\[-1\] is 5")
    patch_bytes(info.idx_path, HEADER_SIZE, struct.pack("<q", 1))
    assert_format_error(prefix, r"offsets\[0\] is 1")


def test_ids_out_of_vocab_only_with_validate_ids(small_shard):
    prefix, info, _ = small_shard
    patch_bytes(info.bin_path, HEADER_SIZE + 2 * 4, struct.pack("<H", 10))  # token 4 (doc 2) := 10
    assert Shard(prefix).tokens[4] == 10  # not scanned by default
    assert_format_error(prefix, r"token id 10 at token offset 4 \(document 2\).*ids < vocab_size \(10\)",
                        validate_ids=True)


def test_missing_files_and_empty_dir(tmp_path, small_shard):
    prefix, info, _ = small_shard
    info.idx_path.unlink()
    assert_format_error(prefix, "file not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ShardFormatError, match="no \\*.bin shard files"):
        open_shards(empty)


def _alarm(signum, frame):
    raise TimeoutError("opening the shard blocked")


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not hasattr(signal, "SIGALRM"), reason="needs POSIX FIFOs, alarm")
@pytest.mark.parametrize("which", [".bin", ".idx"])
@pytest.mark.parametrize("kind", sorted(NON_REGULAR))
def test_non_regular_shard_files_are_refused_without_blocking(small_shard, which, kind):
    """A FIFO named like a shard file used to be reported as "file not found" (and blocks a plain open)."""
    prefix, _, _ = small_shard
    path = prefix.with_suffix(which)
    keep = make_non_regular(path, kind)
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)  # a regression fails with TimeoutError instead of hanging the suite
    try:
        with pytest.raises(ShardFormatError, match=NON_REGULAR[kind]) as ei:
            open_shards([prefix])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if keep is not None:
            keep.close()
    assert ei.value.path == path and "\n" not in str(ei.value)


def test_header_vocab_larger_than_the_model_vocabulary_is_refused(small_shard):
    prefix, _, _ = small_shard
    shard = Shard(prefix)
    check_vocab(shard, 10)  # equal: fine
    check_vocab(shard, 12)  # a smaller shard vocabulary is fine too
    with pytest.raises(ShardFormatError, match=r"header vocab_size 10 is larger than the model's vocabulary \(8\)"):
        check_vocab(shard, 8)


def _late_bad_id_shard(tmp_path, vocab=50, n_docs=40):
    """A shard whose ids are all fine except one near the end (far beyond the first batch)."""
    rng = np.random.default_rng(3)
    docs = [rng.integers(7, vocab, size=20) for _ in range(n_docs)]
    write_shard(tmp_path / "late", docs, vocab)
    return tmp_path / "late", n_docs * 20 - 3


@pytest.mark.parametrize("loader", ["causal", "mlm"])
def test_reference_loaders_check_every_id_when_they_open_the_shards(tmp_path, loader):
    """The Python loaders used to index the model with any id; now a late bad id fails at once, naming it."""
    ids = SpecialIds.fixed(50)

    def make(shards, **kw):
        if loader == "mlm":
            return MLMLoader(shards, ids, seq_len=8, batch_size=2, **kw)
        return CausalLoader(shards, seq_len=8, batch_size=2, **kw)

    prefix, pos = _late_bad_id_shard(tmp_path)
    make(open_shards([prefix]), vocab_size=50).batch(0)
    set_token(prefix, pos, 50)  # = the header's vocab_size
    with pytest.raises(ShardFormatError,
                       match=rf"late.bin: token id 50 at token offset {pos} .*ids < vocab_size \(50\)"):
        make(open_shards([prefix]))  # checked against the header even without the model's vocabulary
    set_header_vocab(prefix, 60)  # the header now admits the id, the model (50) does not
    with pytest.raises(ShardFormatError, match=r"header vocab_size 60 is larger than the model's vocabulary \(50\)"):
        make(open_shards([prefix]), vocab_size=50)


def test_reference_loaders_check_plain_arrays_against_the_model_vocabulary():
    class Plain:
        tokens = np.array([7, 8, 9, 10, 11, 12, 13, 99, 14], dtype=np.uint16)
        offsets = np.array([0, 4, 9])

    CausalLoader([Plain()], seq_len=4, batch_size=1)  # no vocabulary given: nothing to check against
    with pytest.raises(ShardFormatError, match=r"shard 0: token id 99 at token offset 7 \(document 1\)"):
        CausalLoader([Plain()], seq_len=4, batch_size=1, vocab_size=50)


def test_written_shards_are_fsynced_before_and_after_the_renames(tmp_path, monkeypatch):
    import bigmodel_fast.data.shards as shards_mod

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", Path(b).name)), real_replace(a, b))[1])
    monkeypatch.setattr(shards_mod, "fsync_dir", lambda d: events.append(("fsync_dir", Path(d))))
    write_shard(tmp_path / "s", [[1, 2, 3]], 10)
    assert events == ["fsync", "fsync", ("replace", "s.bin"), ("replace", "s.idx"), ("fsync_dir", tmp_path)]


def test_one_shard_path_resolver_for_writers_readers_and_loaders(tmp_path):
    """ShardWriter names shards with shard_name; split_shard_paths lists one prefix's shards in write order;
    resolve_shard_paths turns directories, prefixes, .bin/.idx paths and Shard objects into .bin paths."""
    assert shard_name("train", 0) == "train_00000" and shard_name("valid", 12) == "valid_00012"
    out = tmp_path / "out"
    for prefix in ("train", "valid"):
        with ShardWriter(out, vocab_size=300, prefix=prefix, max_tokens=4) as w:
            for i in range(3):
                w.add([i, i + 1, i + 2, i + 3])
    (out / "train_extra.txt").write_text("not a shard")
    train = split_shard_paths(out, "train")
    assert [p.name for p in train] == [shard_name("train", i) + ".bin" for i in range(3)]
    assert split_shard_paths(out, "test") == [] and split_shard_paths(out, "tra") == []
    every = sorted(str(p) for p in out.glob("*.bin"))
    assert resolve_shard_paths(out) == every
    first = out / shard_name("train", 0)
    assert resolve_shard_paths(first) == [str(first) + ".bin"]
    assert resolve_shard_paths([str(first) + ".idx", Shard(first)]) == [str(first) + ".bin"] * 2
    assert [s.path for s in open_shards(out)] == [Path(p) for p in every]
    with pytest.raises(TypeError, match="shards: expected paths"):
        resolve_shard_paths([3])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShardFormatError, match="no \\*.bin"):
        resolve_shard_paths(tmp_path / "empty")
