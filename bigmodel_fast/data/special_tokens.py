"""The special tokens of the SentencePiece tokenizers ``bmf prepare`` trains, at fixed ids: the one place their
pieces and ids are written.

    0 [PAD]   1 [UNK]   2 [CLS]   3 [SEP]   4 [MASK]   5 <s>   6 </s>

:class:`~bigmodel_fast.data.tokenizer.Tokenizer` trains and checks models against :data:`SPECIAL`. Nothing else
relies on these numbers: the loaders, classification inputs, export and the runner take the ids from the
tokenizer's roles (``tok.cls_id`` ..., ``tok.special_ids()``), so a Hugging Face tokenizer with [CLS] at 101 or
<mask> as its last id works the same (:mod:`bigmodel_fast.data.tokenizer_base`). :meth:`SpecialIds.fixed
<bigmodel_fast.data.loader_reference.SpecialIds.fixed>` (these ids) is only the loaders' default when they are
given neither a tokenizer nor ids. No heavy imports: the loaders use this without SentencePiece.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

__all__ = ["SPECIAL", "SPECIAL_TOKENS", "SpecialTokens"]


@dataclass(frozen=True)
class SpecialTokens:
    """Ids of the special tokens (fields in id order; :meth:`piece` gives each one's SentencePiece piece)."""

    pad: int = 0
    unk: int = 1
    cls: int = 2
    sep: int = 3
    mask: int = 4
    bos: int = 5
    eos: int = 6

    @property
    def ids(self) -> tuple[int, ...]:
        """All special ids, in field order: ``(pad, unk, cls, sep, mask, bos, eos)``."""
        return astuple(self)

    @staticmethod
    def names() -> tuple[str, ...]:
        """The field names, in id order: ``("pad", "unk", ...)``."""
        return tuple(f.name for f in fields(SpecialTokens))

    @staticmethod
    def piece(name: str) -> str:
        """SentencePiece piece of special token ``name`` (``"pad"`` -> ``"[PAD]"``, ``"bos"`` -> ``"<s>"``)."""
        return _PIECES[name]

    def as_dict(self) -> dict[str, int]:
        """``{"pad": 0, "unk": 1, ...}``."""
        return dict(zip(self.names(), self.ids))


_PIECES = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]",
           "bos": "<s>", "eos": "</s>"}

SPECIAL = SpecialTokens()
# The pieces in id order (index = id): ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<s>", "</s>").
SPECIAL_TOKENS: tuple[str, ...] = tuple(SpecialTokens.piece(n) for n in SpecialTokens.names())
