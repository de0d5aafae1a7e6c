"""The native TokenLoader (csrc/loader): bit-identical to the Python reference, threaded, validated, resumable."""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from bigmodel_fast.data.loader import IGNORE_INDEX, CausalLoader, MLMLoader, SpecialIds, TokenLoader
from bigmodel_fast.data.shards import HEADER_SIZE, ShardFormatError, open_shards, shard_name, write_shard

from .shard_helpers import NON_REGULAR, set_header_vocab, set_token

IDS = SpecialIds.fixed(vocab_size=1000)


def _docs(seed, n_docs, vocab, max_len=300):
    rng = np.random.default_rng(seed)
    return [rng.integers(7, vocab, size=int(n)) for n in rng.integers(0, max_len, size=n_docs)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two uint16 shards (vocab 1000, with empty and 1-token documents); ../wide/big is a uint32 shard (vocab 70000)."""
    root = tmp_path_factory.mktemp("token_loader") / "small"
    docs = _docs(0, 160, 1000)
    docs[3], docs[4] = np.zeros(0, dtype=np.int64), np.array([9])
    write_shard(root / "a", docs[:100], 1000)
    write_shard(root / "b", docs[100:], 1000)
    write_shard(root.parent / "wide" / "big", _docs(1, 60, 70_000), 70_000)
    return root


def _equal(ref: dict, nat: dict) -> None:
    assert ref.keys() == nat.keys()
    for k, v in ref.items():
        if isinstance(v, torch.Tensor):
            assert v.dtype == nat[k].dtype and torch.equal(v, nat[k]), k
        else:
            assert v == nat[k], k


@pytest.mark.parametrize("seed", [0, 7, 2**63 + 5])
@pytest.mark.parametrize("pack", [True, False])
def test_causal_is_bit_identical_to_the_reference(corpus, seed, pack):
    kw = dict(seq_len=37, batch_size=6, seed=seed, rank=1, world_size=2, pack=pack)
    ref = CausalLoader(open_shards([corpus / "a.bin", corpus / "b.bin"]), **kw)
    nat = TokenLoader([corpus / "a", corpus / "b"], mode="causal", **kw)
    for i in [0, 1, 5, len(nat) - 1, len(nat), 3 * len(nat) + 2]:  # inside, across and beyond epochs
        _equal(ref.batch(i), nat.batch(i))
    big = TokenLoader(corpus.parent / "wide" / "big.bin", mode="causal", **kw)
    _equal(CausalLoader(open_shards(corpus.parent / "wide" / "big"), **kw).batch(3), big.batch(3))


@pytest.mark.parametrize("seed", [0, 11])
@pytest.mark.parametrize("pack,nsp,wwm", [(True, True, False), (False, True, True), (True, False, True),
                                          (False, False, False)])
def test_mlm_is_bit_identical_to_the_reference(corpus, seed, pack, nsp, wwm):
    word_start = np.random.default_rng(5).random(1000) < 0.6
    kw = dict(seq_len=29, batch_size=7, seed=seed, rank=0, world_size=1, pack=pack, nsp=nsp, whole_word_mask=wwm,
              word_start=word_start, mlm_probability=0.2)
    ref = MLMLoader(open_shards([corpus / "a.bin", corpus / "b.bin"]), IDS, **kw)
    nat = TokenLoader([corpus / "a.bin", corpus / "b.bin"], mode="mlm", special_ids=IDS, **kw)
    for i in [0, 2, len(nat), 2 * len(nat) + 1]:
        _equal(ref.batch(i), nat.batch(i))
    big_ids = SpecialIds.fixed(70_000)
    kw.update(word_start=np.random.default_rng(6).random(70_000) < 0.6)
    _equal(MLMLoader(open_shards(corpus.parent / "wide" / "big"), big_ids, **kw).batch(1),
           TokenLoader(corpus.parent / "wide" / "big", mode="mlm", special_ids=big_ids, **kw).batch(1))


def test_output_is_identical_for_any_thread_count_and_prefetch(corpus):
    kw = dict(seq_len=32, batch_size=8, mode="mlm", seed=3, special_ids=IDS)
    runs = []
    for threads, prefetch in [(1, 1), (2, 4), (4, 2), (8, 16)]:
        with TokenLoader(corpus, num_threads=threads, prefetch=prefetch, **kw) as ld:
            it = iter(ld)
            runs.append([next(it) for _ in range(12)])
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            _equal(a, b)
    for i, b in enumerate(runs[0]):  # iteration yields batch(i) in order
        _equal(b, TokenLoader(corpus, **kw).batch(i))


@pytest.mark.parametrize("mode", ["causal", "mlm"])
def test_resume_mid_epoch_gives_the_uninterrupted_batches(corpus, mode):
    kw = dict(seq_len=24, batch_size=5, mode=mode, seed=1, special_ids=IDS, num_threads=3, prefetch=3)
    straight = TokenLoader(corpus, **kw)
    it = iter(straight)
    expected = [next(it) for _ in range(10)]
    first = TokenLoader(corpus, **kw)
    got = [next(first) for _ in range(4)]  # workers have prefetched further; the state says 4
    state = first.state_dict()
    assert state["next_batch"] == 4
    first.close()
    second = TokenLoader(corpus, **kw)
    second.load_state_dict(state)
    got += [next(second) for _ in range(6)]
    for a, b in zip(expected, got):
        _equal(a, b)
    second.load_state_dict({**state, "next_batch": 2})  # seeking back drops the prefetched batches
    _equal(expected[2], next(second))
    with pytest.raises(ValueError, match="seed"):
        TokenLoader(corpus, **{**kw, "seed": 2}).load_state_dict(state)


def test_ranks_are_disjoint_and_cover_an_epoch(corpus):
    world, B = 3, 4
    loaders = [TokenLoader(corpus / "a", seq_len=16, batch_size=B, rank=r, world_size=world, pack=False)
               for r in range(world)]
    n = loaders[0].num_samples
    assert len(loaders[0]) == n // (B * world)
    stream = open_shards(corpus / "a")[0].tokens.astype(np.int64)
    windows = {}
    for r, ld in enumerate(loaders):
        for i in range(-(-n // (B * world))):
            batch = ld.batch(i)["input_ids"]
            for e in range(B):
                epoch, w = ld.sample_of(i, e)
                assert torch.equal(batch[e], torch.from_numpy(stream[w * 16 : w * 16 + 16]))
                if epoch == 0:
                    assert w not in windows, f"window {w} given to ranks {windows[w]} and {r}"
                    windows[w] = r
    assert sorted(windows) == list(range(n))
    assert loaders[0].epoch == 0


def test_mlm_masking_statistics_special_tokens_and_nsp_balance(corpus):
    ld = TokenLoader(corpus, seq_len=64, batch_size=256, mode="mlm", seed=4, special_ids=IDS, pack=False)
    sel_n = maskable_n = masked = random = kept = 0
    nsp = []
    for i in range(6):
        b = ld.batch(i)
        ids, lab, am = b["input_ids"], b["mlm_labels"], b["attention_mask"]
        orig = torch.where(lab != IGNORE_INDEX, lab, ids)
        special = torch.isin(orig, torch.tensor(IDS.special))
        sel = lab != IGNORE_INDEX
        assert not (sel & special).any(), "special tokens (and padding) are never masked"
        assert (orig[~am] == IDS.pad).all()
        sel_n += int(sel.sum())
        maskable_n += int((~special).sum())
        masked += int((ids[sel] == IDS.mask).sum())
        random += int(((ids != orig) & sel & (ids != IDS.mask)).sum())
        kept += int(((ids == orig) & sel).sum())
        assert not torch.isin(ids[sel & (ids != orig) & (ids != IDS.mask)], torch.tensor(IDS.special)).any()
        nsp.append(b["nsp_labels"].float().mean().item())
    assert abs(sel_n / maskable_n - 0.15) < 0.01
    assert abs(masked / sel_n - 0.8) < 0.02 and abs(random / sel_n - 0.1) < 0.015 and abs(kept / sel_n - 0.1) < 0.015
    assert abs(np.mean(nsp) - 0.5) < 0.04


def test_whole_word_masking_with_a_real_tokenizer(tiny_data):
    from bigmodel_fast.data.tokenizer import Tokenizer

    tok = Tokenizer(tiny_data / "tokenizer.model")
    word_start = tok.word_start_mask()
    ld = TokenLoader(tiny_data, seq_len=64, batch_size=64, mode="mlm", tokenizer=tok, whole_word_mask=True)
    b = ld.batch(0)
    orig = torch.where(b["mlm_labels"] != IGNORE_INDEX, b["mlm_labels"], b["input_ids"]).numpy()
    sel = (b["mlm_labels"] != IGNORE_INDEX).numpy()
    special = np.isin(orig, tok.all_special_ids)
    groups = 0
    for row in range(64):
        head = None
        for j in range(64):
            if special[row, j]:
                head = None
                continue
            if head is None or word_start[orig[row, j]]:
                head = sel[row, j]
                groups += 1
            assert sel[row, j] == head, "a word was split by the mask"
    assert groups > 500 and sel.any()


def _write_raw(path, magic, version=1, code=1, vocab=1000, num_tokens=0, num_docs=0, body=b""):
    path.write_bytes(struct.pack("<8sIIQQQ24x", magic, version, code, vocab, num_tokens, num_docs) + body)


@pytest.fixture()
def good_pair(tmp_path):
    write_shard(tmp_path / "s", [[7, 8, 9], [10, 11], [12, 13, 14, 15]], 1000)
    return tmp_path / "s"


def _corrupt(prefix, which, offset, data):
    p = prefix.with_suffix(which)
    raw = bytearray(p.read_bytes())
    raw[offset : offset + len(data)] = data
    p.write_bytes(bytes(raw))


@pytest.mark.parametrize("case,where,match", [
    ("truncated_bin", ".bin", "truncated"),
    ("trailing_idx", ".idx", "trailing bytes"),
    ("short_header", ".idx", "too short for the header"),
    ("wrong_magic", ".bin", "wrong magic"),
    ("swapped_magic", ".bin", "swapped"),
    ("wrong_version", ".bin", "unsupported format version 7"),
    ("bad_dtype", ".idx", "unknown dtype code 9"),
    ("vocab_too_big", ".bin", "does not fit the id dtype"),
    ("headers_disagree", ".idx", "header num_docs"),
    ("first_offset", ".idx", r"offsets\[0\] is 1"),
    ("non_monotone", ".idx", "not monotone"),
    ("offset_out_of_range", ".idx", "out of range"),
    ("missing_idx", ".idx", "not found"),
])
def test_bad_headers_and_indexes_raise_a_clear_error(good_pair, case, where, match):
    bin_, idx = good_pair.with_suffix(".bin"), good_pair.with_suffix(".idx")
    if case == "truncated_bin":
        bin_.write_bytes(bin_.read_bytes()[:-3])
    elif case == "trailing_idx":
        idx.write_bytes(idx.read_bytes() + b"\0" * 8)
    elif case == "short_header":
        idx.write_bytes(idx.read_bytes()[:20])
    elif case == "wrong_magic":
        _corrupt(good_pair, ".bin", 0, b"GARBAGE!")
    elif case == "swapped_magic":
        _corrupt(good_pair, ".bin", 0, b"BMFTIDX\0")
    elif case == "wrong_version":
        _corrupt(good_pair, ".bin", 8, struct.pack("<I", 7))
    elif case == "bad_dtype":
        _corrupt(good_pair, ".idx", 12, struct.pack("<I", 9))
    elif case == "vocab_too_big":
        _corrupt(good_pair, ".bin", 16, struct.pack("<Q", 70_000))
    elif case == "headers_disagree":
        _corrupt(good_pair, ".idx", 32, struct.pack("<Q", 2))
    elif case == "first_offset":
        _corrupt(good_pair, ".idx", HEADER_SIZE, struct.pack("<q", 1))
    elif case == "non_monotone":
        _corrupt(good_pair, ".idx", HEADER_SIZE + 8, struct.pack("<q", 6))
    elif case == "offset_out_of_range":
        _corrupt(good_pair, ".idx", HEADER_SIZE + 16, struct.pack("<q", 99))
    elif case == "missing_idx":
        idx.unlink()
    with pytest.raises(ShardFormatError, match=match) as info:
        TokenLoader(good_pair, seq_len=4, batch_size=2)
    err = info.value
    assert isinstance(err, ValueError) and err.path.name == "s" + where
    assert str(err).startswith(str(good_pair.with_suffix(where))) and "expected" in str(err) and "HINT:" in str(err)


def test_shards_with_different_vocabularies_and_empty_directories_are_rejected(tmp_path):
    write_shard(tmp_path / "a", [[7, 8, 9]], 1000)
    write_shard(tmp_path / "b", [[7, 8, 9]], 2000)
    with pytest.raises(ShardFormatError, match="share a vocabulary"):
        TokenLoader(tmp_path, seq_len=2, batch_size=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShardFormatError, match="no \\*.bin"):
        TokenLoader(tmp_path / "empty", seq_len=2, batch_size=1)


def test_out_of_range_ids_raise_in_the_consumer_thread(tmp_path):
    write_shard(tmp_path / "s", [list(range(7, 300))] * 4, 1000)
    _corrupt(tmp_path / "s", ".bin", 16, struct.pack("<Q", 100))  # header vocab below the ids
    _corrupt(tmp_path / "s", ".idx", 16, struct.pack("<Q", 100))
    ld = TokenLoader(tmp_path / "s", seq_len=16, batch_size=2, num_threads=3)
    for _ in range(2):  # raised again at the same position: the position does not advance
        with pytest.raises(ShardFormatError, match="token id .* is out of range"):
            next(ld)
        assert ld.next_batch == 0
    ld.close()


@pytest.mark.parametrize("kwargs,match", [
    (dict(seq_len=0), "seq_len"), (dict(batch_size=0), "batch_size"), (dict(mode="t5"), "mode"),
    (dict(rank=2, world_size=2), "rank"), (dict(world_size=0), "world_size"), (dict(num_threads=0), "num_threads"),
    (dict(prefetch=0), "prefetch"), (dict(mlm_probability=1.5), "mlm_probability"), (dict(seed=-1), "seed"),
    (dict(mode="mlm", whole_word_mask=True), "whole_word_mask"), (dict(seq_len=10**6), "seq_len"),
    (dict(mode="mlm", seq_len=4), "seq_len"), (dict(word_start=np.ones((2, 2))), "word_start"),
    (dict(mode="mlm", pack=False, seq_len=2**32, batch_size=2**32), "batch_size \\* seq_len"),  # product wraps
])
def test_invalid_arguments_raise_value_errors_naming_them(corpus, kwargs, match):
    args = dict(seq_len=8, batch_size=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        TokenLoader(corpus, **args)


def test_the_native_core_takes_one_bound_config_and_checks_it(corpus):
    """TokenLoader passes one _C.LoaderConfig (named fields, filled from LoaderSettings); the C++ side checks
    every field again, so a direct call with bad values raises ValueError/TypeError naming it, never crashes."""
    from bigmodel_fast import _C
    from bigmodel_fast.data.loader_config import LoaderSettings
    from bigmodel_fast.data.shards import resolve_shard_paths

    ld = TokenLoader(corpus, seq_len=8, batch_size=2, mode="mlm", special_ids=IDS, seed=3)
    assert ld.settings == LoaderSettings(seq_len=8, batch_size=2, mode="mlm", seed=3)
    paths = resolve_shard_paths(corpus)

    def config(**fields):
        cfg = LoaderSettings(seq_len=8, batch_size=2, mode="mlm", seed=3).native(IDS)
        for name, value in fields.items():
            setattr(cfg, name, value)
        return cfg

    cfg = config()
    assert (cfg.mode, cfg.seq_len, cfg.seed, cfg.pad_id, cfg.mask_id) == ("mlm", 8, 3, 0, 4)
    assert cfg.special == list(IDS.special)
    assert cfg.word_start is None
    core = _C.TokenLoaderCore(paths, cfg)
    direct = {k: (torch.from_numpy(v) if isinstance(v, np.ndarray) else v) for k, v in core.batch(5).items()}
    _equal(ld.batch(5), direct)
    with pytest.raises(ValueError, match="mode must be 'causal' or 'mlm'"):
        cfg.mode = "t5"
    with pytest.raises(TypeError):
        cfg.seq_len = 2**70  # does not fit int64: refused by the binding
    for fields, match in [(dict(seq_len=0), "seq_len"), (dict(batch_size=-1), "batch_size"),
                          (dict(rank=3, world_size=2), "rank"), (dict(num_threads=0), "num_threads"),
                          (dict(prefetch=0), "prefetch"), (dict(mlm_probability=1.0), "mlm_probability"),
                          (dict(special=[]), "special_ids"), (dict(mask_id=9), "special"),
                          (dict(whole_word_mask=True), "word_start"), (dict(vocab_size=5), "vocab_size")]:
        with pytest.raises(ValueError, match=match):
            _C.TokenLoaderCore(paths, config(**fields))
    with pytest.raises(ValueError, match="word_start"):
        cfg.word_start = np.ones((2, 2), dtype=bool)
    cfg.word_start = np.array([1, 0, 1], dtype=bool)
    assert cfg.word_start.tolist() == [1, 0, 1]


@pytest.mark.parametrize("mode", ["causal", "mlm"])
def test_out_of_range_batch_indices_and_rows_raise_index_errors(corpus, mode):
    """Negative or overflowing positions once sent the permutation's cycle walk into an endless loop."""
    ld = TokenLoader(corpus, mode=mode, seq_len=8, batch_size=3, world_size=2, rank=1)
    top = ld._core.max_index
    assert top > 10**17
    ld.sample_of(top, 2)  # the largest valid position works
    ld._core.batch(top)
    for index, row in [(-1, 0), (0, -5), (0, 3), (top + 1, 0), (2**62, 0)]:
        with pytest.raises(IndexError, match="batch index|row"):
            ld.sample_of(index, row)
    for index in (top + 1, 2**62):
        with pytest.raises(IndexError, match="batch index"):
            ld._core.batch(index)
        with pytest.raises(IndexError, match="batch index"):
            ld._core.seek(index)
    ld.close()


def test_batches_are_zero_copy_views_of_native_buffers(corpus):
    ld = TokenLoader(corpus, seq_len=16, batch_size=4, pin_memory=False)
    raw = ld._core.next()
    for arr in (raw["input_ids"], raw["labels"], raw["cu_seqlens"]):
        assert not arr.flags.owndata and type(arr.base).__name__ == "PyCapsule"
        assert torch.from_numpy(arr).data_ptr() == arr.ctypes.data
    b = next(ld)
    assert b["input_ids"].dtype == torch.int64 and b["cu_seqlens"].dtype == torch.int32
    assert isinstance(b["max_seqlen"], int)


def test_interpreter_exits_cleanly_with_busy_workers(corpus):
    code = textwrap.dedent(f"""
        from bigmodel_fast.data.loader import TokenLoader
        ld = TokenLoader({str(corpus)!r}, seq_len=64, batch_size=64, num_threads=4, prefetch=1)
        next(ld); next(ld)   # workers are now blocked on the full ring
        ld2 = TokenLoader({str(corpus)!r}, seq_len=8, batch_size=2, num_threads=2)
        next(ld2)
        del ld2               # destructor joins its workers
        print("done")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr


def test_packed_gpt_never_attends_across_documents(corpus):
    from bigmodel_fast.models import GPTForCausalLM, ModelConfig

    cfg = ModelConfig.from_dict(dict(arch="gpt", vocab_size=1000, hidden_size=32, num_layers=2, num_heads=2,
                                     intermediate_size=64, max_position=64))
    torch.manual_seed(0)
    model = GPTForCausalLM(cfg).eval()
    ld = TokenLoader(corpus, seq_len=48, batch_size=3, seed=2)
    b = next(ld.batch(i) for i in range(50) if len(ld.batch(i)["cu_seqlens"]) > 6)  # rows span documents
    cu = b["cu_seqlens"].tolist()
    with torch.no_grad():
        packed = model(b["input_ids"], b["labels"], b["position_ids"], cu_seqlens=b["cu_seqlens"],
                       max_seqlen=b["max_seqlen"])["logits"].reshape(-1, 1000)
        flat = b["input_ids"].reshape(-1)
        for a, z in zip(cu, cu[1:]):  # each document alone, positions from 0
            alone = model(flat[a:z][None])["logits"][0]
            torch.testing.assert_close(packed[a:z], alone, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX named pipes")
def test_non_regular_shard_files_are_refused_without_blocking(tmp_path):
    """A FIFO as a shard file blocked TokenLoader in open() forever; run in a child so a regression times out."""
    cases = []
    for kind in sorted(NON_REGULAR):
        for which in (".bin", ".idx"):
            write_shard(tmp_path / f"{kind}{which}" / "s", [[7, 8, 9, 10]], 1000)
            cases.append((kind, str(tmp_path / f"{kind}{which}" / "s"), which))
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from pathlib import Path
        from shard_helpers import make_non_regular
        from bigmodel_fast.data.loader import TokenLoader
        from bigmodel_fast.data.shards import ShardFormatError
        for kind, prefix, which in {cases!r}:
            keep = make_non_regular(Path(prefix + which), kind)
            try:
                TokenLoader(prefix, seq_len=2, batch_size=1)
                print(json.dumps([kind, which, "loaded"]), flush=True)
            except ShardFormatError as e:
                print(json.dumps([kind, which, str(e)]), flush=True)
    """)
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"TokenLoader blocked on a non-regular shard file; output so far: {e.stdout!r}")
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(results) == len(cases)
    for (kind, prefix, which), (_, _, message) in zip(cases, results):
        assert re.match(re.escape(prefix + which) + ": " + NON_REGULAR[kind], message), message


def test_header_vocab_larger_than_the_model_vocabulary_is_refused(tmp_path, tiny_data):
    from bigmodel_fast.data.tokenizer import Tokenizer

    write_shard(tmp_path / "s", [list(range(7, 300))] * 4, 1000)
    TokenLoader(tmp_path / "s", seq_len=8, batch_size=2, vocab_size=1000)
    set_header_vocab(tmp_path / "s", 2000)
    TokenLoader(tmp_path / "s", seq_len=8, batch_size=2)  # no model vocabulary given: the header is all there is
    with pytest.raises(ShardFormatError, match=r"s.bin: header vocab_size 2000 is larger than the model's "
                                               r"vocabulary \(1000\); expected vocab_size <= 1000"):
        TokenLoader(tmp_path / "s", seq_len=8, batch_size=2, vocab_size=1000)
    tok = Tokenizer(tiny_data / "tokenizer.model")  # the default model vocabulary is the tokenizer's
    write_shard(tmp_path / "t", [list(range(7, 300))] * 4, tok.vocab_size)
    set_header_vocab(tmp_path / "t", tok.vocab_size + 1)
    with pytest.raises(ShardFormatError, match=rf"larger than the model's vocabulary \({tok.vocab_size}\)"):
        TokenLoader(tmp_path / "t", seq_len=8, batch_size=2, mode="mlm", tokenizer=tok)
    write_shard(tmp_path / "u", [list(range(7, 300))] * 4, 400)  # random MLM replacements up to IDS' 1000
    with pytest.raises(ValueError, match=r"special_ids: vocab_size=1000 exceeds the model's vocabulary \(500\)"):
        TokenLoader(tmp_path / "u", seq_len=8, batch_size=2, mode="mlm", special_ids=IDS, vocab_size=500)


@pytest.mark.parametrize("dtype_vocab", [1000, 70_000])
def test_late_bad_ids_are_found_when_the_shards_are_opened(tmp_path, dtype_vocab):
    docs = [list(range(7, 300))] * 40
    write_shard(tmp_path / "a", docs[:1], dtype_vocab)
    write_shard(tmp_path / "b", docs, dtype_vocab)
    pos = 40 * 293 - 5
    set_token(tmp_path / "b", pos, dtype_vocab + 3, itemsize=2 if dtype_vocab <= 65536 else 4)
    ld = TokenLoader(tmp_path, seq_len=8, batch_size=2)  # without the model's vocabulary: found per batch only
    ld.batch(0)
    with pytest.raises(ShardFormatError, match=rf"b.bin: token id {dtype_vocab + 3} at token offset {pos} "
                                               rf"\(document 39\) is out of range; expected ids < vocab_size "
                                               rf"\({dtype_vocab}\)"):
        TokenLoader(tmp_path, seq_len=8, batch_size=2, vocab_size=dtype_vocab)


def _bmf(*args):
    return subprocess.run([sys.executable, "-m", "bigmodel_fast.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("loader,damage", [("native", "header_vocab"), ("python", "late_id")])
def test_pretrain_with_bad_ids_late_in_a_shard_exits_2_with_one_line(tmp_path, tiny_data, loader, damage):
    """Used to train until the bad id reached the embedding: an IndexError traceback (exit 1) or no error at all."""
    from bigmodel_fast.data.tokenizer import Tokenizer

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    vocab = Tokenizer(data / "tokenizer.model").vocab_size
    prefix = data / shard_name("train", 0)
    shard = open_shards([prefix])[0]
    pos = shard.num_tokens - 2
    del shard
    if damage == "header_vocab":  # the header admits the id, the model does not
        set_header_vocab(prefix, vocab + 100)
        set_token(prefix, pos, vocab + 50)
        expected = rf"header vocab_size {vocab + 100} is larger than the model's vocabulary \({vocab}\)"
    else:
        set_token(prefix, pos, vocab)
        expected = rf"token id {vocab} at token offset {pos} .* ids < vocab_size \({vocab}\)"
    out = _bmf("pretrain", "--data", data, "--out", tmp_path / "run", "--arch", "gpt", "--seq-len", 16,
               "--batch-size", 2, "--max-steps", 2, "--device", "cpu", "--loader", loader)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert re.search(re.escape(str(prefix) + ".bin: ") + expected, lines[0]), lines[0]
