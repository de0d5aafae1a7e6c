"""MinHash-LSH parameters: the one Python place of their defaults, and their checks against the C++ limits.

:class:`MinHashConfig` holds the defaults (``dedup``, ``MinHashIndex``, ``minhash_signatures`` and PrepareConfig's
``near_*`` fields take theirs from :data:`MINHASH`). The limits live in C++ (``csrc/dedup/minhash.h``) and are read
from ``bigmodel_fast._C.MINHASH_LIMITS`` when a check needs them, never retyped here; the C++ bindings' keyword
defaults are ``_C.MINHASH_DEFAULTS``, which the tests hold equal to :data:`MINHASH`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .args import check_int, check_seed

__all__ = ["MINHASH", "MinHashConfig", "minhash_limits"]


def minhash_limits() -> dict[str, int]:
    """The C++ limits: ``max_num_perm``, ``max_ngram``, ``max_members`` (representatives per bucket) and
    ``max_text_chars`` (the longest text), from ``_C.MINHASH_LIMITS`` (imported lazily: no build needed to import
    this module)."""
    from bigmodel_fast import _C

    return dict(_C.MINHASH_LIMITS)


@dataclass(frozen=True)
class MinHashConfig:
    """MinHash-LSH near-duplicate parameters (see :mod:`bigmodel_fast.data.dedup` for what each does).

    threshold:   estimated Jaccard (of the ngram shingle sets) at which two documents are duplicates, in (0, 1].
    ngram:       words per shingle, in [1, max_ngram].
    num_perm:    signature length (permutations), in [1, max_num_perm].
    bands:       LSH bands; must divide num_perm (rows per band = num_perm // bands). With 14 bands of 8 rows a
                 pair with Jaccard 0.8 becomes a candidate with probability 0.92, at 0.9 with 0.9996.
    seed:        seeds the hash family, an int in [0, 2**64).
    max_members: documents stored per LSH bucket: union-find's K, the streaming index's representatives.
    """

    threshold: float = 0.8
    ngram: int = 5
    num_perm: int = 112
    bands: int = 14
    seed: int = 0
    max_members: int = 32

    @property
    def rows(self) -> int:
        """Signature slots per band: ``num_perm // bands``."""
        return self.num_perm // self.bands

    def checked(self) -> "MinHashConfig":
        """A copy with every field checked and converted to a plain Python number.

        Raises ValueError naming the field and its valid range (the limits from ``_C.MINHASH_LIMITS``).
        """
        limits = minhash_limits()
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)) or not 0.0 < float(t) <= 1.0:
            raise ValueError(f"threshold must be a number in (0, 1], got {t!r}")
        ngram = check_int("ngram", self.ngram, 1, limits["max_ngram"])
        num_perm = check_int("num_perm", self.num_perm, 1, limits["max_num_perm"])
        bands = check_int("bands", self.bands, 1, num_perm)
        if num_perm % bands:
            raise ValueError(
                f"bands must divide num_perm (each band has num_perm // bands rows): num_perm={num_perm} is not "
                f"divisible by bands={bands}"
            )
        return MinHashConfig(threshold=float(t), ngram=ngram, num_perm=num_perm, bands=bands,
                             seed=check_seed(self.seed),
                             max_members=check_int("max_members", self.max_members, 1, limits["max_members"]))

    def params(self) -> dict[str, Any]:
        """The fields as keyword arguments (``threshold``, ``ngram``, ``num_perm``, ``bands``, ``seed``,
        ``max_members``)."""
        return dataclasses.asdict(self)


MINHASH = MinHashConfig()
