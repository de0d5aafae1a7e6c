"""The tokenizer interface every part of bigmodel_fast uses, and :func:`load_tokenizer`, which picks the implementation.

Two implementations:

* :class:`~bigmodel_fast.data.tokenizer.Tokenizer`: SentencePiece ``tokenizer.model`` (what ``bmf prepare`` trains;
  its special tokens sit at ids 0..6).
* :class:`~bigmodel_fast.data.hf_tokenizer.HFTokenizer`: a Hugging Face ``tokenizer.json`` (WordPiece, byte-level
  BPE, ...) run by the ``tokenizers`` library (optional dependency: ``pip install bigmodel_fast[hf]``).

Special tokens are known by *role* (``pad_id, unk_id, cls_id, sep_id, mask_id, bos_id, eos_id``, each an int or
None when the tokenizer has no such token), never by a fixed id. ``all_special_ids`` is every special id of the
tokenizer (the ids MLM masking never selects or draws as random replacements). No heavy imports here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["ROLES", "TOKENIZER_FILES", "BaseTokenizer", "TokenizerError", "TokenizerFileNotFoundError",
           "find_tokenizer_file", "load_tokenizer"]

# A directory's tokenizer is the first of these it holds (checkpoints, prepared data and bundles keep the name).
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")
ROLES = ("pad", "unk", "cls", "sep", "mask", "bos", "eos")


class TokenizerError(ValueError):
    """Bad tokenizer input: an unreadable model file, invalid training options or ids out of range."""


class TokenizerFileNotFoundError(TokenizerError, FileNotFoundError):
    """The tokenizer file does not exist."""


class BaseTokenizer(ABC):
    """What the loaders, classification inputs, export and trainers need from a tokenizer.

    Attributes set by the implementation: ``vocab_size`` (ids are in ``[0, vocab_size)``), ``model_file`` (the
    file it was loaded from), the role ids ``pad_id`` .. ``eos_id`` (int or None) and ``all_special_ids``
    (tuple of every special id, roles included).
    """

    vocab_size: int
    model_file: Path
    pad_id: int | None
    unk_id: int | None
    cls_id: int | None
    sep_id: int | None
    mask_id: int | None
    bos_id: int | None
    eos_id: int | None
    all_special_ids: tuple[int, ...]

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""

    @abstractmethod
    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (no special tokens added)."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, special ids skipped; TokenizerError for an id out of range."""

    def _decodable(self, ids: Sequence[int]) -> list[int]:
        """``ids`` as ints without the special ids, for :meth:`decode`; TokenizerError for an id out of range."""
        specials = self._special_set
        clean: list[int] = []
        for i in ids:
            i = int(i)
            if i < 0 or i >= self.vocab_size:
                raise TokenizerError(f"decode: id {i} out of range [0, {self.vocab_size}) for {self.model_file}")
            if i not in specials:
                clean.append(i)
        return clean

    @abstractmethod
    def id_to_piece(self, i: int) -> str:
        """The vocabulary piece of id ``i``."""

    @abstractmethod
    def piece_to_id(self, piece: str) -> int:
        """The id of ``piece`` (``unk_id`` when unknown)."""

    @abstractmethod
    def word_start_mask(self) -> np.ndarray:
        """Bool array (vocab_size,): True where a piece starts a word (whole-word masking)."""

    @abstractmethod
    def save(self, out_dir: str | Path) -> Path:
        """Write the tokenizer file into ``out_dir`` under its own name (:data:`TOKENIZER_FILES`); return its path."""

    def special_ids(self) -> dict[str, int | None]:
        """``{"pad": .., "unk": .., "cls": .., "sep": .., "mask": .., "bos": .., "eos": ..}`` (None: no such role);
        the ``special_ids`` field of ``bundle.json``."""
        return {r: getattr(self, f"{r}_id") for r in ROLES}

    @property
    def file_name(self) -> str:
        """The tokenizer file's name in checkpoints, data directories and bundles."""
        return self.model_file.name

    def __len__(self) -> int:
        return self.vocab_size


def find_tokenizer_file(directory: str | Path) -> Path:
    """The tokenizer file of ``directory``: the first of :data:`TOKENIZER_FILES` it holds.

    Raises TokenizerFileNotFoundError naming the directory and the files looked for."""
    d = Path(directory)
    for name in TOKENIZER_FILES:
        if (d / name).is_file():
            return d / name
    raise TokenizerFileNotFoundError(f"{d}: no tokenizer file; expected one of {', '.join(TOKENIZER_FILES)}")


def load_tokenizer(path: str | Path) -> BaseTokenizer:
    """The tokenizer of ``path``: a ``tokenizer.model`` / ``*.model`` (SentencePiece) or ``*.json``
    (Hugging Face ``tokenizers``) file, or a directory holding one of :data:`TOKENIZER_FILES`."""
    p = Path(path)
    if p.is_dir():
        p = find_tokenizer_file(p)
    elif not p.is_file():
        raise TokenizerFileNotFoundError(f"{p}: tokenizer file not found (expected a file or directory holding "
                                         f"one of {', '.join(TOKENIZER_FILES)})")
    if p.suffix == ".json":
        from .hf_tokenizer import HFTokenizer

        return HFTokenizer(p)
    from .tokenizer import Tokenizer

    return Tokenizer(p)
