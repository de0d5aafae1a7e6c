"""Labelled text for sequence classification: reading (CSV/JSONL with ``text`` and ``label``) and encoding.

Every model input is ``[CLS] tokens[: max_len - 2] [SEP]`` (truncated, never dropped), for BERT and GPT backbones
alike, so the Python side, TorchScript bundles and the C++ runner tokenize the same way.
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
    """Read a CSV or JSONL file of labelled texts; a row without a label is an error naming file and line."""
    stats = ReadStats()
    texts, labels = [], []
    for doc in iter_documents([path], text_field=text_field, label_field=label_field, stats=stats, strict=True):
        if doc.label is None or str(doc.label).strip() == "":
            raise ValueError(f"{doc.source}:{doc.line}: missing {label_field!r} field; expected rows with "
                             f"{text_field!r} and {label_field!r}")
        texts.append(doc.text)
        labels.append(str(doc.label))
    if not texts:
        raise ValueError(f"{path}: no labelled rows found (expected a .csv or .jsonl with {text_field!r} and "
                         f"{label_field!r})")
    return LabelledTexts(texts, labels, str(path))


def encode_for_classifier(tok, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """``[CLS] ids [SEP]`` per text, truncated to ``max_len`` ids."""
    if max_len < 3:
        raise ValueError(f"max_len must be >= 3, got {max_len}")
    return [[tok.cls_id, *ids[: max_len - 2], tok.sep_id] for ids in tok.encode_batch(list(texts))]


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence. Returns ``input_ids`` (B, S) int64 and ``attention_mask`` (B, S) bool."""
    longest = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), longest), pad_id, dtype=torch.long)  # (B, S)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    lengths = torch.tensor([len(s) for s in seqs])
    mask = torch.arange(longest)[None, :] < lengths[:, None]  # (B, S)
    return ids, mask
