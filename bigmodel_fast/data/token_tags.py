"""Tagged tokens for token classification (NER): reading CoNLL-style and JSONL files, BIO / BIOES tag schemes.

Files (:func:`read_tagged`):

- CoNLL style (any suffix but ``.jsonl`` / ``.ndjson``): one token per line, the token in the first
  whitespace-separated column and its tag in the last (so CoNLL-2003's ``token POS chunk tag`` lines read as they
  are); a blank line ends a sentence; ``-DOCSTART-`` lines are ignored.
- JSONL (``.jsonl`` / ``.ndjson``): one sentence per line, ``{"tokens": [...], "tags": [...]}`` (strings, the same
  count; other fields such as ``"doc"`` are ignored); blank lines are skipped.
- Either format gzip-compressed: a ``.gz`` file is decompressed on the fly and its format is chosen by the suffix
  before ``.gz`` (``train.jsonl.gz`` is JSONL, ``train.conll.gz`` CoNLL); line numbers are those of the
  decompressed text.

Tags are ``O`` or ``P-TYPE`` with P in ``B I`` (BIO) or ``B I E S`` (BIOES); TYPE is any non-empty name. Whatever
the file's scheme, sentences are held in **BIO** (``S-X`` -> ``B-X``, ``E-X`` -> ``I-X``): one form for the
labels the model learns and for the entity scores; :func:`to_bioes` gives the other form back. The file's scheme
is ``scheme="auto"`` (BIOES when any tag starts with ``E-`` or ``S-``), or named.

Bad sentences are reported as ``file:line: reason`` and skipped, and counted in :class:`TagStats` (the line is the
sentence's first line): a token / tag count mismatch, a malformed tag (``B-``, ``X-PER``, a BIOES prefix in a BIO
file), a non-string or missing field, a CoNLL line with one column. Invalid UTF-8, and corrupt or truncated gzip
data, stop the read with ``file:line`` (nothing after it can be trusted).

Scheme violations, policy (``on_violation``): a BIO ``I-X`` that does not continue an ``X`` entity (after ``O``,
at the start, after another type) is **repaired** to ``B-X`` by default and counted in ``stats.repaired``: the same
reading as ``seqeval``'s default (conlleval) mode, so entity scores of the stored tags equal seqeval's on the raw
ones. In BIOES an ``I-``/``E-`` that starts an entity (not after ``B-``/``I-`` of its type) is repaired to a
start the same way, and a ``B-``/``I-`` whose entity stops without an ``E-`` is read as ending there (the
conlleval reading; nothing to change in BIO, not counted). ``on_violation="skip"`` drops the sentences with a
counted repair instead (in ``stats.skipped``), for a data set that must be well formed.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

SCHEMES = ("auto", "bio", "bioes")
VIOLATION_POLICIES = ("repair", "skip")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
DOCSTART = "-DOCSTART-"
_PREFIXES = {"bio": "BI", "bioes": "BIES"}


@dataclass
class TagStats:
    """What :func:`read_tagged` read: ``sentences`` kept, ``tokens`` in them, ``skipped`` sentences with their
    ``file:line: reason`` (``problems``), ``repaired`` I- tags turned into B- (scheme violations)."""

    sentences: int = 0
    tokens: int = 0
    skipped: int = 0
    repaired: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sentences": self.sentences, "tokens": self.tokens, "skipped": self.skipped,
                "repaired": self.repaired}


@dataclass
class TaggedSentences:
    """Sentences of tokens with their BIO tags; ``lines`` are the sentences' first lines in ``source``,
    ``scheme`` the file's scheme (``bio`` or ``bioes``)."""

    tokens: list[list[str]]
    tags: list[list[str]]
    source: str
    lines: list[int]
    scheme: str
    stats: TagStats

    def __len__(self) -> int:
        return len(self.tokens)

    def label_names(self) -> list[str]:
        """Sorted BIO label set, ``O`` first: what a token-classification head predicts."""
        names = {t for sent in self.tags for t in sent} - {"O"}
        return ["O", *sorted(names, key=lambda t: (t[2:], t[0]))]


def split_tag(tag: str) -> tuple[str, str]:
    """``("O", "")`` for ``O``, ``(prefix, type)`` for ``P-TYPE``; ValueError for anything else."""
    if tag == "O":
        return "O", ""
    if len(tag) < 3 or tag[1] != "-" or not tag[2:].strip() or tag[2:] != tag[2:].strip():
        raise ValueError(f"tag {tag!r} is neither 'O' nor PREFIX-TYPE (e.g. B-PER)")
    return tag[0], tag[2:]


def _check_prefixes(tags: Sequence[str], scheme: str) -> None:
    allowed = _PREFIXES[scheme]
    for tag in tags:
        prefix, _ = split_tag(tag)
        if prefix != "O" and prefix not in allowed:
            raise ValueError(f"tag {tag!r}: prefix {prefix!r} is not one of {', '.join(allowed)} ({scheme.upper()})")


def to_bio(tags: Sequence[str], scheme: str) -> tuple[list[str], int]:
    """``(BIO tags, repaired)`` for well-formed-or-not ``tags`` of ``scheme`` (``bio`` | ``bioes``): every token
    keeps the entity that the conlleval reading gives it; ``repaired`` counts the tags that had to change beyond the
    plain BIOES -> BIO renaming (an I-/E- that started an entity). ValueError for malformed tags."""
    _check_prefixes(tags, scheme)
    out: list[str] = []
    repaired = 0
    prev_type = ""  # type of the entity the previous token is inside, "" outside
    prev_open = False  # the previous token's entity may continue (not E-/S-)
    for tag in tags:
        prefix, typ = split_tag(tag)
        if prefix == "O":
            out.append("O")
            prev_type, prev_open = "", False
            continue
        continues = prefix in "IE" and prev_open and prev_type == typ
        if prefix in "IE" and not continues:
            repaired += 1
        out.append(f"I-{typ}" if continues else f"B-{typ}")
        prev_type, prev_open = typ, prefix in "BI"
    return out, repaired


def to_bioes(bio: Sequence[str]) -> list[str]:
    """BIOES form of well-formed BIO tags (as :func:`to_bio` returns): single-token entities ``S-``, the last
    token of a longer one ``E-``."""
    out = []
    for i, tag in enumerate(bio):
        prefix, typ = split_tag(tag)
        if prefix == "O":
            out.append("O")
            continue
        nxt = bio[i + 1] if i + 1 < len(bio) else "O"
        ends = nxt != f"I-{typ}"
        out.append(("S-" if ends else "B-") + typ if prefix == "B" else ("E-" if ends else "I-") + typ)
    return out


def detect_scheme(tag_lists: Sequence[Sequence[str]]) -> str:
    """``bioes`` when any tag starts with ``E-`` or ``S-``, else ``bio``."""
    for tags in tag_lists:
        for tag in tags:
            if tag[:2] in ("E-", "S-"):
                return "bioes"
    return "bio"


def is_jsonl(path: Path) -> bool:
    """Whether ``path`` is read as JSONL: its suffix (the one before ``.gz`` for a gzip file) is ``.jsonl`` /
    ``.ndjson``."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix in JSONL_SUFFIXES


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without the line end) of a UTF-8 file, gunzipped when it ends in ``.gz``;
    ValueError naming ``path:line`` at the first invalid byte sequence or corrupt gzip data."""
    gz = path.name.lower().endswith(".gz")
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        number = 0
        while True:
            try:
                raw = f.readline()
            except (gzip.BadGzipFile, EOFError, zlib.error) as e:
                raise ValueError(f"{path}:{number + 1}: corrupt or truncated gzip data ({e}); "
                                 "HINT: re-create the file (gzip -t checks it)") from None
            if not raw:
                return
            number += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{number}: not valid UTF-8 ({e.reason} at byte {e.start}); "
                                 "HINT: re-encode the file as UTF-8") from None
            yield number, text.rstrip("\r\n")


def _conll_sentences(path: Path) -> Iterator[tuple[int, list[str], list[str], str | None]]:
    """(first line, tokens, tags, problem or None) per sentence of a CoNLL-style file."""
    start, tokens, tags, problem = 0, [], [], None
    for number, line in _lines(path):
        cols = line.split()
        if not cols or cols[0] == DOCSTART:
            if tokens or problem:
                yield start, tokens, tags, problem
            start, tokens, tags, problem = 0, [], [], None
            continue
        if not start:
            start = number
        if len(cols) < 2:
            problem = problem or f"line {number} has one column ({cols[0]!r}); expected 'token tag'"
            continue
        tokens.append(cols[0])
        tags.append(cols[-1])
    if tokens or problem:
        yield start, tokens, tags, problem


def _jsonl_sentences(path: Path) -> Iterator[tuple[int, list[str], list[str], str | None]]:
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield number, [], [], f"not JSON ({e.msg})"
            continue
        if not isinstance(row, dict):
            yield number, [], [], f"expected an object with 'tokens' and 'tags', got {type(row).__name__}"
            continue
        tokens, tags = row.get("tokens"), row.get("tags")
        bad = [name for name, value in (("tokens", tokens), ("tags", tags))
               if not isinstance(value, list) or not all(isinstance(x, str) for x in value)]
        if bad:
            yield number, [], [], f"field {bad[0]!r} must be a list of strings"
            continue
        if any(not t.strip() or t != t.strip() for t in tokens):
            yield number, [], [], "a token is empty or has surrounding whitespace"
            continue
        yield number, tokens, tags, None


def read_tagged(path: str | Path, scheme: str = "auto", on_violation: str = "repair") -> TaggedSentences:
    """Read a CoNLL-style or JSONL file of tagged sentences, plain or ``.gz`` (module docstring); tags come back in
    BIO.

    Raises ValueError for an unknown ``scheme`` / ``on_violation``, invalid UTF-8 (``file:line``), or a file with
    no usable sentence (the message lists the first problems); OSError when the file cannot be read.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if on_violation not in VIOLATION_POLICIES:
        raise ValueError(f"on_violation must be one of {', '.join(VIOLATION_POLICIES)}, got {on_violation!r}")
    path = Path(path)
    reader = _jsonl_sentences if is_jsonl(path) else _conll_sentences
    raw = list(reader(path))
    if scheme == "auto":
        scheme = detect_scheme([tags for _, _, tags, problem in raw if problem is None])
    stats = TagStats()
    out_tokens, out_tags, lines = [], [], []
    for start, tokens, tags, problem in raw:
        if problem is None and len(tokens) != len(tags):
            problem = f"{len(tokens)} tokens but {len(tags)} tags"
        if problem is None and not tokens:
            problem = "no tokens"
        bio: list[str] = []
        if problem is None:
            try:
                bio, repaired = to_bio(tags, scheme)
            except ValueError as e:
                problem = str(e)
            else:
                if repaired and on_violation == "skip":
                    problem = f"{repaired} tag(s) break the {scheme.upper()} scheme (an I- that starts an entity)"
                else:
                    stats.repaired += repaired
        if problem is not None:
            stats.skipped += 1
            stats.problems.append(f"{path}:{start}: {problem}")
            continue
        out_tokens.append(list(tokens))
        out_tags.append(bio)
        lines.append(start)
        stats.sentences += 1
        stats.tokens += len(tokens)
    if not out_tokens:
        shown = "; ".join(stats.problems[:3]) or "the file is empty"
        raise ValueError(f"{path}: no usable tagged sentence ({shown}); HINT: expected 'token tag' lines with blank "
                         "lines between sentences, or JSONL rows {\"tokens\": [...], \"tags\": [...]}")
    return TaggedSentences(out_tokens, out_tags, str(path), lines, scheme, stats)
