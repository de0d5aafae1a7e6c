import numpy as np
import pytest
import torch

from bigmodel_fast.data.loader import IGNORE_INDEX, CausalLoader, MLMLoader, SpecialIds, mask_tokens


class FakeShard:
    """Documents of consecutive ids (doc d holds ids 100*d + 7 ... ), so positions are recoverable."""

    def __init__(self, lengths, base=7):
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.tokens = np.concatenate([np.arange(n) + base + 1000 * d for d, n in enumerate(lengths)]).astype(np.uint32)


IDS = SpecialIds(pad=0, cls=2, sep=3, mask=4, vocab_size=50_000, special=(0, 1, 2, 3, 4, 5, 6))


def test_mask_tokens_statistics_on_large_sample():
    rng = np.random.default_rng(0)
    ids = rng.integers(7, 30_000, size=(512, 256))
    ids[:, 0], ids[:, -1], ids[:, 100] = IDS.cls, IDS.sep, IDS.pad
    masked, labels = mask_tokens(ids, IDS, np.random.default_rng(1), 0.15)
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


def test_mlm_batches_structure_and_nsp_balance():
    shard = FakeShard([50, 3, 200, 17, 90, 2, 64] * 5)
    loader = MLMLoader([shard], IDS, seq_len=48, batch_size=64, seed=3)
    nsp = []
    for i in range(20):
        b = loader.batch(i)
        ids, tt, am, lab = b["input_ids"], b["token_type_ids"], b["attention_mask"], b["mlm_labels"]
        assert ids.shape == (64, 48) and ids.dtype == torch.int64
        assert (ids[:, 0] == IDS.cls).all()
        orig = torch.where(lab != IGNORE_INDEX, lab, ids)
        n_real = am.sum(1)
        for row in range(64):
            r = orig[row, : n_real[row]]
            seps = (r == IDS.sep).nonzero().flatten()
            assert len(seps) == 2 and seps[1] == n_real[row] - 1
            assert (tt[row, : seps[0] + 1] == 0).all() and (tt[row, seps[0] + 1 : n_real[row]] == 1).all()
            assert (ids[row, n_real[row]:] == IDS.pad).all() and not am[row, n_real[row]:].any()
            a, b_ = r[1 : seps[0]], r[seps[0] + 1 : -1]
            assert len(a) >= 1 and len(b_) >= 1
            is_next = bool(b_[0] == a[-1] + 1)  # fake docs hold consecutive ids
            assert is_next == (int(b["nsp_labels"][row]) == 0)
        nsp.append(b["nsp_labels"].float().mean().item())
    assert abs(np.mean(nsp) - 0.5) < 0.05


def test_batches_are_a_function_of_index_and_resume():
    shard = FakeShard([40, 80, 120, 33])
    a = MLMLoader([shard], IDS, seq_len=32, batch_size=4, seed=1)
    it = iter(a)
    first = [next(it) for _ in range(5)]
    b = MLMLoader([shard], IDS, seq_len=32, batch_size=4, seed=1)
    b.load_state_dict({**a.state_dict(), "next_batch": 3})
    again = next(iter(b))
    for k in first[3]:
        assert torch.equal(first[3][k], again[k])
    other_seed = MLMLoader([shard], IDS, seq_len=32, batch_size=4, seed=2).batch(3)
    assert not torch.equal(other_seed["input_ids"], first[3]["input_ids"])
    with pytest.raises(ValueError, match="seed"):
        MLMLoader([shard], IDS, seq_len=32, batch_size=4, seed=9).load_state_dict(a.state_dict())


def test_causal_targets_are_inputs_shifted_by_one():
    shard = FakeShard([300] + [5] * 60)
    loader = CausalLoader([shard], seq_len=64, batch_size=16, seed=0)
    b = loader.batch(0)
    x, y = b["input_ids"], b["labels"]
    assert x.shape == y.shape == (16, 64)
    valid = y != IGNORE_INDEX
    assert torch.equal(x[:, 1:][valid[:, :-1]], y[:, :-1][valid[:, :-1]])
    assert (y[valid] == x[valid] + 1).all()  # consecutive ids inside one document
    n_valid = valid.sum(1)
    assert ((n_valid == 4) | (n_valid == 64)).all(), "a row is one document: 5-token docs give 4 targets"
    assert (n_valid == 4).any() and (n_valid == 64).any()


def test_ranks_draw_different_batches_and_bad_rank_rejected():
    shard = FakeShard([500] * 4)
    r0 = CausalLoader([shard], seq_len=16, batch_size=8, rank=0, world_size=2).batch(0)
    r1 = CausalLoader([shard], seq_len=16, batch_size=8, rank=1, world_size=2).batch(0)
    assert not torch.equal(r0["input_ids"], r1["input_ids"])
    with pytest.raises(ValueError, match="rank"):
        CausalLoader([shard], seq_len=16, batch_size=8, rank=2, world_size=2)


def test_empty_and_degenerate_inputs_raise():
    with pytest.raises(ValueError, match="no token shards"):
        CausalLoader([], seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="no document"):
        CausalLoader([FakeShard([1, 1])], seq_len=8, batch_size=2)
    with pytest.raises(ValueError, match="two documents"):
        MLMLoader([FakeShard([30])], IDS, seq_len=16, batch_size=2)
    with pytest.raises(ValueError, match="mlm_probability"):
        MLMLoader([FakeShard([30, 30])], IDS, seq_len=16, batch_size=2, mlm_probability=1.5)
