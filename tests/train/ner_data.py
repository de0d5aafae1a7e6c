"""Small generated NER data: sentences from templates with person / place / organisation names, as JSONL or
CoNLL; the entity words are drawn from disjoint per-type vocabularies, so a model can learn them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

NAMES = {
    "PER": [["Alice"], ["Bob", "Smith"], ["Carol"], ["David", "Lee"], ["江", "泽", "民"], ["李", "鹏"]],
    "LOC": [["Paris"], ["New", "York"], ["Berlin"], ["北", "京"], ["上", "海"], ["Rome"]],
    "ORG": [["Acme", "Corp"], ["United", "Nations"], ["新", "华", "社"], ["Globex"], ["Red", "Cross"]],
}
FILLER = ["the", "met", "in", "visited", "said", "that", "today", "with", "from", "and", "会", "见", "在", "说"]


def sentences(n: int, seed: int = 0, max_words: int = 14) -> list[tuple[list[str], list[str]]]:
    """``n`` (tokens, BIO tags) sentences."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        tokens: list[str] = []
        tags: list[str] = []
        for _ in range(int(rng.integers(3, max_words))):
            if rng.random() < 0.3:
                typ = list(NAMES)[int(rng.integers(len(NAMES)))]
                words = NAMES[typ][int(rng.integers(len(NAMES[typ])))]
                tokens += words
                tags += [f"B-{typ}"] + [f"I-{typ}"] * (len(words) - 1)
            else:
                tokens.append(FILLER[int(rng.integers(len(FILLER)))])
                tags.append("O")
        out.append((tokens, tags))
    return out


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for tokens, tags in rows:
            f.write(json.dumps({"tokens": tokens, "tags": tags}, ensure_ascii=False) + "\n")
    return path


def write_conll(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        f.write("-DOCSTART- O\n\n")
        for tokens, tags in rows:
            f.writelines(f"{t} {g}\n" for t, g in zip(tokens, tags))
            f.write("\n")
    return path
