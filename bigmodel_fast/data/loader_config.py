"""Loader settings: the one place of the token loaders' defaults, and the native loader's bound config.

:class:`LoaderSettings` holds what the native :class:`~bigmodel_fast.data.loader.TokenLoader` and the Python
reference loaders (:mod:`bigmodel_fast.data.loader_reference`) are built from; their keyword defaults are its
field defaults (``mode: str = LoaderSettings.mode``). :meth:`LoaderSettings.native` fills the C++ struct
``_C.LoaderConfig`` (named fields, bound with pybind11), which ``_C.TokenLoaderCore`` takes as one object; C++
checks every value again and raises ValueError naming the field, so a direct call cannot crash either.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .args import check_int, check_seed

__all__ = ["LoaderSettings", "MODES"]

MODES = ("causal", "mlm")


@dataclass(frozen=True)
class LoaderSettings:
    """How batches are cut and drawn (see :mod:`bigmodel_fast.data.loader_reference` for the algorithm).

    seq_len:          tokens per row (causal rows read ``seq_len + 1`` tokens; mlm needs >= 5).
    batch_size:       rows per batch.
    mode:             ``"causal"`` (GPT windows) or ``"mlm"`` (BERT MLM/NSP pairs).
    seed, rank, world_size: batch ``i`` of rank ``r`` is a pure function of these and ``i``.
    num_threads:      native worker threads (the output does not depend on it).
    prefetch:         native ring slots: at most this many batches are built ahead.
    mlm_probability:  fraction of (non-special) tokens selected for masking, in (0, 1).
    whole_word_mask:  select whole words (needs the word-start table).
    nsp:              next-sentence prediction pairs (50% random B) and ``nsp_labels``.
    pack:             causal: ``position_ids``/``cu_seqlens``/``max_seqlen`` per document; mlm: ``cu_seqlens``.
    """

    seq_len: int
    batch_size: int
    mode: str = "causal"
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    num_threads: int = 2
    prefetch: int = 4
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    nsp: bool = True
    pack: bool = True

    def checked(self) -> "LoaderSettings":
        """A copy with every field checked and converted to plain Python values.

        Raises ValueError naming the field and what was expected.
        """
        if self.mode not in MODES:
            raise ValueError(f"mode must be 'causal' or 'mlm', got {self.mode!r}")
        seq_len = check_int("seq_len", self.seq_len, 5 if self.mode == "mlm" else 1)
        batch_size = check_int("batch_size", self.batch_size, 1)
        world_size = check_int("world_size", self.world_size, 1)
        rank = check_int("rank", self.rank, 0)
        if rank >= world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        num_threads = check_int("num_threads", self.num_threads, 1)
        prefetch = check_int("prefetch", self.prefetch, 1)
        seed = check_seed(self.seed)
        p = self.mlm_probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < float(p) < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {p!r}")
        return dataclasses.replace(
            self, seq_len=seq_len, batch_size=batch_size, seed=seed, rank=rank, world_size=world_size,
            num_threads=num_threads, prefetch=prefetch, mlm_probability=float(p),
            whole_word_mask=bool(self.whole_word_mask), nsp=bool(self.nsp), pack=bool(self.pack))

    def native(self, ids: Any, *, word_start: np.ndarray | None = None, model_vocab: int = 0) -> Any:
        """The ``_C.LoaderConfig`` for these settings.

        ids: a :class:`~bigmodel_fast.data.loader_reference.SpecialIds` (pad/cls/sep/mask, vocab_size (0 = the
            shards'), special). word_start: (vocab_size,) bool table for whole-word masking, or None.
        model_vocab: the model's vocabulary (> 0: shard headers and ids are checked against it at open).
        """
        from bigmodel_fast import _C  # lazily: the settings import without a build

        cfg = _C.LoaderConfig()
        for f in dataclasses.fields(self):
            setattr(cfg, f.name, getattr(self, f.name))
        cfg.whole_word_mask = self.whole_word_mask and self.mode == "mlm"
        cfg.pad_id, cfg.cls_id, cfg.sep_id, cfg.mask_id = ids.pad, ids.cls, ids.sep, ids.mask
        cfg.vocab_size, cfg.special = ids.vocab_size, list(ids.special)
        cfg.word_start = word_start if cfg.whole_word_mask else None
        cfg.model_vocab = model_vocab
        return cfg
