"""The Python reference loaders (bigmodel_fast.data.loader_reference): the specification of the native loader."""

import numpy as np
import pytest
import torch

from bigmodel_fast.data.loader import IGNORE_INDEX, CausalLoader, MLMLoader, SpecialIds, mask_tokens
from bigmodel_fast.data.loader_reference import epoch_permutation, mix, mix_array, sample_key


class FakeShard:
    """Documents of consecutive ids (doc d holds ids 1000*d + 7 ...), so positions are recoverable."""

    def __init__(self, lengths, base=7):
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.tokens = np.concatenate([np.arange(n) + base + 1000 * d for d, n in enumerate(lengths)]).astype(np.uint32)


IDS = SpecialIds.fixed(vocab_size=50_000)


def test_mix_is_splitmix64_and_array_version_agrees():
    assert mix(0) == 0xE220A8397B1DCDAF  # the first splitmix64 output for state 0
    xs = np.array([0, 1, 7, 2**63, 2**64 - 1, 0xDEADBEEF], dtype=np.uint64)
    assert [int(v) for v in mix_array(xs)] == [mix(int(x)) for x in xs]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 16, 17, 1000, 4097])
def test_epoch_permutation_is_a_seeded_bijection(n):
    perm = epoch_permutation(3, 0, n, np.arange(n))
    assert sorted(perm.tolist()) == list(range(n))
    if n >= 16:
        assert not np.array_equal(perm, epoch_permutation(3, 1, n, np.arange(n))), "epochs must reorder"
        assert not np.array_equal(perm, epoch_permutation(4, 0, n, np.arange(n))), "seeds must reorder"


def _keys(n, seed=0):
    return np.array([sample_key(seed, 0, i) for i in range(n)], dtype=np.uint64)


def test_mask_tokens_statistics_on_large_sample():
    rng = np.random.default_rng(0)
    ids = rng.integers(7, 30_000, size=(512, 256))
    ids[:, 0], ids[:, -1], ids[:, 100] = IDS.cls, IDS.sep, IDS.pad
    ids[:, 50] = 5  # a special id inside the text is never masked either
    masked, labels = mask_tokens(ids, IDS, _keys(512), 0.15)
    sel = labels != IGNORE_INDEX
    maskable = ~np.isin(ids, IDS.special)
    assert not sel[~maskable].any(), "a special token was selected for masking"
    rate = sel.sum() / maskable.sum()
    assert abs(rate - 0.15) < 0.005
    assert (labels[sel] == ids[sel]).all()
    to_mask = (masked == IDS.mask) & sel
    changed = (masked != ids) & ~to_mask & sel
    kept = (masked == ids) & sel
    n = sel.sum()
    assert abs(to_mask.sum() / n - 0.8) < 0.01
    assert abs(changed.sum() / n - 0.1) < 0.01
    assert abs(kept.sum() / n - 0.1) < 0.01
    assert (masked[~sel] == ids[~sel]).all(), "unselected positions must be untouched"
    assert not np.isin(masked[changed], IDS.special).any(), "random replacements must not be special tokens"
    assert (masked[changed] < IDS.vocab_size).all()
    # selection is spread over positions (no column bias from the four-uniforms-per-hash trick)
    col_rate = sel[:, 1:50].mean(0)
    assert col_rate.min() > 0.08 and col_rate.max() < 0.22


def test_whole_word_groups_are_masked_together():
    rng = np.random.default_rng(1)
    vocab = 2000
    word_start = np.zeros(vocab, dtype=bool)
    word_start[:7] = True
    word_start[7:1000] = True  # ids < 1000 start a word, ids >= 1000 continue one
    ids = rng.integers(7, vocab, size=(256, 128))
    ids[:, 0], ids[:, 64], ids[:, -1] = IDS.cls, IDS.sep, IDS.sep
    ids[:, 65] = 1500  # a continuation piece right after [SEP] starts a word of its own
    masked, labels = mask_tokens(ids, IDS, _keys(256), 0.15, word_start=word_start)
    sel = labels != IGNORE_INDEX
    special = np.isin(ids, IDS.special)
    for row in range(256):
        word = -1
        for j in range(128):
            if special[row, j]:
                word = -1
                continue
            if word_start[ids[row, j]] or word < 0:
                word, first = j, sel[row, j]
            assert sel[row, j] == first, f"row {row}: position {j} split from its word starting at {word}"
    heads = ~special & (word_start[ids] | np.roll(special, 1, axis=1))
    assert abs(sel[heads].mean() - 0.15) < 0.01  # words are selected at the masking rate


def test_mlm_batches_structure_and_nsp_balance():
    shard = FakeShard([50, 3, 200, 17, 90, 2, 64] * 5)
    loader = MLMLoader([shard], IDS, seq_len=48, batch_size=64, seed=3, pack=True)
    nsp = []
    for i in range(12):
        b = loader.batch(i)
        ids, tt, am, lab = b["input_ids"], b["token_type_ids"], b["attention_mask"], b["mlm_labels"]
        assert ids.shape == (64, 48) and ids.dtype == torch.int64 and am.dtype == torch.bool
        assert (ids[:, 0] == IDS.cls).all()
        orig = torch.where(lab != IGNORE_INDEX, lab, ids)
        n_real = am.sum(1)
        cu = b["cu_seqlens"].tolist()
        assert b["cu_seqlens"].dtype == torch.int32 and cu[-1] == 64 * 48
        for row in range(64):
            n = int(n_real[row])
            assert row * 48 in cu and (n == 48 or row * 48 + n in cu)
            r = orig[row, :n]
            seps = (r == IDS.sep).nonzero().flatten()
            assert len(seps) == 2 and seps[1] == n - 1
            assert (tt[row, : seps[0] + 1] == 0).all() and (tt[row, seps[0] + 1 : n] == 1).all()
            assert (ids[row, n:] == IDS.pad).all() and not am[row, n:].any() and (tt[row, n:] == 0).all()
            a, b_ = r[1 : seps[0]], r[seps[0] + 1 : -1]
            assert len(a) >= 1 and len(b_) >= 1
            assert ((a[1:] - a[:-1]) == 1).all() and ((b_[1:] - b_[:-1]) == 1).all(), "spans are contiguous"
            is_next = bool(b_[0] == a[-1] + 1)  # fake docs hold consecutive ids
            assert is_next == (int(b["nsp_labels"][row]) == 0)
            if not is_next:
                assert int(b_[0]) // 1000 != int(a[0]) // 1000, "a random B comes from another document"
        nsp.append(b["nsp_labels"].float().mean().item())
    assert abs(np.mean(nsp) - 0.5) < 0.05


def test_mlm_epoch_visits_every_chunk_once_and_masks_anew_each_epoch():
    shard = FakeShard([50, 3, 200, 17, 90, 2, 64])
    loader = MLMLoader([shard], IDS, seq_len=24, batch_size=4, seed=0, nsp=False, pack=False)
    n = loader.num_samples
    assert n == sum((L + 21 - 2) // 21 for L in [50, 3, 200, 17, 90, 2, 64])  # 1-token tails are dropped
    firsts = []
    for i in range(n // 4):
        ids, lab = loader.batch(i)["input_ids"], loader.batch(i)["mlm_labels"]
        firsts += torch.where(lab[:, 1] != IGNORE_INDEX, lab[:, 1], ids[:, 1]).tolist()
    assert len(set(firsts)) == len(firsts) == (n // 4) * 4, "a chunk repeated inside one epoch"
    assert len(loader) == n // 4
    # the same chunk in epoch 0 and epoch 1 gets a different mask
    e0 = {row_first: lab for row_first, lab in _chunk_masks(loader, 0)}
    e1 = {row_first: lab for row_first, lab in _chunk_masks(loader, 1)}
    common = set(e0) & set(e1)
    assert common and any(not torch.equal(e0[k], e1[k]) for k in common)


def _chunk_masks(loader, epoch):
    per_epoch = loader.num_samples // loader.batch_size
    for i in range(epoch * per_epoch + 1, (epoch + 1) * per_epoch - 1):  # batches fully inside the epoch
        b = loader.batch(i)
        orig = torch.where(b["mlm_labels"] != IGNORE_INDEX, b["mlm_labels"], b["input_ids"])
        for row in range(loader.batch_size):
            yield int(orig[row, 1]), (b["mlm_labels"][row] != IGNORE_INDEX)


def test_causal_targets_shift_and_packing_agree_with_document_index():
    lengths = [300, 5, 0, 5, 1, 40, 77] * 4
    shard = FakeShard(lengths)
    loader = CausalLoader([shard], seq_len=64, batch_size=16, seed=0, pack=True)
    stream = shard.tokens.astype(np.int64)
    doc_starts = set(np.unique(shard.offsets[:-1]).tolist())
    for i in range(3):
        b = loader.batch(i)
        x, y, pos, cu = b["input_ids"], b["labels"], b["position_ids"], b["cu_seqlens"].tolist()
        assert x.shape == y.shape == pos.shape == (16, 64) and b["cu_seqlens"].dtype == torch.int32
        _, items = loader.samples(i)
        expect_cu = []
        for row, w in enumerate(items.tolist()):
            window = stream[w * 64 : w * 64 + 65]
            assert torch.equal(x[row], torch.from_numpy(window[:-1]))
            for t in range(64):
                new_doc = (w * 64 + t + 1) in doc_starts
                assert int(y[row, t]) == (IGNORE_INDEX if new_doc else window[t + 1])
                starts_here = t == 0 or (w * 64 + t) in doc_starts
                if starts_here:
                    expect_cu.append(row * 64 + t)
                assert int(pos[row, t]) == (0 if starts_here else int(pos[row, t - 1]) + 1)
        assert cu == expect_cu + [16 * 64]
        assert b["max_seqlen"] == max(bb - a for a, bb in zip(cu, cu[1:]))
    plain = CausalLoader([shard], seq_len=64, batch_size=16, seed=0, pack=False).batch(0)
    assert set(plain) == {"input_ids", "labels"}
    assert torch.equal(plain["input_ids"][:, 1:], plain["labels"][:, :-1])  # targets are inputs shifted by one


def test_epoch_and_ranks_cover_every_window_disjointly():
    shard = FakeShard([997, 3, 500])
    world, B = 3, 5
    loaders = [CausalLoader([shard], seq_len=16, batch_size=B, rank=r, world_size=world, pack=False) for r in range(3)]
    n = loaders[0].num_samples
    assert n == (1500 - 1) // 16 and len(loaders[0]) == n // (B * world)
    seen = []
    for i in range(-(-n // (B * world))):  # enough batches to cover the first epoch
        for ld in loaders:
            epochs, items = ld.samples(i)
            seen += [(int(e), int(w)) for e, w in zip(epochs, items)]
    first = [w for e, w in seen if e == 0]
    assert sorted(first) == list(range(n)), "epoch 0 must hold every window exactly once across ranks"
    per_rank = [{int(w) for i in range(len(loaders[0])) for w in ld.samples(i)[1]} for ld in loaders]
    assert not (per_rank[0] & per_rank[1]) and not (per_rank[1] & per_rank[2]) and not (per_rank[0] & per_rank[2])
    assert loaders[0].epoch == 0
    loaders[0].next_batch = len(loaders[0]) + 1
    assert loaders[0].epoch == 1
    with pytest.raises(ValueError, match="rank"):
        CausalLoader([shard], seq_len=16, batch_size=8, rank=3, world_size=3)


def test_batches_are_a_function_of_index_and_resume():
    shard = FakeShard([40, 80, 120, 33])
    a = MLMLoader([shard], IDS, seq_len=32, batch_size=4, seed=1)
    it = iter(a)
    first = [next(it) for _ in range(5)]
    b = MLMLoader([shard], IDS, seq_len=32, batch_size=4, seed=1)
    b.load_state_dict({**a.state_dict(), "next_batch": 3})
    again = next(iter(b))
    for k in first[3]:
        if isinstance(first[3][k], torch.Tensor):
            assert torch.equal(first[3][k], again[k])
    other_seed = MLMLoader([shard], IDS, seq_len=32, batch_size=4, seed=2).batch(3)
    assert not torch.equal(other_seed["input_ids"], first[3]["input_ids"])
    with pytest.raises(ValueError, match="seed"):
        MLMLoader([shard], IDS, seq_len=32, batch_size=4, seed=9).load_state_dict(a.state_dict())


def test_empty_and_degenerate_inputs_raise():
    with pytest.raises(ValueError, match="no token shards"):
        CausalLoader([], seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="seq_len"):
        CausalLoader([FakeShard([3, 4])], seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="no document"):
        MLMLoader([FakeShard([1, 1])], IDS, seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="two documents"):
        MLMLoader([FakeShard([30])], IDS, seq_len=16, batch_size=2)
    with pytest.raises(ValueError, match="mlm_probability"):
        MLMLoader([FakeShard([30, 30])], IDS, seq_len=16, batch_size=2, mlm_probability=1.5)
    with pytest.raises(ValueError, match="word_start"):
        MLMLoader([FakeShard([30, 30])], IDS, seq_len=16, batch_size=2, whole_word_mask=True)
