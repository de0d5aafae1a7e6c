"""Python reference data loaders over token shards.

Two batch makers, both *stateless per batch*: batch ``i`` is a pure function of ``(seed, rank, i)``, so the
loader position is one integer and resuming a run is exact (the trainer stores ``next_batch``).

- :class:`CausalLoader`: random windows of ``seq_len + 1`` tokens for next-token prediction.
- :class:`MLMLoader`: BERT pairs ``[CLS] A [SEP] B [SEP]`` with NSP labels (50% random B from another document)
  and dynamic 15% masking with the 80/10/10 rule; special tokens are never masked.

The native C++ loader (``csrc/loader``) replaces these on the hot path; these stay as the reference the tests
compare it with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch

IGNORE_INDEX = -100


class ShardLike(Protocol):
    tokens: np.ndarray  # (num_tokens,) uint16/uint32
    offsets: np.ndarray  # (num_docs + 1,) int64


class Corpus:
    """A read-only view of many shards as one list of documents.

    Args:
        shards: objects with ``tokens`` (N,) and ``offsets`` (D + 1,) arrays, e.g. :class:`~bigmodel_fast.data.shards.Shard`.
        min_doc_len: documents shorter than this are not sampled.
    """

    def __init__(self, shards: Sequence[ShardLike], min_doc_len: int = 1):
        if not shards:
            raise ValueError("no token shards given: expected at least one .bin/.idx pair (run `bmf prepare` first)")
        self.shards = list(shards)
        shard_ids, doc_ids, lengths = [], [], []
        for s, shard in enumerate(self.shards):
            lens = np.diff(np.asarray(shard.offsets, dtype=np.int64))
            keep = np.nonzero(lens >= min_doc_len)[0]
            shard_ids.append(np.full(len(keep), s, dtype=np.int64))
            doc_ids.append(keep.astype(np.int64))
            lengths.append(lens[keep])
        self.shard_of = np.concatenate(shard_ids)  # (D,)
        self.doc_of = np.concatenate(doc_ids)  # (D,)
        self.lengths = np.concatenate(lengths)  # (D,)
        if len(self.lengths) == 0:
            raise ValueError(f"the shards hold no document of at least {min_doc_len} tokens")
        self.cum_tokens = np.cumsum(self.lengths)  # (D,) for length-weighted sampling
        self.num_tokens = int(self.cum_tokens[-1])

    def __len__(self) -> int:
        return len(self.lengths)

    def doc(self, i: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Token ids of document ``i`` (a slice ``[start, stop)`` of it), as int64."""
        shard = self.shards[self.shard_of[i]]
        base = int(shard.offsets[self.doc_of[i]])
        stop = int(self.lengths[i]) if stop is None else stop
        return np.asarray(shard.tokens[base + start : base + stop], dtype=np.int64)

    def sample_docs(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` document indices drawn with probability proportional to their length."""
        return np.searchsorted(self.cum_tokens, rng.integers(0, self.num_tokens, size=n), side="right")


class _BatchMaker:
    """Shared iteration and state handling: subclasses implement ``batch(index)``."""

    def __init__(self, batch_size: int, seed: int, rank: int, world_size: int):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.next_batch = 0

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.rank, self.world_size, index])

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            b = self.batch(self.next_batch)
            self.next_batch += 1
            yield b

    def state_dict(self) -> dict:
        return {"next_batch": self.next_batch, "seed": self.seed, "rank": self.rank, "world_size": self.world_size}

    def load_state_dict(self, state: dict) -> None:
        for key in ("seed", "rank", "world_size"):
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"loader state was saved with {key}={state.get(key)!r} but this loader has {key}={getattr(self, key)!r}"
                )
        self.next_batch = int(state["next_batch"])


class CausalLoader(_BatchMaker):
    """Random windows for causal language modelling.

    Each example is ``seq_len + 1`` consecutive tokens of one document (shorter documents are padded), split into
    ``input_ids = w[:-1]`` and ``labels = w[1:]``; padded label positions are -100.

    Yields dicts with ``input_ids`` (B, S) int64 and ``labels`` (B, S) int64.
    """

    def __init__(self, shards: Sequence[ShardLike], *, seq_len: int, batch_size: int, pad_id: int = 0,
                 seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(batch_size, seed, rank, world_size)
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.corpus = Corpus(shards, min_doc_len=2)
        self.seq_len, self.pad_id = seq_len, pad_id

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        rng = self._rng(index)
        B, W = self.batch_size, self.seq_len + 1
        docs = self.corpus.sample_docs(rng, B)
        window = np.full((B, W), self.pad_id, dtype=np.int64)  # (B, S + 1)
        valid = np.zeros((B, W), dtype=bool)
        for row, d in enumerate(docs):
            n = int(self.corpus.lengths[d])
            start = int(rng.integers(0, max(n - W, 0) + 1))
            ids = self.corpus.doc(d, start, min(start + W, n))
            window[row, : len(ids)] = ids
            valid[row, : len(ids)] = True
        labels = np.where(valid[:, 1:], window[:, 1:], IGNORE_INDEX)
        return {"input_ids": torch.from_numpy(window[:, :-1].copy()), "labels": torch.from_numpy(labels)}


@dataclass(frozen=True)
class SpecialIds:
    """The ids the MLM loader needs from the tokenizer."""

    pad: int
    cls: int
    sep: int
    mask: int
    vocab_size: int
    special: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tok) -> "SpecialIds":
        return cls(tok.pad_id, tok.cls_id, tok.sep_id, tok.mask_id, tok.vocab_size, tuple(tok.special_ids))


def mask_tokens(input_ids: np.ndarray, ids: SpecialIds, rng: np.random.Generator,
                mlm_probability: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """BERT dynamic masking (80% [MASK], 10% random token, 10% unchanged) on a batch.

    Args:
        input_ids: (B, S) int64; special tokens and padding are never selected.
    Returns:
        ``(masked_ids, labels)``, both (B, S) int64; labels are -100 except at selected positions.
    """
    special = np.isin(input_ids, np.asarray(ids.special, dtype=np.int64))  # (B, S)
    selected = (rng.random(input_ids.shape) < mlm_probability) & ~special
    labels = np.where(selected, input_ids, IGNORE_INDEX)
    roll = rng.random(input_ids.shape)
    to_mask = selected & (roll < 0.8)
    to_random = selected & (roll >= 0.8) & (roll < 0.9)
    lo = max(ids.special) + 1  # random replacements are never special tokens
    random_ids = rng.integers(lo, ids.vocab_size, size=input_ids.shape)
    out = np.where(to_mask, ids.mask, input_ids)
    out = np.where(to_random, random_ids, out)
    return out, labels


class MLMLoader(_BatchMaker):
    """BERT pretraining batches: sentence-pair segments, NSP labels and dynamic masking.

    A segment pair takes a random span of one document and cuts it at a random point into A and B. With
    ``nsp=True``, half of the pairs replace B by a span of another document (NSP label 1 = "not next";
    0 = "is next"). The pair is ``[CLS] A [SEP] B [SEP]``, padded to ``seq_len``.

    Yields dicts: ``input_ids``, ``token_type_ids``, ``mlm_labels`` (B, S) int64, ``attention_mask`` (B, S) bool
    and, with NSP, ``nsp_labels`` (B,) int64.
    """

    def __init__(self, shards: Sequence[ShardLike], ids: SpecialIds, *, seq_len: int, batch_size: int,
                 mlm_probability: float = 0.15, nsp: bool = True, seed: int = 0, rank: int = 0, world_size: int = 1):
        super().__init__(batch_size, seed, rank, world_size)
        if seq_len < 5:
            raise ValueError(f"seq_len must be >= 5 for [CLS] A [SEP] B [SEP], got {seq_len}")
        if not 0.0 < mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        self.corpus = Corpus(shards, min_doc_len=2)
        if nsp and len(self.corpus) < 2:
            raise ValueError("NSP needs at least two documents of >= 2 tokens; pass nsp=False for a one-document corpus")
        self.ids, self.seq_len, self.mlm_probability, self.nsp = ids, seq_len, mlm_probability, nsp

    def _pair(self, rng: np.random.Generator, doc: int) -> tuple[np.ndarray, np.ndarray, int]:
        budget = self.seq_len - 3
        n = int(self.corpus.lengths[doc])
        span = min(n, budget)
        start = int(rng.integers(0, n - span + 1))
        cut = int(rng.integers(1, span)) if span > 1 else 1
        a = self.corpus.doc(doc, start, start + cut)
        if self.nsp and rng.random() < 0.5:
            other = doc
            while other == doc:
                other = int(self.corpus.sample_docs(rng, 1)[0])
            m = int(self.corpus.lengths[other])
            want = min(max(budget - len(a), 1), m)
            b_start = int(rng.integers(0, m - want + 1))
            return a, self.corpus.doc(other, b_start, b_start + want), 1
        return a, self.corpus.doc(doc, start + cut, start + span), 0

    def batch(self, index: int) -> dict[str, torch.Tensor]:
        rng = self._rng(index)
        B, S, ids = self.batch_size, self.seq_len, self.ids
        input_ids = np.full((B, S), ids.pad, dtype=np.int64)  # (B, S)
        token_type = np.zeros((B, S), dtype=np.int64)
        nsp_labels = np.zeros(B, dtype=np.int64)
        for row, doc in enumerate(self.corpus.sample_docs(rng, B)):
            a, b, nsp_labels[row] = self._pair(rng, int(doc))
            b = b[: max(S - 3 - len(a), 0)]
            n = len(a) + len(b) + 3
            input_ids[row, :n] = np.concatenate([[ids.cls], a, [ids.sep], b, [ids.sep]])
            token_type[row, len(a) + 2 : n] = 1
        attention_mask = input_ids != ids.pad
        masked, labels = mask_tokens(input_ids, ids, rng, self.mlm_probability)
        out = {
            "input_ids": torch.from_numpy(masked),
            "token_type_ids": torch.from_numpy(token_type),
            "attention_mask": torch.from_numpy(attention_mask),
            "mlm_labels": torch.from_numpy(labels),
        }
        if self.nsp:
            out["nsp_labels"] = torch.from_numpy(nsp_labels)
        return out
