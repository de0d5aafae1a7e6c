"""Python reference data loaders over token shards: the specification the native loader is tested against.

:class:`CausalLoader` and :class:`MLMLoader` implement *the same algorithm with the same counter-based RNG* as the
C++ loader (``csrc/loader``, wrapped by :class:`bigmodel_fast.data.loader.TokenLoader`), so the tests assert that
the native batches are bit-identical to these. They are slow (a Python loop per example, numpy per batch) and
meant for tests, debugging and ``loader="python"`` in the trainer.

Epochs and randomness (shared with the native loader)
-----------------------------------------------------
* **Samples.** causal: the shards, concatenated in the given order, form one token stream of ``T`` tokens;
  sample ``w`` is the window ``stream[w*S : w*S + S + 1]`` (``S = seq_len``; consecutive windows share one token,
  so every token but the first is a target exactly once per epoch), ``N = (T - 1) // S`` windows.
  mlm: every document with >= 2 tokens is cut into chunks of ``S - 3`` tokens (a 1-token tail is dropped);
  sample ``c`` is chunk ``c``, ``N`` = number of chunks.
* **Epochs.** The loader reads an endless sequence of sample slots ``p = 0, 1, 2, ...``; slot ``p`` belongs to
  epoch ``p // N`` and holds sample ``perm_epoch(p % N)``, where ``perm_epoch`` is a seeded bijection of
  ``[0, N)`` (a 4-round Feistel network with cycle walking keyed by ``(seed, epoch)``). So every epoch visits
  every sample exactly once, in a new order.
* **Batches and ranks.** Batch ``i`` of rank ``r`` (of ``world_size``) holds slots
  ``p = (i * world_size + r) * batch_size + e`` for ``e < batch_size``: ranks take interleaved, disjoint batches
  and together cover each epoch exactly. ``len(loader)`` is ``N // (batch_size * world_size)`` (full batches per
  rank per epoch); iteration never stops (a batch may straddle two epochs).
* **Randomness.** Every random choice is ``mix(key ^ counter)`` with ``mix`` the splitmix64 output function and
  ``key = mix(mix(mix(mix(seed) ^ epoch) ^ sample) ^ purpose)``. Because the key holds the epoch, MLM masking is
  dynamic (a new mask each epoch); because it holds neither the rank nor the batch index, the examples of an epoch
  do not depend on ``world_size``. Nothing depends on the thread count.

causal examples
    ``input_ids = window[:-1]``, ``labels = window[1:]``. With ``pack=True`` rows also get ``position_ids``
    restarting at 0 at every document start, ``cu_seqlens`` (int32, over the flattened ``B * S`` tokens: every row
    start and every document start inside a row) and ``max_seqlen``; a label whose target is the first token of a
    new document is -100 (the model cannot see the previous document, so that target is noise).
mlm examples
    Chunk of length ``L`` with cut ``1 + u % (L - 1)``: ``A = chunk[:cut]``; ``B = chunk[cut:]`` (NSP label 0) or,
    with ``nsp=True`` and the top bit of the NSP hash set (50%), a span of the same length (or the whole document
    if shorter) at a random start of another document (label 1), the other document being the owner of a random
    chunk (up to 64 tries to differ, then the next document). The row is ``[CLS] A [SEP] B [SEP]`` padded with
    ``[PAD]``; ``token_type_ids`` are 1 on ``B [SEP]``. Masking: position ``j`` (or, with whole-word masking, the
    first piece of its word: a piece whose id starts a word or follows a special token) draws a 16-bit uniform
    ``u`` (bits ``16 * (h % 4)`` of ``mix(select_key ^ (h // 4))``); selected iff ``u < floor(p * 65536 + 0.5)``
    and the token is not special. A selected token gets ``r = mix(roll_key ^ j)``: ``r % 10 < 8`` -> ``[MASK]``,
    ``== 8`` -> random id ``nonspecial[(r >> 16) % len(nonspecial)]`` (``nonspecial``: the ids of
    ``[0, vocab_size)`` not in ``special``, ascending; ``7 + ...`` for the SentencePiece ids 0..6), else unchanged.
    ``mlm_labels`` hold the original id at selected positions, -100 elsewhere. With ``pack=True`` rows also get
    ``cu_seqlens``/``max_seqlen``: each row is its real tokens plus (if any) one padding segment.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch

from ..nn.heads import IGNORE_INDEX
from .loader_config import LoaderSettings as _Defaults
from .shards import Shard, check_token_ids, check_vocab
from .special_tokens import SPECIAL

__all__ = [
    "IGNORE_INDEX",
    "Corpus",
    "CausalLoader",
    "MLMLoader",
    "SpecialIds",
    "mask_tokens",
    "mix",
    "mix_array",
    "sample_key",
    "purpose_key",
    "epoch_permutation",
]

_M64 = (1 << 64) - 1
# Purposes (keep in sync with csrc/loader/rng.h).
PERMUTATION, CUT, NSP, OTHER, B_START, SELECT, ROLL = 1, 2, 3, 4, 5, 6, 7
_MAX_OTHER_ATTEMPTS = 64


# ------------------------------------------------------------------------------------------------ randomness


def mix(z: int) -> int:
    """splitmix64's output function on a Python int (taken mod 2**64)."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


_U = np.uint64


def mix_array(z: np.ndarray) -> np.ndarray:
    """:func:`mix` elementwise over a uint64 array (numpy array arithmetic wraps mod 2**64)."""
    z = np.asarray(z, dtype=np.uint64) + _U(0x9E3779B97F4A7C15)
    z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return z ^ (z >> _U(31))


def sample_key(seed: int, epoch: int, item: int) -> int:
    """Key of one sample: ``mix(mix(mix(seed) ^ epoch) ^ item)``."""
    return mix(mix(mix(seed & _M64) ^ epoch) ^ item)


def purpose_key(key: int, purpose: int) -> int:
    return mix(key ^ purpose)


def epoch_permutation(seed: int, epoch: int, n: int, slots: np.ndarray) -> np.ndarray:
    """The seeded bijection of ``[0, n)`` for one epoch, applied to ``slots`` (int64 array) -> int64 array.

    A 4-round balanced Feistel network over ``2 * half`` bits (the smallest even width with ``2**(2*half) >= n``,
    at least 2) with cycle walking: values outside ``[0, n)`` are fed through the network again.
    """
    bits = max(int(n - 1).bit_length(), 0) if n > 1 else 0
    half = 1 if bits <= 2 else (bits + 1) // 2
    mask = _U((1 << half) - 1)
    k = purpose_key(mix(mix(seed & _M64) ^ epoch), PERMUTATION)
    rounds = [_U(mix(k ^ r)) for r in range(4)]

    def feistel(x: np.ndarray) -> np.ndarray:
        left, right = x >> _U(half), x & mask
        for rk in rounds:
            left, right = right, left ^ (mix_array(rk ^ right) & mask)
        return (left << _U(half)) | right

    x = np.asarray(slots, dtype=np.uint64).copy()
    todo = np.ones(x.shape, dtype=bool)
    while todo.any():
        x[todo] = feistel(x[todo])
        todo = x >= _U(n)
    return x.astype(np.int64)


# ------------------------------------------------------------------------------------------------ corpus



def loader_state(loader) -> dict:
    """The resumable state of any loader here (native or reference): the next batch index and what fixes the
    batch sequence (seed, rank, world size)."""
    return {"next_batch": loader.next_batch, "seed": loader.seed, "rank": loader.rank, "world_size": loader.world_size}


def checked_next_batch(loader, state: dict) -> int:
    """``state["next_batch"]`` after checking that ``state`` was saved by a loader with the same seed and share."""
    for key in ("seed", "rank", "world_size"):
        if state.get(key) != getattr(loader, key):
            raise ValueError(f"loader state was saved with {key}={state.get(key)!r} but this loader has "
                             f"{key}={getattr(loader, key)!r}")
    next_batch = state.get("next_batch")
    if not isinstance(next_batch, int) or next_batch < 0:
        raise ValueError(f"loader state field 'next_batch' must be an int >= 0, got {next_batch!r}")
    return next_batch

class ShardLike(Protocol):
    tokens: np.ndarray  # (num_tokens,) uint16/uint32
    offsets: np.ndarray  # (num_docs + 1,) int64


class Corpus:
    """A read-only view of many shards as one token stream and as a list of documents.

    Args:
        shards: objects with ``tokens`` (N,) and ``offsets`` (D + 1,) arrays, e.g.
            :class:`~bigmodel_fast.data.shards.Shard`.
        min_doc_len: documents shorter than this are not listed in ``shard_of``/``doc_of``/``lengths``.
        vocab_size: the model's vocabulary, or None.

    Every id is checked once here (a vectorised scan): a :class:`~bigmodel_fast.data.shards.Shard` against its
    header's vocab_size, which must not exceed ``vocab_size``; other shard objects against ``vocab_size`` if given.
    A bad id raises :class:`~bigmodel_fast.data.shards.ShardFormatError` naming the file, token offset and id.
    """

    def __init__(self, shards: Sequence[ShardLike], min_doc_len: int = 1, vocab_size: int | None = None):
        if not shards:
            raise ValueError("no token shards given: expected at least one .bin/.idx pair (run `bmf prepare` first)")
        self.shards = list(shards)
        for i, shard in enumerate(self.shards):
            if isinstance(shard, Shard):
                check_vocab(shard, vocab_size)
            elif vocab_size is not None:
                check_token_ids(shard.tokens, shard.offsets, vocab_size, getattr(shard, "path", f"shard {i}"))
        sizes = [int(len(s.tokens)) for s in self.shards]
        self.shard_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)  # (num_shards + 1,)
        self.num_tokens = int(self.shard_start[-1])
        starts = [np.asarray(s.offsets, dtype=np.int64)[:-1] + self.shard_start[i] for i, s in enumerate(self.shards)]
        self.doc_starts = np.unique(np.concatenate(starts)) if starts else np.zeros(0, np.int64)  # stream positions
        shard_ids, doc_ids, lengths, begins = [], [], [], []
        for s, shard in enumerate(self.shards):
            off = np.asarray(shard.offsets, dtype=np.int64)
            lens = np.diff(off)
            keep = np.nonzero(lens >= min_doc_len)[0]
            shard_ids.append(np.full(len(keep), s, dtype=np.int64))
            doc_ids.append(keep.astype(np.int64))
            lengths.append(lens[keep])
            begins.append(off[keep])
        self.shard_of = np.concatenate(shard_ids)  # (D,)
        self.doc_of = np.concatenate(doc_ids)  # (D,)
        self.lengths = np.concatenate(lengths)  # (D,)
        self.begins = np.concatenate(begins)  # (D,) offset of each listed document inside its shard

    def __len__(self) -> int:
        return len(self.lengths)

    def doc(self, i: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Token ids of listed document ``i`` (a slice ``[start, stop)`` of it), as int64."""
        shard = self.shards[self.shard_of[i]]
        base = int(self.begins[i])
        stop = int(self.lengths[i]) if stop is None else stop
        return np.asarray(shard.tokens[base + start : base + stop], dtype=np.int64)

    def stream(self, start: int, n: int) -> np.ndarray:
        """Tokens ``[start, start + n)`` of the concatenated stream, int64."""
        out = np.empty(n, dtype=np.int64)
        t = 0
        s = int(np.searchsorted(self.shard_start, start, side="right")) - 1
        while t < n:
            local = start + t - int(self.shard_start[s])
            take = min(n - t, len(self.shards[s].tokens) - local)
            if take > 0:
                out[t : t + take] = self.shards[s].tokens[local : local + take]
                t += take
            s += 1
        return out


# ------------------------------------------------------------------------------------------------ loaders


class _BatchMaker:
    """Shared sampling, iteration and state handling: subclasses implement ``batch(index)``."""

    num_samples: int

    def __init__(self, batch_size: int, seed: int, rank: int, world_size: int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.next_batch = 0

    def samples(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(epochs, items)``, both (batch_size,) int64: the epoch and sample of every example of batch ``index``."""
        p = (index * self.world_size + self.rank) * self.batch_size + np.arange(self.batch_size, dtype=np.int64)
        epochs, slots = p // self.num_samples, p % self.num_samples
        items = np.empty_like(slots)
        for ep in np.unique(epochs):
            sel = epochs == ep
            items[sel] = epoch_permutation(self.seed, int(ep), self.num_samples, slots[sel])
        return epochs, items

    def __len__(self) -> int:
        """Full batches per rank per epoch (iteration itself never stops)."""
        return self.num_samples // (self.batch_size * self.world_size)

    @property
    def epoch(self) -> int:
        """Epoch of the first example of the next batch."""
        return (self.next_batch * self.world_size + self.rank) * self.batch_size // self.num_samples

    def batch(self, index: int) -> dict:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict]:
        while True:
            b = self.batch(self.next_batch)
            self.next_batch += 1
            yield b

    def state_dict(self) -> dict:
        return loader_state(self)

    def load_state_dict(self, state: dict) -> None:
        self.next_batch = checked_next_batch(self, state)


class CausalLoader(_BatchMaker):
    """Fixed windows of ``seq_len + 1`` tokens of the concatenated shards, in a seeded order per epoch.

    Yields dicts with ``input_ids`` and ``labels`` (B, S) int64 and, with ``pack=True``, ``position_ids`` (B, S)
    int64, ``cu_seqlens`` (N + 1,) int32 and ``max_seqlen`` (int). See the module docstring.
    ``vocab_size`` (the model's vocabulary) is checked against the shards when they are opened (see :class:`Corpus`).
    """

    def __init__(self, shards: Sequence[ShardLike], *, seq_len: int, batch_size: int, pad_id: int = SPECIAL.pad,
                 seed: int = _Defaults.seed, rank: int = _Defaults.rank, world_size: int = _Defaults.world_size,
                 pack: bool = _Defaults.pack, vocab_size: int | None = None):
        super().__init__(batch_size, seed, rank, world_size)
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.corpus = Corpus(shards, vocab_size=vocab_size)
        if self.corpus.num_tokens < seq_len + 1:
            raise ValueError(f"seq_len={seq_len} needs windows of seq_len + 1 tokens but the shards hold only "
                             f"{self.corpus.num_tokens} tokens")
        self.seq_len, self.pad_id, self.pack = seq_len, pad_id, pack
        self.num_samples = (self.corpus.num_tokens - 1) // seq_len

    def batch(self, index: int) -> dict:
        B, S = self.batch_size, self.seq_len
        _, items = self.samples(index)
        window = np.stack([self.corpus.stream(int(w) * S, S + 1) for w in items])  # (B, S + 1)
        input_ids, labels = window[:, :-1].copy(), window[:, 1:].copy()
        out = {"input_ids": torch.from_numpy(input_ids), "labels": None}
        if self.pack:
            position_ids = np.empty((B, S), dtype=np.int64)
            cu, max_len = [], 0
            starts = self.corpus.doc_starts
            for row, w in enumerate(items):
                a = int(w) * S
                lo, hi = np.searchsorted(starts, [a + 1, a + S + 1])
                bounds = starts[lo:hi] - a  # document starts at relative positions 1..S
                labels[row, bounds - 1] = IGNORE_INDEX
                seg = np.concatenate([[0], bounds[bounds < S]])
                cu.extend(row * S + seg)
                lens = np.diff(np.concatenate([seg, [S]]))
                max_len = max(max_len, int(lens.max()))
                position_ids[row] = np.arange(S) - np.repeat(seg, lens)
            cu.append(B * S)
            out["position_ids"] = torch.from_numpy(position_ids)
            out["cu_seqlens"] = torch.tensor(cu, dtype=torch.int32)
            out["max_seqlen"] = max_len
        out["labels"] = torch.from_numpy(labels)
        return out


@dataclass(frozen=True)
class SpecialIds:
    """The ids the MLM loader needs from the tokenizer (vocab_size 0: the shards' own, native loader only)."""

    pad: int
    cls: int
    sep: int
    mask: int
    vocab_size: int
    special: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tok, mlm: bool = True) -> "SpecialIds":
        """From a tokenizer's roles; ``special`` is every special id of the tokenizer (``tok.all_special_ids``).

        ``mlm``: ValueError naming the tokenizer when it lacks a pad/cls/sep/mask role (MLM batches need all four);
        else (causal batches, which use none of them) a missing role is -1."""
        missing = [n for n in ("pad", "cls", "sep", "mask") if getattr(tok, f"{n}_id") is None]
        if missing and mlm:
            raise ValueError(f"{tok!r}: MLM batches need the special tokens {missing} (pad/cls/sep/mask roles), "
                             "which this tokenizer does not have")
        roles = [getattr(tok, f"{n}_id") for n in ("pad", "cls", "sep", "mask")]
        pad, cls_id, sep, mask = (-1 if r is None else r for r in roles)
        return cls(pad, cls_id, sep, mask, tok.vocab_size, tuple(tok.all_special_ids))

    @classmethod
    def fixed(cls, vocab_size: int = 0) -> "SpecialIds":
        """The fixed special ids of bigmodel_fast tokenizers (:data:`~bigmodel_fast.data.special_tokens.SPECIAL`)."""
        return cls(SPECIAL.pad, SPECIAL.cls, SPECIAL.sep, SPECIAL.mask, vocab_size, SPECIAL.ids)


@functools.lru_cache(maxsize=8)
def non_special_ids(ids: SpecialIds) -> np.ndarray:
    """(N,) int64, read-only: the ids of ``[0, vocab_size)`` that are not special, ascending (random MLM
    replacements). Built once per ``SpecialIds`` (cached), not per batch.

    Replacement ``k`` is ``non_special_ids(ids)[k]``; for the SentencePiece ids 0..6 that is ``7 + k``."""
    keep = np.ones(ids.vocab_size, dtype=bool)  # (V,)
    special = np.asarray([s for s in ids.special if 0 <= s < ids.vocab_size], dtype=np.int64)
    keep[special] = False
    out = np.flatnonzero(keep).astype(np.int64)
    out.flags.writeable = False
    return out


def select_threshold(mlm_probability: float) -> int:
    """The 16-bit selection threshold ``floor(p * 65536 + 0.5)``; ValueError outside [1, 65535]."""
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    thr = int(math.floor(mlm_probability * 65536.0 + 0.5))
    if not 1 <= thr <= 65535:
        raise ValueError(f"mlm_probability must be in [1/65536, 65535/65536] (masking uses 16-bit uniforms), "
                         f"got {mlm_probability}")
    return thr


def mask_tokens(input_ids: np.ndarray, ids: SpecialIds, keys: np.ndarray, mlm_probability: float = 0.15,
                word_start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """BERT dynamic masking (80% [MASK], 10% random token, 10% unchanged) on a batch, vectorised.

    Args:
        input_ids: (B, S) int64; special tokens (padding included) are never selected.
        keys: (B,) uint64 sample keys (:func:`sample_key`); the selection and roll keys derive from them.
        word_start: optional (V,) bool table for whole-word masking: a word is a piece whose id starts a word
            (or that follows a special token) plus the continuation pieces after it; it is selected as a whole.
    Returns:
        ``(masked_ids, labels)``, both (B, S) int64; labels are -100 except at selected positions.
    """
    thr = select_threshold(mlm_probability)
    input_ids = np.asarray(input_ids, dtype=np.int64)
    B, S = input_ids.shape
    keys = np.asarray(keys, dtype=np.uint64).reshape(B, 1)
    special = np.isin(input_ids, np.asarray(ids.special, dtype=np.int64))  # (B, S)
    pos = np.broadcast_to(np.arange(S, dtype=np.int64), (B, S))
    if word_start is not None:
        table = np.asarray(word_start, dtype=bool)
        in_table = input_ids < len(table)
        starts = np.zeros((B, S), dtype=bool)
        starts[in_table] = table[input_ids[in_table]]
        prev_special = np.concatenate([np.ones((B, 1), dtype=bool), special[:, :-1]], axis=1)
        is_head = ~special & (starts | prev_special)
        head = np.maximum.accumulate(np.where(is_head, pos, 0), axis=1)  # (B, S) first piece of each word
    else:
        head = pos
    select_key = mix_array(keys ^ _U(SELECT))  # (B, 1)
    roll_key = mix_array(keys ^ _U(ROLL))
    h = head.astype(np.uint64)
    bits = mix_array(select_key ^ (h >> _U(2)))
    u = (bits >> (_U(16) * (h & _U(3)))) & _U(0xFFFF)
    selected = (u < _U(thr)) & ~special
    labels = np.where(selected, input_ids, IGNORE_INDEX)
    r = mix_array(roll_key ^ pos.astype(np.uint64))
    roll = r % _U(10)
    # random replacements are never special tokens: the k-th non-special id of [0, vocab_size)
    nonspecial = non_special_ids(ids)
    if len(nonspecial) == 0:
        raise ValueError(f"vocab_size={ids.vocab_size} leaves no non-special id for random replacement")
    random_ids = nonspecial[((r >> _U(16)) % _U(len(nonspecial))).astype(np.int64)]
    out = np.where(selected & (roll < _U(8)), ids.mask, input_ids)
    out = np.where(selected & (roll == _U(8)), random_ids, out)
    return out, labels


class MLMLoader(_BatchMaker):
    """BERT pretraining batches: chunk pairs ``[CLS] A [SEP] B [SEP]``, NSP labels and dynamic masking.

    Yields dicts: ``input_ids``, ``token_type_ids``, ``mlm_labels`` (B, S) int64, ``attention_mask`` (B, S) bool,
    with NSP ``nsp_labels`` (B,) int64 (1 = B is a random span of another document), and with ``pack=True``
    ``cu_seqlens`` (int32) and ``max_seqlen``. See the module docstring for the exact algorithm.
    ``vocab_size`` (the model's vocabulary) is checked against the shards when they are opened (see :class:`Corpus`).
    """

    def __init__(self, shards: Sequence[ShardLike], ids: SpecialIds, *, seq_len: int, batch_size: int,
                 mlm_probability: float = _Defaults.mlm_probability, nsp: bool = _Defaults.nsp,
                 seed: int = _Defaults.seed, rank: int = _Defaults.rank, world_size: int = _Defaults.world_size,
                 whole_word_mask: bool = _Defaults.whole_word_mask, word_start: np.ndarray | None = None,
                 pack: bool = _Defaults.pack, vocab_size: int | None = None):
        super().__init__(batch_size, seed, rank, world_size)
        if seq_len < 5:
            raise ValueError(f"seq_len must be >= 5 for [CLS] A [SEP] B [SEP], got {seq_len}")
        select_threshold(mlm_probability)
        if whole_word_mask and word_start is None:
            raise ValueError("word_start: whole_word_mask=True needs the (vocab_size,) word-start table "
                             "(Tokenizer.word_start_mask())")
        self.corpus = Corpus(shards, min_doc_len=2, vocab_size=vocab_size)
        if len(self.corpus) == 0:
            raise ValueError("the shards hold no document of at least 2 tokens")
        if nsp and len(self.corpus) < 2:
            raise ValueError("NSP needs at least two documents of >= 2 tokens; "
                             "pass nsp=False for a one-document corpus")
        self.ids, self.seq_len, self.mlm_probability, self.nsp = ids, seq_len, mlm_probability, nsp
        self.word_start = np.asarray(word_start, dtype=bool) if whole_word_mask else None
        self.pack = pack
        budget = seq_len - 3
        self.cum_chunks = np.concatenate(
            [[0], np.cumsum((self.corpus.lengths + budget - 2) // budget)]).astype(np.int64)
        self.num_samples = int(self.cum_chunks[-1])

    def _doc_of_chunk(self, chunk: int) -> int:
        return int(np.searchsorted(self.cum_chunks, chunk, side="right")) - 1

    def batch(self, index: int) -> dict:
        B, S, ids = self.batch_size, self.seq_len, self.ids
        budget = S - 3
        epochs, chunks = self.samples(index)
        input_ids = np.full((B, S), ids.pad, dtype=np.int64)  # (B, S)
        token_type = np.zeros((B, S), dtype=np.int64)
        nsp_labels = np.zeros(B, dtype=np.int64)
        lengths = np.zeros(B, dtype=np.int64)
        keys = np.zeros(B, dtype=np.uint64)
        for row, (epoch, c) in enumerate(zip(epochs.tolist(), chunks.tolist())):
            ex = sample_key(self.seed, epoch, c)
            keys[row] = ex
            d = self._doc_of_chunk(c)
            begin = (c - int(self.cum_chunks[d])) * budget
            L = min(budget, int(self.corpus.lengths[d]) - begin)
            cut = 1 + purpose_key(ex, CUT) % (L - 1)
            a = self.corpus.doc(d, begin, begin + cut)
            if self.nsp and purpose_key(ex, NSP) >> 63:
                other_key, d2 = purpose_key(ex, OTHER), d
                for attempt in range(_MAX_OTHER_ATTEMPTS):
                    d2 = self._doc_of_chunk(mix(other_key ^ attempt) % self.num_samples)
                    if d2 != d:
                        break
                if d2 == d:
                    d2 = (d + 1) % len(self.corpus)
                m = int(self.corpus.lengths[d2])
                b_len = min(L - cut, m)
                b_start = purpose_key(ex, B_START) % (m - b_len + 1)
                b = self.corpus.doc(d2, b_start, b_start + b_len)
                nsp_labels[row] = 1
            else:
                b = self.corpus.doc(d, begin + cut, begin + L)
            n = len(a) + len(b) + 3
            input_ids[row, :n] = np.concatenate([[ids.cls], a, [ids.sep], b, [ids.sep]])
            token_type[row, len(a) + 2 : n] = 1
            lengths[row] = n
        attention_mask = np.arange(S)[None, :] < lengths[:, None]
        masked, labels = mask_tokens(input_ids, ids, keys, self.mlm_probability, self.word_start)
        out = {
            "input_ids": torch.from_numpy(masked),
            "token_type_ids": torch.from_numpy(token_type),
            "attention_mask": torch.from_numpy(attention_mask),
            "mlm_labels": torch.from_numpy(labels),
        }
        if self.nsp:
            out["nsp_labels"] = torch.from_numpy(nsp_labels)
        if self.pack:
            cu = []
            for row, n in enumerate(lengths.tolist()):
                cu.append(row * S)
                if n < S:
                    cu.append(row * S + n)
            cu.append(B * S)
            out["cu_seqlens"] = torch.tensor(cu, dtype=torch.int32)
            out["max_seqlen"] = int(np.maximum(lengths, S - lengths).max())
        return out
