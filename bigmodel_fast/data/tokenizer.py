"""SentencePiece tokenizer (one implementation of :class:`~bigmodel_fast.data.tokenizer_base.BaseTokenizer`).

Every model trained by :meth:`Tokenizer.train` has the same first seven ids::

    0 [PAD]   1 [UNK]   2 [CLS]   3 [SEP]   4 [MASK]   5 <s>   6 </s>

followed by the 256 byte pieces ``<0x00>`` .. ``<0xFF>`` (ids 7..262, ``byte_fallback=True``: any character not in
the vocabulary is encoded as its UTF-8 bytes, so nothing ever maps to ``[UNK]``) and then the learned pieces.
``[PAD]``, ``[CLS]``, ``[SEP]``, ``[MASK]``, ``<s>``, ``</s>`` are SentencePiece *control* symbols: the literal text
``"[MASK]"`` in an input is encoded as ordinary characters, never as id 4, and :meth:`Tokenizer.decode` drops them.

Determinism: for the same texts and options :meth:`Tokenizer.train` writes a byte-identical ``tokenizer.model``.
Two things had to be controlled for that (checked with sentencepiece 0.2.x):

* SentencePiece's own sentence sampling (``input_sentence_size`` > 0) was *not* reproducible in our runs even with
  ``set_random_generator_seed`` and one thread, so the sampling is done here with a seeded reservoir sampler
  (``random.Random(seed)``) and SentencePiece always receives ``input_sentence_size=0``.
* ``num_threads`` does not change BPE merges (identical pieces and scores for 1, 2 and 16 threads), but it does
  change the result of ``model_type="unigram"`` (its EM is sharded per thread); with ``deterministic=True`` unigram
  training therefore uses one thread. The model file records the trainer options, so its bytes differ between
  different ``num_threads`` values even when the pieces are the same.

Lines longer than ``max_sentence_length`` bytes (which SentencePiece would silently skip) are split into chunks at
whitespace where possible, else at a character boundary.
"""
from __future__ import annotations

import io
import os
import random
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

from .special_tokens import SPECIAL, SPECIAL_TOKENS, SpecialTokens
from .tokenizer_base import BaseTokenizer, TokenizerError, TokenizerFileNotFoundError

__all__ = [
    "SPECIAL",
    "SPECIAL_TOKENS",
    "SpecialTokens",
    "MODEL_FILENAME",
    "Tokenizer",
    "TokenizerError",
    "TokenizerFileNotFoundError",
    "iter_training_sentences",
    "split_long_line",
]

MODEL_FILENAME = "tokenizer.model"
NUM_BYTE_PIECES = 256
_WORD_BOUNDARY = "\u2581"  # "▁", SentencePiece's whitespace marker


def split_long_line(line: str, max_bytes: int) -> list[str]:
    """Split ``line`` into pieces of at most ``max_bytes`` UTF-8 bytes.

    Cuts at the last whitespace inside the limit when there is one in its second half, otherwise at the last whole
    character that fits, so no UTF-8 sequence is ever cut. Whitespace at the cut points is dropped.
    """
    if max_bytes < 4:
        raise TokenizerError(f"max_sentence_length={max_bytes}: expected at least 4 bytes (one UTF-8 character)")
    data = line.encode("utf-8")
    if len(data) <= max_bytes:
        return [line]
    pieces: list[str] = []
    pos, end = 0, len(data)
    while end - pos > max_bytes:
        cut = pos + max_bytes
        while cut > pos and (data[cut] & 0xC0) == 0x80:  # do not cut inside a UTF-8 sequence
            cut -= 1
        space = max(data.rfind(b" ", pos, cut + 1), data.rfind(b"\t", pos, cut + 1))
        if space >= pos + max_bytes // 2:
            cut = space
        head = data[pos:cut].decode("utf-8").strip()
        if head:
            pieces.append(head)
        pos = cut
        while pos < end and data[pos] in (0x20, 0x09):
            pos += 1
    tail = data[pos:].decode("utf-8").strip()
    if tail:
        pieces.append(tail)
    return pieces


def iter_training_sentences(texts: Iterable[str], max_sentence_length: int) -> Iterator[str]:
    """Yield the non-blank lines of ``texts``, each split to at most ``max_sentence_length`` UTF-8 bytes."""
    if isinstance(texts, (str, bytes)):
        raise TokenizerError("texts must be an iterable of str documents, got a single string")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TokenizerError(f"texts[{i}] is {type(text).__name__}: expected str")
        for line in text.splitlines():
            line = line.strip()
            if line:
                yield from split_long_line(line, max_sentence_length)


def _reservoir(sentences: Iterable[str], size: int, seed: int) -> list[str]:
    """Seeded reservoir sample of ``size`` sentences, returned in their original order."""
    rng = random.Random(seed)
    kept: list[tuple[int, str]] = []
    for i, s in enumerate(sentences):
        if i < size:
            kept.append((i, s))
        else:
            j = rng.randrange(i + 1)
            if j < size:
                kept[j] = (i, s)
    kept.sort(key=lambda t: t[0])
    return [s for _, s in kept]


class Tokenizer(BaseTokenizer):
    """A loaded SentencePiece model with the fixed special ids of :data:`SPECIAL_TOKENS` (roles: pad 0, unk 1,
    cls 2, sep 3, mask 4, bos 5, eos 6).

    ``vocab_size`` counts every piece (specials and byte pieces included); ids are in ``[0, vocab_size)``.
    """

    def __init__(self, model_file: str | Path):
        path = Path(model_file)
        if path.is_dir():
            path = path / MODEL_FILENAME
        if not path.is_file():
            raise TokenizerFileNotFoundError(
                f"{path}: tokenizer model not found (expected a SentencePiece .model file, "
                f"e.g. <dir>/{MODEL_FILENAME} written by Tokenizer.train)"
            )
        data = path.read_bytes()
        sp = spm.SentencePieceProcessor()
        try:
            sp.LoadFromSerializedProto(data)
        except Exception as e:  # sentencepiece raises RuntimeError/OSError with a terse message
            raise TokenizerError(
                f"{path}: not a valid SentencePiece model ({type(e).__name__}: {str(e).strip()}); "
                "the file is corrupt or not a .model file"
            ) from e
        self.model_file = path
        self._sp = sp
        self.vocab_size = int(sp.get_piece_size())
        ids = [sp.piece_to_id(tok) for tok in SPECIAL_TOKENS]
        if ids != list(SPECIAL.ids) or sp.unk_id() != SPECIAL.unk:
            found = {tok: i for tok, i in zip(SPECIAL_TOKENS, ids)}
            raise TokenizerError(
                f"{path}: special tokens are not at the fixed ids 0..6 (found {found}); "
                "train the model with Tokenizer.train"
            )
        (self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id, self.bos_id, self.eos_id) = ids
        self.all_special_ids: tuple[int, ...] = tuple(ids)
        self._special_set = frozenset(ids)

    # ------------------------------------------------------------------------------------------------ training

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        out_dir: str | Path,
        *,
        vocab_size: int = 8000,
        model_type: str = "bpe",
        character_coverage: float = 0.9995,
        seed: int = 0,
        num_threads: int = 2,
        max_sentence_length: int = 16384,
        input_sentence_size: int = 2_000_000,
        deterministic: bool = True,
        normalization_rule_name: str = "nmt_nfkc",
    ) -> Tokenizer:
        """Train a SentencePiece model on ``texts`` and write ``out_dir/tokenizer.model`` (+ ``tokenizer.vocab``).

        Each text is split into non-blank lines (SentencePiece's "sentences"); lines longer than
        ``max_sentence_length`` UTF-8 bytes are split, not dropped. When there are more than ``input_sentence_size``
        lines (> 0), a seeded reservoir sample of that many is used. ``vocab_size`` includes the 7 special and 256
        byte pieces, so it must be > 263 plus the number of distinct characters needed for
        ``character_coverage``. ``deterministic`` forces one thread for ``model_type="unigram"`` (BPE results do
        not depend on threads). ``normalization_rule_name`` is passed to SentencePiece (``"nmt_nfkc"`` default;
        ``"identity"`` keeps text untouched).
        """
        if model_type not in ("bpe", "unigram"):
            raise TokenizerError(f"model_type={model_type!r}: expected 'bpe' or 'unigram'")
        min_vocab = len(SPECIAL_TOKENS) + NUM_BYTE_PIECES + 1
        if vocab_size < min_vocab:
            raise TokenizerError(
                f"vocab_size={vocab_size}: expected at least {min_vocab} "
                f"({len(SPECIAL_TOKENS)} special + {NUM_BYTE_PIECES} byte pieces + learned pieces)"
            )
        if not 0.98 <= character_coverage <= 1.0:
            raise TokenizerError(f"character_coverage={character_coverage}: expected a value in [0.98, 1.0]")
        if num_threads < 1:
            num_threads = os.cpu_count() or 1
        if deterministic and model_type == "unigram":
            num_threads = 1
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)

        if isinstance(texts, (str, bytes)):
            raise TokenizerError("texts must be an iterable of str documents, got a single string")
        sentences: Iterable[str] = iter_training_sentences(texts, max_sentence_length)
        if input_sentence_size > 0:
            sentences = _reservoir(sentences, input_sentence_size, seed)
        else:
            sentences = list(sentences)
        if not sentences:
            raise TokenizerError("Tokenizer.train: no non-blank text to train on")

        spm.set_random_generator_seed(seed)
        buf = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=buf,
                model_type=model_type,
                vocab_size=vocab_size,
                character_coverage=character_coverage,
                byte_fallback=True,
                pad_id=SPECIAL.pad,
                unk_id=SPECIAL.unk,
                bos_id=SPECIAL.bos,
                eos_id=SPECIAL.eos,
                pad_piece=SpecialTokens.piece("pad"),
                unk_piece=SpecialTokens.piece("unk"),
                bos_piece=SpecialTokens.piece("bos"),
                eos_piece=SpecialTokens.piece("eos"),
                control_symbols=[SpecialTokens.piece(n) for n in ("cls", "sep", "mask")],
                input_sentence_size=0,
                shuffle_input_sentence=False,
                max_sentence_length=max_sentence_length,
                num_threads=num_threads,
                normalization_rule_name=normalization_rule_name,
                minloglevel=2,
            )
        except RuntimeError as e:
            msg = str(e)
            hint = ""
            if "Vocabulary size is smaller than required_chars" in msg:
                hint = " (hint: increase vocab_size or lower character_coverage; 263 ids are reserved)"
            elif "Vocabulary size too high" in msg:
                hint = " (hint: the training text is too small for this vocab_size; lower it or add text)"
            raise TokenizerError(f"SentencePiece training failed: {msg.strip()}{hint}") from e

        model_path = out / MODEL_FILENAME
        tmp = model_path.with_name(MODEL_FILENAME + ".tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, model_path)
        tok = cls(model_path)
        tok._write_vocab(out / "tokenizer.vocab")
        return tok

    def _write_vocab(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for i in range(self.vocab_size):
                f.write(f"{self._sp.id_to_piece(i)}\t{self._sp.get_score(i):g}\n")

    # ------------------------------------------------------------------------------------------------ encoding

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return self._sp.encode(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int = 0) -> list[list[int]]:
        """Token ids of each text, encoded by SentencePiece's threaded batch encoder (``0`` = all CPU cores)."""
        if isinstance(texts, str):
            raise TokenizerError("encode_batch expects a sequence of strings, got a single str (use encode)")
        threads = num_threads if num_threads > 0 else (os.cpu_count() or 1)
        return self._sp.encode(list(texts), num_threads=threads)

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``; the 7 special ids are skipped. Raises :class:`TokenizerError` for ids out of range."""
        clean = self._decodable(ids)
        return self._sp.decode(clean)

    # ------------------------------------------------------------------------------------------------ vocab

    def id_to_piece(self, i: int) -> str:
        """The vocabulary piece of id ``i``."""
        return self._sp.id_to_piece(int(i))

    def piece_to_id(self, piece: str) -> int:
        """The id of ``piece`` (``unk_id`` when unknown)."""
        return int(self._sp.piece_to_id(piece))

    def word_start_mask(self) -> np.ndarray:
        """Bool array (vocab_size,): True where a piece starts a word, for whole-word masking.

        True for the special ids, for pieces starting with "▁" (SentencePiece's word boundary) and for pieces
        starting with a CJK ideograph (Chinese/Japanese have no spaces, so each such piece is its own word start
        instead of a whole paragraph counting as one "word"). False for byte pieces and other continuations.
        """
        mask = np.zeros(self.vocab_size, dtype=bool)  # (V,)
        for i in range(self.vocab_size):
            if i in self._special_set:
                mask[i] = True
            elif self._sp.is_byte(i):
                continue
            else:
                piece = self._sp.id_to_piece(i)
                mask[i] = piece.startswith(_WORD_BOUNDARY) or (bool(piece) and _is_cjk(piece[0]))
        return mask

    def save(self, out_dir: str | Path) -> Path:
        """Copy the model file to ``out_dir/tokenizer.model`` (created if needed) and return that path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        dest = out / MODEL_FILENAME
        if dest.resolve() != self.model_file.resolve():
            shutil.copyfile(self.model_file, dest)
        return dest

    def __repr__(self) -> str:
        return f"Tokenizer({str(self.model_file)!r}, vocab_size={self.vocab_size})"


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return (
        0x4E00 <= cp <= 0x9FFF  # CJK Unified Ideographs
        or 0x3400 <= cp <= 0x4DBF  # Extension A
        or 0x20000 <= cp <= 0x2FA1F  # Extensions B-F, compatibility supplement
        or 0xF900 <= cp <= 0xFAFF  # compatibility ideographs
        or 0x3040 <= cp <= 0x30FF  # hiragana, katakana
    )
