"""Tests for bigmodel_fast.data.stats: one counter type for read, clean, quality, PII and dedup, each stage keeping
its stats.json layout."""
from __future__ import annotations

import json

from bigmodel_fast.data import clean, pii, quality, sources
from bigmodel_fast.data.stats import (
    MAX_ERRORS_KEPT,
    CleanStats,
    DedupStats,
    PIIStats,
    QualityStats,
    ReadStats,
    StageStats,
)


def test_every_stage_uses_the_one_type_and_the_old_names_still_import():
    for cls in (ReadStats, CleanStats, QualityStats, PIIStats, DedupStats):
        assert issubclass(cls, StageStats)
    assert sources.ReadStats is ReadStats and clean.CleanStats is CleanStats
    assert quality.QualityStats is QualityStats and pii.PIIStats is PIIStats


def test_counters_are_attributes_and_start_at_zero():
    s = QualityStats()
    assert (s.seen, s.kept, s.modified, s.chars_in, s.chars_out, s.lines_dropped) == (0, 0, 0, 0, 0, {})
    s.chars_in += 5
    s.count("chars_in", 2)
    s.tally("lines_dropped", "policy", 3)
    s.drop("c4:empty")
    s.drop("c4:empty", 2)
    assert s.counts["chars_in"] == s.chars_in == 7
    assert s.lines_dropped == {"policy": 3} and s.tally_of("lines_dropped") is s.lines_dropped
    assert s.dropped == {"c4:empty": 3} and s.dropped_total == 3


def test_add_merges_every_counter():
    a, b = QualityStats(seen=3, kept=1), QualityStats(seen=2, kept=2)
    a.drop("x:y", 2)
    b.drop("x:y")
    b.drop("x:z")
    b.modified += 4
    b.tally("lines_dropped", "javascript")
    a.add(b)
    assert (a.seen, a.kept, a.modified) == (5, 3, 4)
    assert a.dropped == {"x:y": 3, "x:z": 1} and a.lines_dropped == {"javascript": 1}


def test_quality_layout_sorts_by_count():
    s = QualityStats(seen=4, kept=1)
    for reason in ("b:r", "a:r", "b:r"):
        s.drop(reason)
    d = json.loads(json.dumps(s.to_dict()))
    assert list(d) == ["seen", "kept", "modified", "chars_in", "chars_out", "dropped", "lines_dropped",
                       "line_chars_dropped", "dropped_total"]
    assert list(d["dropped"].items()) == [("b:r", 2), ("a:r", 1)] and d["dropped_total"] == 3


def test_clean_layout_flattens_its_two_reasons():
    s = CleanStats(seen=3, kept=1)
    s.drop("empty")
    s.drop("short")
    s.chars_in += 10
    assert s.dropped_empty == s.dropped_short == 1
    assert s.to_dict() == {"seen": 3, "kept": 1, "dropped_empty": 1, "dropped_short": 1, "chars_in": 10,
                           "chars_out": 0}


def test_read_layout_skips_and_errors():
    s = ReadStats()
    s.files += 1
    s.skip("a/.x", "hidden", "hidden file")
    s.skip("a/b.bin", "unknown extension", "unknown")
    for i in range(MAX_ERRORS_KEPT + 5):
        s.add_error(f"f:{i}: bad")
    assert s.skipped_counts == s.dropped == {"hidden": 1, "unknown extension": 1}
    d = s.to_dict()
    assert list(d) == ["files", "documents", "bytes", "repaired_bytes", "skipped_files", "errors", "error_count",
                       "empty_files", "skipped_counts", "bom_encodings"]
    assert d["files"] == 1 and d["error_count"] == MAX_ERRORS_KEPT + 5 and len(d["errors"]) == MAX_ERRORS_KEPT
    assert d["skipped_files"] == {"a/.x": "hidden file", "a/b.bin": "unknown"}
    d["errors"].append("x")
    assert len(s.errors) == MAX_ERRORS_KEPT  # to_dict is a copy


def test_pii_and_dedup_layouts():
    p = PIIStats()
    p.tally("masked", "email", 2)
    p.tally("masked", "phone", 0)
    p.seen += 3
    p.kept += 3
    p.modified += 1
    assert p.to_dict() == {"seen": 3, "kept": 3, "modified": 1, "masked": {"email": 2, "phone": 0}}
    d = DedupStats(seen=10, method="minhash")
    d.reports["exact"] = {"duplicates": 2}
    d.drop("exact", 2)
    d.reports["minhash"] = {"duplicates": 1}
    d.drop("minhash")
    d.kept = 7
    assert d.to_dict() == {"method": "minhash", "documents_in": 10, "exact": {"duplicates": 2},
                           "minhash": {"duplicates": 1}, "documents_out": 7, "duplicates": 3}
    assert d.dropped_total == 3


def test_source_stats_groups_by_input_file_or_directory_and_samples():
    from bigmodel_fast.data.sources import Document
    from bigmodel_fast.data.stats import SourceStats

    s = SourceStats(explicit=frozenset({"in/a.jsonl"}), samples_per_rule=2, sample_chars=4)
    docs = [Document("hello world", "in/a.jsonl", line=3), Document("abc", "in/dir/x.txt"),
            Document("defgh", "in/dir/y.txt"), Document("zz", "top.txt")]
    assert list(s.count_read(docs)) == docs
    assert [s.key(d) for d in docs] == ["in/a.jsonl", "in/dir", "in/dir", "."]
    for d in docs[:3]:
        s.drop(d, "r:x")
    s.drop_missing("clean", {"in/dir": 2, ".": 1}, {"in/dir": 2})
    s.keep("in/a.jsonl", 5)
    d = s.to_dict()
    assert d["sources"]["in/dir"] == {"documents": 2, "chars": 8, "kept": 0, "chars_kept": 0, "dropped": {"r:x": 2}}
    assert d["sources"]["."]["dropped"] == {"clean": 1}
    assert (d["sources"]["in/a.jsonl"]["kept"], d["sources"]["in/a.jsonl"]["chars_kept"]) == (1, 5)
    assert d["dropped_samples"] == {"r:x": [{"source": "in/a.jsonl:3", "chars": 11, "text": "hell"},
                                            {"source": "in/dir/x.txt", "chars": 3, "text": "abc"}]}
