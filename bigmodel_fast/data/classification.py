"""Labelled text for sequence classification: reading (CSV/JSONL with ``text`` and ``label``) and encoding.

A label is a class name (single-label), a list of names (multi-label: a JSON list, or in CSV a string split on
``|``) or a number (regression): :func:`read_labelled`.

Every model input is ``cls + tokens[: max_len - 2] + sep`` when the tokenizer has cls and sep roles (BERT
``[CLS]``/``[SEP]``, RoBERTa ``<s>``/``</s>``, bmf's SentencePiece ``[CLS]``/``[SEP]``), else ``tokens[: max_len]``
(GPT-2); truncated, never dropped, so the Python side, TorchScript bundles and the C++ runner tokenize the same way
(:func:`encode_for_classifier`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from .sources import ReadStats, iter_documents

TASKS = ("auto", "single-label", "multi-label", "regression")
DEFAULT_LABEL_SEP = "|"


@dataclass
class LabelledTexts:
    """Texts and their labels: ``str`` per row (single-label), ``list[str]`` (multi-label) or ``float``
    (regression); ``lines`` are the rows' line numbers in ``source`` and ``task`` the resolved task."""

    texts: list[str]
    labels: list
    source: str
    lines: list[int] = field(default_factory=list)
    task: str = "single-label"

    def __len__(self) -> int:
        return len(self.texts)


def _json_list(raw: str) -> list | None:
    """The list that ``raw`` spells as JSON (``'["a", "b"]'``), else None."""
    if not raw.startswith("["):
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def infer_task(labels: Sequence[str]) -> str:
    """``--task auto``: ``"multi-label"`` when any raw label is a JSON list, else ``"single-label"``."""
    return "multi-label" if any(_json_list(raw) is not None for raw in labels) else "single-label"


def parse_label(raw: str, task: str, label_sep: str, where: str, label_field: str = "label"):
    """One raw label (a stripped, non-empty string as the reader gives it) as the task's value: the string
    (single-label), a sorted list of distinct label names (multi-label: a JSON list such as ``["a", "b"]``, ``[]``
    for none, or a string split on ``label_sep``, e.g. ``a|b``) or a finite float (regression). ValueError naming
    ``where`` (file:line) for a label the task cannot read."""
    if task == "single-label":
        return raw
    if task == "multi-label":
        items = _json_list(raw)
        if items is None:
            if raw.startswith("["):
                raise ValueError(f"{where}: {label_field!r} {raw!r} is not a valid JSON list of labels")
            items = raw.split(label_sep) if label_sep else [raw]
        names = []
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ValueError(f"{where}: {label_field!r} holds {item!r}; expected a list of label strings")
            name = str(item).strip()
            if not name:
                raise ValueError(f"{where}: {label_field!r} {raw!r} holds an empty label name")
            names.append(name)
        return sorted(set(names))
    if task == "regression":
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{where}: {label_field!r} {raw!r} is not a number (--task regression)") from None
        if not math.isfinite(value):
            raise ValueError(f"{where}: {label_field!r} {raw!r} is not a finite number (--task regression)")
        return value
    raise ValueError(f"task must be one of {', '.join(TASKS[1:])}, got {task!r}")


def read_labelled(path: str | Path, text_field: str = "text", label_field: str = "label",
                  task: str = "single-label", label_sep: str = DEFAULT_LABEL_SEP) -> LabelledTexts:
    """Read a CSV or JSONL file of labelled texts; a row without a label is an error naming file and line.

    Labels are stripped of leading and trailing whitespace, so ``" business"`` and ``"business"`` are one class
    (a label that is only whitespace counts as missing). ``task``: ``"single-label"`` (the label string),
    ``"multi-label"`` (a JSON list, ``{"label": ["sport", "politics"]}``, or in CSV either ``["sport",
    "politics"]`` or ``sport|politics`` split on ``label_sep``), ``"regression"`` (a number), or ``"auto"``
    (multi-label when some label is a JSON list, else single-label); see :func:`parse_label`. A label the task
    cannot read is a one-line ValueError naming ``file:line``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    stats = ReadStats()
    texts, raws, lines, where = [], [], [], []
    for doc in iter_documents([path], text_field=text_field, label_field=label_field, stats=stats, strict=True):
        label = "" if doc.label is None else str(doc.label).strip()
        if not label:
            raise ValueError(f"{doc.source}:{doc.line}: missing {label_field!r} field; expected rows with "
                             f"{text_field!r} and {label_field!r}")
        texts.append(doc.text)
        raws.append(label)
        lines.append(doc.line)
        where.append(f"{doc.source}:{doc.line}")
    if not texts:
        raise ValueError(f"{path}: no labelled rows found (expected a .csv or .jsonl with {text_field!r} and "
                         f"{label_field!r})")
    if task == "auto":
        task = infer_task(raws)
    labels = [parse_label(raw, task, label_sep, w, label_field) for raw, w in zip(raws, where)]
    return LabelledTexts(texts, labels, str(path), lines, task)


PREFIX_BYTES_PER_ID = 8  # a long text is tokenized from a prefix of 8 x max_len bytes, doubled while needed


def _utf8_prefix(data: bytes, n: int) -> bytes:
    """The first ``n`` bytes of ``data`` (valid UTF-8), cut back to a character boundary."""
    while 0 < n < len(data) and (data[n] & 0xC0) == 0x80:
        n -= 1
    return data[:n]


def _stable_head(tok, data: bytes, ids: list[int], size: int, need: int) -> list[int]:
    """First ``need`` ids of the text ``data`` given the ids of its ``size``-byte prefix: double the prefix until
    it yields more than ``need`` ids whose first ``need`` equal those of the doubled prefix, or covers the text."""
    while True:
        whole = 2 * size >= len(data)
        nxt = tok.encode((data if whole else _utf8_prefix(data, 2 * size)).decode("utf-8", "surrogatepass"))
        if len(ids) > need and ids[:need] == nxt[:need]:
            return ids[:need]
        ids, size = nxt, 2 * size
        if whole:
            return ids[:need]


def classifier_wrap(tok) -> tuple[list[int], list[int]]:
    """``(head, tail)`` ids around a classifier input: ``([cls_id], [sep_id])`` when the tokenizer has both roles,
    else ``([], [])``."""
    if tok.cls_id is not None and tok.sep_id is not None:
        return [tok.cls_id], [tok.sep_id]
    return [], []


def empty_input(tok) -> list[int]:
    """The ids that stand for a text with no tokens (an empty line): nothing extra with cls/sep roles (the
    input is ``[cls] [sep]``); without them (GPT-2) ``[bos]``, else ``[eos]`` (GPT-2's ``<|endoftext|>`` is both),
    so the model never sees a zero-length row. ValueError when the tokenizer has none of these roles."""
    head, tail = classifier_wrap(tok)
    if head or tail:
        return []
    for role in ("bos", "eos"):
        if getattr(tok, f"{role}_id", None) is not None:
            return [getattr(tok, f"{role}_id")]
    raise ValueError("an empty text has no ids and the tokenizer has no cls/sep, bos or eos token to stand for it")


def fill_empty(tok, seqs: list[list[int]]) -> list[list[int]]:
    """``seqs`` with every empty sequence replaced by :func:`empty_input` (in place; returned)."""
    if any(not s for s in seqs):
        filler = empty_input(tok)
        for i, s in enumerate(seqs):
            if not s:
                seqs[i] = list(filler)
    return seqs


def encode_for_classifier(tok, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Classifier input ids per text, at most ``max_len`` ids.

    With cls and sep roles (BERT, RoBERTa, bmf SentencePiece): ``[cls_id] + ids[: max_len - 2] + [sep_id]``;
    without them (GPT-2): ``ids[: max_len]`` as they are. ``need`` is the number of text ids kept
    (``max_len - 2``, or ``max_len``). For example, with BERT ids 101/102 and ``max_len=5``, "a b c d" ->
    ``[101, a, b, c, 102]``; with GPT-2 and ``max_len=3`` -> ``[a, Ġb, Ġc]``.

    A long text is never tokenized whole: its first ``need`` ids come from a prefix of ``8 * max_len`` UTF-8
    bytes (cut back to a character boundary), doubled until that prefix yields more than ``need`` ids whose first
    ``need`` equal those of the doubled prefix (or the text is covered). ``bmf_runner`` applies the identical rule,
    so both give the same ids at bounded cost. An empty text without cls/sep roles becomes :func:`empty_input`."""
    head_ids, tail_ids = classifier_wrap(tok)
    low = 1 + len(head_ids) + len(tail_ids)
    if max_len < low:
        raise ValueError(f"max_len must be >= {low}, got {max_len}")
    need, start = max_len - len(head_ids) - len(tail_ids), PREFIX_BYTES_PER_ID * max_len
    heads, longs = [], []
    for text in texts:
        data = None if len(text) * 4 <= start else text.encode("utf-8", "surrogatepass")
        if data is None or len(data) <= start:
            heads.append(text)
            longs.append(None)
        else:
            heads.append(_utf8_prefix(data, start).decode("utf-8", "surrogatepass"))
            longs.append(data)
    out = []
    for ids, data in zip(tok.encode_batch(heads), longs):
        ids = ids[:need] if data is None else _stable_head(tok, data, ids, start, need)
        out.append([*head_ids, *ids, *tail_ids])
    return fill_empty(tok, out)


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence. Returns ``input_ids`` (B, S) int64 and ``attention_mask`` (B, S) bool."""
    longest = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), longest), pad_id, dtype=torch.long)  # (B, S)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs])
    mask = torch.arange(longest)[None, :] < lengths[:, None]  # (B, S)
    return ids, mask
