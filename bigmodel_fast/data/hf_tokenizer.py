"""Hugging Face tokenizers (``tokenizer.json``, WordPiece ``vocab.txt``, byte-level BPE ``vocab.json`` +
``merges.txt``) behind :class:`~bigmodel_fast.data.tokenizer_base.BaseTokenizer`, run by the ``tokenizers`` library.

Special tokens are found by role from the tokenizer's special tokens (its added tokens marked special; a role
name that is only an ordinary vocabulary piece counts too)::

    cls  [CLS] or <s>        sep  [SEP] or </s>       pad  [PAD] or <pad>      mask [MASK] or <mask>
    unk  [UNK] or <unk>      bos  <s> or <|endoftext|>                          eos  </s> or <|endoftext|>

so BERT has cls/sep/pad/mask/unk and no bos/eos, RoBERTa has all seven (``<s>`` is cls and bos, ``</s>`` sep and
eos), GPT-2 has only ``<|endoftext|>`` as bos and eos. When there is no pad token, ``pad_id`` falls back to
``eos_id`` (GPT-2: padding is ``<|endoftext|>``, masked out by the attention mask).

``tokenizers`` is an optional dependency (``pip install 'bigmodel_fast[hf]'``); without it any use raises
:class:`MissingTokenizersError` with that one-line hint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .tokenizer_base import BaseTokenizer, TokenizerError, TokenizerFileNotFoundError

__all__ = ["HF_JSON", "HFTokenizer", "MissingTokenizersError"]

HF_JSON = "tokenizer.json"
_ROLE_NAMES = {
    "pad": ("[PAD]", "<pad>"), "unk": ("[UNK]", "<unk>"), "cls": ("[CLS]", "<s>"), "sep": ("[SEP]", "</s>"),
    "mask": ("[MASK]", "<mask>"), "bos": ("<s>", "<|endoftext|>"), "eos": ("</s>", "<|endoftext|>"),
}
_BYTE_LEVEL_SPACE = "\u0120"  # "Ġ": byte-level BPE's marker of a leading space
_METASPACE = "\u2581"  # "▁"
_HF_FILES = ("tokenizer.json", "vocab.txt", "vocab.json + merges.txt")


class MissingTokenizersError(TokenizerError, ImportError):
    """The optional ``tokenizers`` package is not installed."""


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise MissingTokenizersError(
            "the 'tokenizers' package is needed for Hugging Face tokenizers (tokenizer.json, vocab.txt, "
            "vocab.json + merges.txt); install it with: pip install 'bigmodel_fast[hf]'") from None
    return tokenizers


def _read_config(src: Path) -> dict:
    f = src / "tokenizer_config.json"
    if not f.is_file():
        return {}
    try:
        cfg = json.loads(f.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokenizerError(f"{f}: not valid JSON ({e}); expected the tokenizer_config.json of a HF tokenizer")
    if not isinstance(cfg, dict):
        raise TokenizerError(f"{f}: expected a JSON object, got {type(cfg).__name__}")
    return cfg


def _token_str(value) -> str | None:
    """A tokenizer_config.json token entry: a string or an AddedToken dict ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _wordpiece_from_vocab(src: Path, cfg: dict):
    """BERT's tokenizer from ``vocab.txt`` (one piece per line, id = line number), as transformers builds it."""
    tk = _tokenizers()
    from tokenizers import decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    lines = (src / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    vocab: dict[str, int] = {}
    for i, piece in enumerate(lines):
        vocab[piece] = i  # a repeated piece keeps its last id, as transformers' load_vocab does
    unk = _token_str(cfg.get("unk_token")) or "[UNK]"
    tok = tk.Tokenizer(WordPiece(vocab, unk_token=unk))
    strip = cfg.get("strip_accents")
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=bool(cfg.get("tokenize_chinese_chars", True)),
        strip_accents=None if strip is None else bool(strip), lowercase=bool(cfg.get("do_lower_case", True)))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    names = {k: _token_str(cfg.get(f"{k}_token")) or d for k, d in
             (("pad", "[PAD]"), ("unk", "[UNK]"), ("cls", "[CLS]"), ("sep", "[SEP]"), ("mask", "[MASK]"))}
    _add_specials(tok, [n for n in names.values() if n in vocab])
    cls, sep = names["cls"], names["sep"]
    if cls in vocab and sep in vocab:
        from tokenizers import processors

        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])])
    return tok


def _byte_bpe_from_files(src: Path, cfg: dict):
    """GPT-2 / RoBERTa byte-level BPE from ``vocab.json`` + ``merges.txt``."""
    tk = _tokenizers()
    from tokenizers import decoders, pre_tokenizers
    from tokenizers.models import BPE

    try:
        model = BPE.from_file(str(src / "vocab.json"), str(src / "merges.txt"))
    except Exception as e:  # the Rust side raises a bare Exception
        raise TokenizerError(f"{src}: vocab.json / merges.txt are not a valid BPE vocabulary ({e})") from e
    tok = tk.Tokenizer(model)
    prefix = bool(cfg.get("add_prefix_space", False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix)
    tok.decoder = decoders.ByteLevel()
    vocab = tok.get_vocab()
    names = {_token_str(cfg.get(f"{k}_token")) for k in ("bos", "eos", "unk", "sep", "cls", "pad", "mask")}
    names |= {n for pair in _ROLE_NAMES.values() for n in pair}
    _add_specials(tok, sorted(n for n in names if n and n in vocab))
    return tok


def _add_specials(tok, names: Sequence[str]) -> None:
    from tokenizers import AddedToken

    tok.add_special_tokens([AddedToken(n, special=True, normalized=False, lstrip=n == "<mask>") for n in names])


class HFTokenizer(BaseTokenizer):
    """A ``tokenizers.Tokenizer`` with role ids (see the module docstring), loaded from a ``tokenizer.json``.

    ``vocab_size`` counts the vocabulary and added tokens; :meth:`encode` never adds special tokens.
    """

    def __init__(self, path: str | Path, _tok=None):
        path = Path(path)
        self._from_json = _tok is None  # else built from vocab files: save() serializes it
        if _tok is None:
            if path.is_dir():
                path = path / HF_JSON
            if not path.is_file():
                raise TokenizerFileNotFoundError(f"{path}: tokenizer.json not found (expected a Hugging Face "
                                                 "tokenizers file)")
            tk = _tokenizers()
            try:
                _tok = tk.Tokenizer.from_file(str(path))
            except Exception as e:  # the Rust side raises a bare Exception
                raise TokenizerError(f"{path}: not a valid tokenizer.json ({str(e).strip()})") from e
        _tok.no_padding()  # a tokenizer.json may enable both (MiniLM pads to 128): callers pad and truncate
        _tok.no_truncation()
        self._tok = _tok
        self.model_file = path
        self.vocab_size = int(_tok.get_vocab_size(with_added_tokens=True))
        self._model_type = type(_tok.model).__name__  # "WordPiece", "BPE", ... (no JSON round trip)
        special = {t.content: int(i) for i, t in _tok.get_added_tokens_decoder().items() if t.special}
        for role, names in _ROLE_NAMES.items():
            rid = next((special[n] for n in names if n in special), None)
            if rid is None:  # a role name that is only a vocabulary piece
                rid = next((i for i in (_tok.token_to_id(n) for n in names) if i is not None), None)
            setattr(self, f"{role}_id", rid)
        if self.pad_id is None:
            self.pad_id = self.eos_id
        roles = [getattr(self, f"{r}_id") for r in _ROLE_NAMES]
        self.all_special_ids = tuple(sorted(set(special.values()) | {r for r in roles if r is not None}))
        self._special_set = frozenset(self.all_special_ids)

    @classmethod
    def from_hf_dir(cls, src: str | Path) -> HFTokenizer:
        """The tokenizer of a HF model directory: ``tokenizer.json`` if there, else WordPiece ``vocab.txt``
        (``tokenizer_config.json``: do_lower_case, strip_accents, tokenize_chinese_chars, the *_token names), else
        byte-level BPE ``vocab.json`` + ``merges.txt`` (add_prefix_space). FileNotFoundError when none is there."""
        src = Path(src)
        if (src / HF_JSON).is_file():
            return cls(src / HF_JSON)
        if not src.is_dir():
            raise TokenizerFileNotFoundError(f"{src}: not a directory; expected a Hugging Face model directory")
        if (src / "vocab.txt").is_file():
            return cls(src / HF_JSON, _tok=_wordpiece_from_vocab(src, _read_config(src)))
        if (src / "vocab.json").is_file() and (src / "merges.txt").is_file():
            return cls(src / HF_JSON, _tok=_byte_bpe_from_files(src, _read_config(src)))
        raise TokenizerFileNotFoundError(f"{src}: no tokenizer found; expected one of {', '.join(_HF_FILES)}")

    # ------------------------------------------------------------------------------------------------ encoding

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return self._tok.encode(_clean(text), add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str], num_threads: int = 0) -> list[list[int]]:
        """Token ids of each text (no special tokens added); ``num_threads`` is accepted for the SentencePiece
        signature, ``tokenizers`` chooses its own threads."""
        if isinstance(texts, str):
            raise TokenizerError("encode_batch expects a sequence of strings, got a single str (use encode)")
        return [e.ids for e in self._tok.encode_batch([_clean(t) for t in texts], add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` with the special ids skipped; TokenizerError for ids out of range."""
        clean = self._decodable(ids)
        return self._tok.decode(clean, skip_special_tokens=True)

    # ------------------------------------------------------------------------------------------------ vocab

    def id_to_piece(self, i: int) -> str:
        piece = self._tok.id_to_token(int(i))
        if piece is None:
            raise TokenizerError(f"id_to_piece: id {i} out of range [0, {self.vocab_size}) for {self.model_file}")
        return piece

    def piece_to_id(self, piece: str) -> int:
        """The id of ``piece`` (``unk_id`` when unknown; TokenizerError if there is no unk token either)."""
        i = self._tok.token_to_id(piece)
        if i is None:
            if self.unk_id is None:
                raise TokenizerError(f"piece_to_id: {piece!r} is not in the vocabulary of {self.model_file} "
                                     "and it has no [UNK] token")
            return self.unk_id
        return int(i)

    def word_start_mask(self) -> np.ndarray:
        """Bool array (vocab_size,): True where a piece starts a word, for whole-word masking.

        WordPiece: pieces without the continuing-subword prefix (``##``); byte-level BPE (a vocabulary with
        ``Ġ`` pieces): pieces starting with ``Ġ``; otherwise (Metaspace/Unigram): pieces starting with ``▁``.
        Special ids are False (the loaders never select them and treat the piece after one as a word start).
        """
        mask = np.zeros(self.vocab_size, dtype=bool)  # (V,)
        vocab = self._tok.get_vocab(with_added_tokens=True)
        if self._model_type == "WordPiece":
            prefix = self._tok.model.continuing_subword_prefix or "##"
            start = lambda p: not p.startswith(prefix)  # noqa: E731
        elif any(p.startswith(_BYTE_LEVEL_SPACE) for p in vocab):
            start = lambda p: p.startswith(_BYTE_LEVEL_SPACE)  # noqa: E731
        else:
            start = lambda p: p.startswith(_METASPACE)  # noqa: E731
        for piece, i in vocab.items():
            if 0 <= i < self.vocab_size and i not in self._special_set:
                mask[i] = start(piece)
        return mask

    def save(self, out_dir: str | Path) -> Path:
        """Write ``out_dir/tokenizer.json`` (created if needed; a loaded file is copied byte for byte)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        dest = out / HF_JSON
        if self._from_json:
            if not dest.exists() or dest.resolve() != self.model_file.resolve():
                shutil.copyfile(self.model_file, dest)
        else:
            self._tok.save(str(dest))
        return dest

    @property
    def file_name(self) -> str:
        return HF_JSON

    def __repr__(self) -> str:
        return f"HFTokenizer({str(self.model_file)!r}, vocab_size={self.vocab_size})"


def _clean(text: str) -> str:
    """``text`` with lone surrogates (not encodable as UTF-8, so not passable to ``tokenizers``) replaced by U+FFFD."""
    if text.isascii():  # the common case: no copy
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
