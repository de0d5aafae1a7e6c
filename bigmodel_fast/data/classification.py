"""Labelled text for sequence classification: reading (CSV/JSONL with ``text`` and ``label``) and encoding.

Every model input is ``cls + tokens[: max_len - 2] + sep`` when the tokenizer has cls and sep roles (BERT
``[CLS]``/``[SEP]``, RoBERTa ``<s>``/``</s>``, bmf's SentencePiece ``[CLS]``/``[SEP]``), else ``tokens[: max_len]``
(GPT-2); truncated, never dropped, so the Python side, TorchScript bundles and the C++ runner tokenize the same way
(:func:`encode_for_classifier`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .sources import ReadStats, iter_documents


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def read_labelled(path: str | Path, text_field: str = "text", label_field: str = "label") -> LabelledTexts:
    """Read a CSV or JSONL file of labelled texts; a row without a label is an error naming file and line.

    Labels are stripped of leading and trailing whitespace, so ``" business"`` and ``"business"`` are one class
    (a label that is only whitespace counts as missing)."""
    stats = ReadStats()
    texts, labels = [], []
    for doc in iter_documents([path], text_field=text_field, label_field=label_field, stats=stats, strict=True):
        label = "" if doc.label is None else str(doc.label).strip()
        if not label:
            raise ValueError(f"{doc.source}:{doc.line}: missing {label_field!r} field; expected rows with "
                             f"{text_field!r} and {label_field!r}")
        texts.append(doc.text)
        labels.append(label)
    if not texts:
        raise ValueError(f"{path}: no labelled rows found (expected a .csv or .jsonl with {text_field!r} and "
                         f"{label_field!r})")
    return LabelledTexts(texts, labels, str(path))


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


def encode_for_classifier(tok, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Classifier input ids per text, at most ``max_len`` ids.

    With cls and sep roles (BERT, RoBERTa, bmf SentencePiece): ``[cls_id] + ids[: max_len - 2] + [sep_id]``;
    without them (GPT-2): ``ids[: max_len]`` as they are. ``need`` is the number of text ids kept
    (``max_len - 2``, or ``max_len``). For example, with BERT ids 101/102 and ``max_len=5``, "a b c d" ->
    ``[101, a, b, c, 102]``; with GPT-2 and ``max_len=3`` -> ``[a, Ġb, Ġc]``.

    A long text is never tokenized whole: its first ``need`` ids come from a prefix of ``8 * max_len`` UTF-8
    bytes (cut back to a character boundary), doubled until that prefix yields more than ``need`` ids whose first
    ``need`` equal those of the doubled prefix (or the text is covered). ``bmf_runner`` applies the identical rule,
    so both give the same ids at bounded cost."""
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
    return out


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence. Returns ``input_ids`` (B, S) int64 and ``attention_mask`` (B, S) bool."""
    longest = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), longest), pad_id, dtype=torch.long)  # (B, S)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs])
    mask = torch.arange(longest)[None, :] < lengths[:, None]  # (B, S)
    return ids, mask
