"""Data loaders over token shards: the native :class:`TokenLoader` (C++, ``csrc/loader``) and, re-exported from
:mod:`bigmodel_fast.data.loader_reference`, the Python reference loaders it is tested against bit for bit.

:class:`TokenLoader` memory-maps many shards, validates every header and offset, and builds batches on worker
threads (GIL released) into a bounded ring of ``prefetch`` slots. Batch ``i`` is a pure function of
``(seed, rank, world_size, i)``, so the output is identical for any ``num_threads``, the loader position is one
integer and resuming is exact. The algorithm (samples, epochs, sharding across ranks, the counter-based RNG,
packing and masking) is specified in :mod:`bigmodel_fast.data.loader_reference`; in short:

* causal: fixed windows of ``seq_len + 1`` tokens of the concatenated shards; an epoch is a seeded permutation of
  all windows. ``pack=True`` adds ``position_ids`` (restart per document), ``cu_seqlens`` (int32) and
  ``max_seqlen`` for varlen attention, and ignores labels whose target starts a new document.
* mlm: documents are cut into chunks of ``seq_len - 3`` tokens; an epoch is a seeded permutation of all chunks.
  Each chunk becomes ``[CLS] A [SEP] B [SEP]`` with NSP (50% random B from another document) and dynamic
  80/10/10 masking (a new mask each epoch), optionally whole-word.
* ``len(loader)`` = full batches per rank per epoch; iteration never ends; ``loader.epoch`` is the current epoch.
"""

from __future__ import annotations

import atexit
import weakref
from typing import Iterator

import numpy as np
import torch

from .args import check_int
from .loader_config import LoaderSettings
from .loader_reference import (  # noqa: F401  (re-exported: the reference API)
    IGNORE_INDEX,
    CausalLoader,
    Corpus,
    MLMLoader,
    SpecialIds,
    checked_next_batch,
    loader_state,
    mask_tokens,
)
from .shards import resolve_shard_paths

__all__ = [
    "IGNORE_INDEX",
    "LoaderSettings",
    "TokenLoader",
    "CausalLoader",
    "MLMLoader",
    "Corpus",
    "SpecialIds",
    "mask_tokens",
    "resolve_shard_paths",
]

_LIVE: "weakref.WeakSet[TokenLoader]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:  # join worker threads before the interpreter tears down
    for loader in list(_LIVE):
        loader.close()


class TokenLoader:
    """Native C++ loader: causal windows or BERT MLM/NSP batches from token shards.

    Args (the defaults are :class:`LoaderSettings`'s; ``self.settings`` holds the checked values, which become the
    one ``_C.LoaderConfig`` the native core is built from):
        shards: a directory (every ``*.bin``), a shard prefix / ``.bin`` path, :class:`Shard` objects, or a list
            (:func:`~bigmodel_fast.data.shards.resolve_shard_paths`).
        seq_len: tokens per row (causal rows read ``seq_len + 1`` tokens).
        batch_size: rows per batch.
        mode: ``"causal"`` (GPT) or ``"mlm"`` (BERT).
        seed, rank, world_size: batch ``i`` of rank ``r`` is a pure function of these and ``i``; ranks get
            disjoint shares that together cover each epoch.
        num_threads: worker threads (the output does not depend on it).
        prefetch: ring slots: at most this many batches are built ahead.
        mlm_probability: fraction of (non-special) tokens selected for masking.
        whole_word_mask: select whole words (needs ``tokenizer`` or ``word_start``).
        nsp: next-sentence prediction pairs (50% random B) and ``nsp_labels``.
        pack: causal: ``position_ids``/``cu_seqlens``/``max_seqlen`` per document; mlm: ``cu_seqlens`` per row.
        tokenizer: any :class:`~bigmodel_fast.data.tokenizer_base.BaseTokenizer` (SentencePiece or HF), for the
            special ids (its pad/cls/sep/mask roles; every special id is never masked nor drawn as a random
            replacement), vocab size and word starts.
        special_ids: :class:`SpecialIds` (default: from ``tokenizer``, else the SentencePiece ids 0..6 and the
            shards' vocab_size).
        word_start: (vocab_size,) bool table (default ``tokenizer.word_start_mask()`` when whole-word masking).
        pin_memory: pin the tensors (default: when CUDA is available).
        vocab_size: the model's vocabulary (default: ``tokenizer.vocab_size``, else none). When known, a shard
            header with a larger vocab_size is rejected and every id is scanned once at open (~25 ms per 100M
            tokens from the page cache), so a bad id fails here rather than at some later batch.

    Iterating yields dicts of tensors (zero-copy views of the C++ buffers; ``max_seqlen`` is a Python int):
    causal ``input_ids``, ``labels`` (+ ``position_ids``, ``cu_seqlens``, ``max_seqlen`` with ``pack``); mlm
    ``input_ids``, ``token_type_ids``, ``attention_mask``, ``mlm_labels`` (-100 except at masked positions),
    ``nsp_labels`` (with ``nsp``) (+ ``cu_seqlens``, ``max_seqlen`` with ``pack``).

    Raises:
        ValueError: an invalid argument (the message names it).
        ShardFormatError: a missing, truncated, inconsistent or non-regular shard file (names the file, the
            problem, the expected value and a hint), a header vocab_size above ``vocab_size``, or a token id >= the
            shard's vocab_size (names the file, token offset and id; at open when ``vocab_size`` is known, else
            while reading the batch that holds it).
    """

    def __init__(self, shards, *, seq_len: int, batch_size: int, mode: str = LoaderSettings.mode,
                 seed: int = LoaderSettings.seed, rank: int = LoaderSettings.rank,
                 world_size: int = LoaderSettings.world_size, num_threads: int = LoaderSettings.num_threads,
                 prefetch: int = LoaderSettings.prefetch, mlm_probability: float = LoaderSettings.mlm_probability,
                 whole_word_mask: bool = LoaderSettings.whole_word_mask, nsp: bool = LoaderSettings.nsp,
                 pack: bool = LoaderSettings.pack, tokenizer=None, special_ids: SpecialIds | None = None,
                 word_start: np.ndarray | None = None, pin_memory: bool | None = None, vocab_size: int | None = None):
        from .. import _C

        settings = LoaderSettings(
            seq_len=seq_len, batch_size=batch_size, mode=mode, seed=seed, rank=rank, world_size=world_size,
            num_threads=num_threads, prefetch=prefetch, mlm_probability=mlm_probability,
            whole_word_mask=whole_word_mask, nsp=nsp, pack=pack).checked()
        if vocab_size is None and tokenizer is not None:
            vocab_size = tokenizer.vocab_size
        model_vocab = 0 if vocab_size is None else check_int("vocab_size", vocab_size, 1)
        if special_ids is None and tokenizer is not None:
            special_ids = SpecialIds.from_tokenizer(tokenizer, mlm=settings.mode == "mlm")
        if whole_word_mask and word_start is None:
            if tokenizer is None:
                raise ValueError("whole_word_mask=True needs tokenizer= or word_start= (the word-start table)")
            word_start = tokenizer.word_start_mask()
        if word_start is not None:
            word_start = np.ascontiguousarray(word_start, dtype=np.uint8)
            if word_start.ndim != 1:
                raise ValueError(f"word_start must be a 1-D (vocab_size,) bool array, got shape {word_start.shape}")

        paths = resolve_shard_paths(shards)
        self.settings = settings
        self.mode, self.seq_len, self.batch_size = settings.mode, settings.seq_len, settings.batch_size
        self.seed, self.rank, self.world_size = settings.seed, settings.rank, settings.world_size
        self.mlm_probability, self.whole_word_mask, self.nsp, self.pack = (
            settings.mlm_probability, settings.whole_word_mask, settings.nsp, settings.pack)
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else bool(pin_memory)
        self.paths = paths
        ids = special_ids or SpecialIds.fixed()  # vocab_size 0: the shards' own
        self._core = None
        self._core = _C.TokenLoaderCore(paths, settings.native(ids, word_start=word_start, model_vocab=model_vocab))
        self.special_ids = special_ids or SpecialIds.fixed(int(self._core.shard_vocab_size))
        _LIVE.add(self)

    # ------------------------------------------------------------------------------------------------ batches

    def _to_torch(self, arrays: dict) -> dict:
        out = {}
        for k, v in arrays.items():
            if isinstance(v, np.ndarray):
                t = torch.from_numpy(v)
                out[k] = t.pin_memory() if self.pin_memory else t
            else:
                out[k] = v
        return out

    def batch(self, index: int) -> dict:
        """Batch ``index`` built on the calling thread (does not move the iteration position)."""
        return self._to_torch(self._core.batch(check_int("index", index, 0)))

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        return self._to_torch(self._core.next())

    @property
    def next_batch(self) -> int:
        """Index of the batch the next ``next()`` returns."""
        return int(self._core.position)

    @property
    def num_samples(self) -> int:
        """Samples (causal windows or MLM chunks) per epoch, over all ranks."""
        return int(self._core.num_samples)

    @property
    def num_tokens(self) -> int:
        return int(self._core.num_tokens)

    def __len__(self) -> int:
        """Full batches per rank per epoch (iteration itself never stops)."""
        return self.num_samples // (self.batch_size * self.world_size)

    @property
    def epoch(self) -> int:
        """Epoch of the first example of the next batch."""
        return (self.next_batch * self.world_size + self.rank) * self.batch_size // self.num_samples

    def sample_of(self, index: int, example: int) -> tuple[int, int]:
        """``(epoch, sample)`` that fill row ``example`` of batch ``index`` (sample = window or chunk index)."""
        return tuple(self._core.sample_of(index, example))

    # ------------------------------------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        return loader_state(self)

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where ``state`` (from :meth:`state_dict`, or the reference loaders') stopped."""
        self._core.seek(checked_next_batch(self, state))

    def close(self) -> None:
        """Join the worker threads (idempotent; iterating again restarts them)."""
        if self._core is not None:
            self._core.close()

    def __enter__(self) -> "TokenLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return (f"TokenLoader(mode={self.mode!r}, shards={len(self.paths)}, seq_len={self.seq_len}, "
                f"batch_size={self.batch_size}, samples/epoch={self.num_samples}, next_batch={self.next_batch})")
