"""Tests for bigmodel_fast.data.sources: formats, gzip, bad rows, directory walking, UTF-8 repair."""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from bigmodel_fast.data.sources import (
    Document,
    ReadStats,
    SourceError,
    SourceFormatError,
    SourceNotFoundError,
    decode_bytes,
    detect_format,
    iter_documents,
    list_files,
    read_texts,
)


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def _docs(paths, **kw) -> tuple[list[Document], ReadStats]:
    stats = ReadStats()
    docs = list(iter_documents(paths, stats=stats, **kw))
    return docs, stats


# ------------------------------------------------------------------------------------------- plain text formats


def test_text_formats_one_document_per_file(tmp_path):
    files = {
        "a.txt": "plain text\nsecond line\n",
        "b.md": "# Title\n\nSome *markdown*.",
        "c.rst": "Title\n=====\n\nSome rst.",
        "d.rst.txt": "Sphinx source\n-------------\n",
    }
    for name, text in files.items():
        _write(tmp_path / name, text)
    docs, stats = _docs([tmp_path])
    assert [Path(d.source).name for d in docs] == sorted(files)
    assert [d.text for d in docs] == [files[n] for n in sorted(files)]
    assert all(d.line is None and d.label is None for d in docs)
    assert stats.files == 4 and stats.documents == 4
    assert stats.bytes == sum(len(t.encode()) for t in files.values())
    assert stats.errors == [] and stats.skipped_files == {}


def test_paragraph_and_line_split_report_start_lines(tmp_path):
    f = _write(tmp_path / "p.txt", "first para\nstill first\n\n  \t\nsecond para\n\n\n\nthird\n")
    paras, _ = _docs([f], split="paragraph")
    assert [(d.text, d.line) for d in paras] == [
        ("first para\nstill first", 1),
        ("second para", 5),
        ("third", 9),
    ]
    lines, _ = _docs([f], split="line")
    assert [(d.text, d.line) for d in lines] == [
        ("first para", 1),
        ("still first", 2),
        ("second para", 5),
        ("third", 9),
    ]
    with pytest.raises(ValueError, match="split="):
        list(iter_documents([f], split="sentence"))


def test_line_modes_stream_crlf_and_repair(tmp_path):
    raw = b"\xef\xbb\xbfone\r\ntwo caf\xe9\r\n\r\nthree\rfour\n"
    f = _write(tmp_path / "w.txt.gz", gzip.compress(raw))
    stats = ReadStats()
    lines = list(iter_documents([f], split="line", stats=stats))
    assert [(d.text, d.line) for d in lines] == [("one", 1), ("two café", 2), ("three", 4), ("four", 5)]
    assert stats.repaired_bytes == 1 and stats.bytes == len(raw)
    paras, _ = _docs([f], split="paragraph")
    assert [(d.text, d.line) for d in paras] == [("one\ntwo café", 1), ("three\nfour", 4)]
    empty = _write(tmp_path / "e.txt", b"")
    docs, stats = _docs([empty], split="paragraph")
    assert docs == [] and stats.empty_files == 1


def test_bom_and_crlf_are_normalised(tmp_path):
    f = _write(tmp_path / "w.txt", b"\xef\xbb\xbfline one\r\nline two\rline three")
    (doc,), stats = _docs([f])
    assert doc.text == "line one\nline two\nline three"
    assert stats.repaired_bytes == 0


def test_empty_file_yields_nothing(tmp_path):
    f = _write(tmp_path / "empty.txt", b"")
    docs, stats = _docs([f])
    assert docs == [] and stats.files == 1 and stats.empty_files == 1


# ------------------------------------------------------------------------------------------- jsonl / csv


def test_jsonl_text_and_label_fields(tmp_path):
    rows = [
        {"text": "good", "label": "pos"},
        {"text": "bad", "label": 0},
        {"text": "no label"},
        {"text": "null label", "label": None},
    ]
    f = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in rows[:2]) + "\n\n" + "\n".join(
        json.dumps(r) for r in rows[2:]
    ))
    docs, stats = _docs([f])
    assert [(d.text, d.label, d.line) for d in docs] == [
        ("good", "pos", 1),
        ("bad", "0", 2),
        ("no label", None, 4),
        ("null label", None, 5),
    ]
    assert stats.errors == []


def test_jsonl_custom_fields(tmp_path):
    f = _write(tmp_path / "d.ndjson", json.dumps({"body": "x", "y": "neg"}) + "\n")
    (doc,), _ = _docs([f], text_field="body", label_field="y")
    assert (doc.text, doc.label) == ("x", "neg")


def test_jsonl_bad_rows_are_reported_with_file_and_line(tmp_path):
    f = _write(
        tmp_path / "bad.jsonl",
        "\n".join(
            [
                json.dumps({"text": "ok 1"}),
                '{"text": "unterminated',
                json.dumps({"content": "wrong field"}),
                json.dumps(["not", "an", "object"]),
                json.dumps({"text": 42}),
                json.dumps({"text": "ok 6"}),
            ]
        ),
    )
    docs, stats = _docs([f])
    assert [d.text for d in docs] == ["ok 1", "ok 6"]
    assert stats.error_count == 4 and len(stats.errors) == 4
    assert stats.errors[0].startswith(f"{f}:2: invalid JSON")
    assert stats.errors[1].startswith(f"{f}:3: missing field 'text'") and "content" in stats.errors[1]
    assert stats.errors[2].startswith(f"{f}:4: expected a JSON object")
    assert stats.errors[3].startswith(f"{f}:5: field 'text' must be a string")
    with pytest.raises(SourceFormatError, match=rf"{f.name}:2: invalid JSON"):
        list(iter_documents([f], strict=True))


def test_csv_header_label_and_multiline_rows(tmp_path):
    f = _write(
        tmp_path / "d.csv",
        'id,text,label\n1,hello,pos\n2,"multi\nline, with comma",neg\n3,"say ""hi""",\n4,only three\n',
    )
    docs, stats = _docs([f])
    assert [(d.text, d.label, d.line) for d in docs] == [
        ("hello", "pos", 2),
        ("multi\nline, with comma", "neg", 3),
        ('say "hi"', None, 5),
    ]
    assert stats.errors == [f"{f}:6: expected 3 columns as in the header, got 2"]


def test_csv_missing_text_column_and_tsv(tmp_path):
    f = _write(tmp_path / "d.csv", "id,body\n1,x\n")
    docs, stats = _docs([f])
    assert docs == [] and len(stats.errors) == 1
    assert stats.errors[0].startswith(f"{f}:1: header has no column 'text'")
    with pytest.raises(SourceFormatError):
        list(iter_documents([f], strict=True))
    t = _write(tmp_path / "d.tsv", "text\tlabel\na, b\tpos\n")
    (doc,), _ = _docs([t])
    assert (doc.text, doc.label) == ("a, b", "pos")


# ------------------------------------------------------------------------------------------- gzip


def test_gzip_inputs_are_read_transparently(tmp_path):
    _write(tmp_path / "a.txt.gz", gzip.compress("gz text ✓".encode()))
    _write(tmp_path / "b.jsonl.gz", gzip.compress(b'{"text": "gz row", "label": "pos"}\n'))
    _write(tmp_path / "c.csv.gz", gzip.compress(b"text\ngz cell\n"))
    docs, stats = _docs([tmp_path])
    assert [(d.text, d.label) for d in docs] == [("gz text ✓", None), ("gz row", "pos"), ("gz cell", None)]
    assert stats.bytes == len("gz text ✓".encode()) + len(b'{"text": "gz row", "label": "pos"}\n') + len(
        b"text\ngz cell\n"
    )
    assert detect_format("x.JSONL.GZ") == ("jsonl", True)


def test_corrupt_gzip_is_reported_not_crashing(tmp_path):
    good = gzip.compress(b'{"text": "a"}\n{"text": "b"}\n' * 50)
    bad = _write(tmp_path / "bad.jsonl.gz", good[: len(good) // 2])
    notgz = _write(tmp_path / "notgz.txt.gz", b"this is not gzip data")
    docs, stats = _docs([bad, notgz])
    assert stats.error_count == 2
    assert stats.errors[0].startswith(f"{bad}: could not read file")
    assert stats.errors[1].startswith(f"{notgz}: could not read file")
    assert all(d.text in ("a", "b") for d in docs)
    with pytest.raises(SourceFormatError, match="notgz.txt.gz"):
        list(iter_documents([notgz], strict=True))


# ------------------------------------------------------------------------------------------- directories


def test_directory_recursion_is_sorted_and_deterministic(tmp_path):
    names = ["z.txt", "b/y.txt", "a.txt", "b/c/x.txt", "b/a.txt", "B.txt"]
    for n in names:  # created in a scrambled order on purpose
        _write(tmp_path / n, n)
    docs, _ = _docs([tmp_path])
    got = [Path(d.source).relative_to(tmp_path).as_posix() for d in docs]
    expected = sorted(names, key=lambda n: tuple(n.split("/")))
    assert got == expected
    assert [d.text for d in docs] == expected
    again, _ = _docs([tmp_path])
    assert [d.source for d in again] == [d.source for d in docs]
    flat, _ = _docs([tmp_path], recursive=False)
    assert sorted(Path(d.source).name for d in flat) == ["B.txt", "a.txt", "z.txt"]


def test_explicit_files_keep_given_order(tmp_path):
    a = _write(tmp_path / "a.txt", "A")
    b = _write(tmp_path / "b.txt", "B")
    assert list(read_texts([b, a])) == ["B", "A"]
    assert list(read_texts(a)) == ["A"]


def test_unknown_extensions_and_hidden_files_are_skipped_and_reported(tmp_path):
    _write(tmp_path / "keep.txt", "kept")
    _write(tmp_path / "model.bin", b"\x00\x01")
    _write(tmp_path / "script.py", "print(1)")
    _write(tmp_path / ".hidden.txt", "secret")
    _write(tmp_path / ".git" / "config.txt", "git")
    explicit = _write(tmp_path / "other" / "data.parquet", b"PAR1")
    stats = ReadStats()
    docs = list(iter_documents([tmp_path, explicit], stats=stats))
    assert [d.text for d in docs] == ["kept"]
    skipped = {Path(k).relative_to(tmp_path).as_posix(): v for k, v in stats.skipped_files.items()}
    assert set(skipped) == {"model.bin", "script.py", ".hidden.txt", ".git", "other/data.parquet"}
    assert "unknown extension" in skipped["model.bin"]
    assert skipped[".hidden.txt"] == "hidden file"
    assert json.loads(json.dumps(stats.to_dict()))["skipped_files"] == stats.skipped_files


def test_missing_path_raises_clear_error(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(SourceNotFoundError, match="nope.txt: no such file"):
        list(iter_documents([missing]))
    assert issubclass(SourceNotFoundError, FileNotFoundError) and issubclass(SourceNotFoundError, SourceError)
    assert issubclass(SourceError, ValueError)
    with pytest.raises(SourceNotFoundError):
        list_files(missing)


# ------------------------------------------------------------------------------------------- UTF-8 repair


def test_invalid_utf8_is_repaired_as_cp1252_and_counted(tmp_path):
    # UTF-8 text with latin-1 / cp1252 fragments pasted in: é (0xE9), ï (0xEF), curly quotes 0x93/0x94, € 0x80
    raw = "ok ✓ ".encode() + b"caf\xe9 na\xefve \x93quoted\x94 5\x80"
    f = _write(tmp_path / "mixed.txt", raw)
    (doc,), stats = _docs([f])
    assert doc.text == "ok ✓ café naïve “quoted” 5€"
    assert stats.repaired_bytes == 5
    j = _write(tmp_path / "mixed.jsonl", b'{"text": "r\xe9sum\xe9", "label": "pos"}\n')
    c = _write(tmp_path / "mixed.csv", b"text,label\nna\xefve,n\xe9g\n")
    docs, stats = _docs([j, c])
    assert [(d.text, d.label) for d in docs] == [("résumé", "pos"), ("naïve", "nég")]
    assert stats.repaired_bytes == 4


def test_decode_bytes_edge_cases():
    assert decode_bytes("plain ✓".encode()) == ("plain ✓", 0)
    # 0x81 is undefined in cp1252: falls back to latin-1 (a C1 control the cleaner drops)
    assert decode_bytes(b"a\x81b") == ("a\x81b", 1)
    # a truncated multi-byte sequence at the end
    text, n = decode_bytes("漢".encode()[:2])
    assert n == 2 and len(text) == 2
    # an encoded surrogate (invalid in UTF-8) is repaired byte by byte, never left as a lone surrogate
    text, n = decode_bytes(b"x\xed\xa0\x80y")
    assert n == 3 and text.startswith("x") and text.endswith("y")
    assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


# ------------------------------------------------------------------------------------------- byte-order marks


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                           ("utf-32-le", b"\xff\xfe\x00\x00"), ("utf-32-be", b"\x00\x00\xfe\xff"),
                                           ("utf-8", b"\xef\xbb\xbf")])
def test_bom_selects_the_encoding_in_every_format(tmp_path, encoding, bom):
    text = "Grüße aus Zürich – 漢字 ✓\r\nzweite Zeile"
    def enc(s: str) -> bytes:
        return bom + s.encode(encoding)
    f = _write(tmp_path / "doc.txt", enc(text))
    lines = _write(tmp_path / "lines.txt.gz", gzip.compress(enc(text + "\n\nlast\n")))
    j = _write(tmp_path / "rows.jsonl", enc(json.dumps({"text": "café ✓", "label": "pos"}, ensure_ascii=False) + "\n"))
    c = _write(tmp_path / "rows.csv", enc("text,label\nnaïve 漢,nég\n"))
    (doc,), stats = _docs([f])
    assert doc.text == "Grüße aus Zürich – 漢字 ✓\nzweite Zeile" and stats.repaired_bytes == 0
    docs, _ = _docs([lines], split="line")
    assert [d.text for d in docs] == ["Grüße aus Zürich – 漢字 ✓", "zweite Zeile", "last"]
    assert [d.line for d in docs] == [1, 2, 4]
    docs, stats = _docs([j, c])
    assert [(d.text, d.label) for d in docs] == [("café ✓", "pos"), ("naïve 漢", "nég")]
    assert stats.repaired_bytes == 0 and stats.errors == []
    if encoding != "utf-8":
        assert stats.bom_encodings == {encoding[:6]: 2}


def test_invalid_utf16_code_units_become_replacement_characters(tmp_path):
    f = _write(tmp_path / "bad.txt", b"\xff\xfe" + "ok".encode("utf-16-le") + b"\x00\xd8" + "!".encode("utf-16-le"))
    (doc,), _ = _docs([f])
    assert doc.text == "ok\ufffd!"


# ------------------------------------------------------------------------------ non-regular and unreadable inputs


@pytest.fixture()
def alarm():
    """Fail (instead of hanging the suite) when a blocking open of a FIFO sneaks back in."""
    import signal

    def timeout(*_):  # not TimeoutError: that is an OSError, which the reader records and goes on after
        pytest.fail("reading the inputs blocked (a FIFO was opened)")

    old = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need os.mkfifo (POSIX)")
def test_fifos_devices_and_dangling_links_are_skipped_not_opened(tmp_path, alarm):
    _write(tmp_path / "in" / "a.txt", "regular")
    os.mkfifo(tmp_path / "in" / "pipe.txt")
    os.mkfifo(tmp_path / "given.jsonl")
    (tmp_path / "in" / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    docs, stats = _docs([tmp_path / "in", tmp_path / "given.jsonl", "/dev/null"])
    assert [d.text for d in docs] == ["regular"] and stats.files == 1 and stats.errors == []
    skipped = stats.skipped_files
    assert skipped[str(tmp_path / "in" / "pipe.txt")] == "not a regular file (named pipe); only regular files are read"
    assert "named pipe" in skipped[str(tmp_path / "given.jsonl")]
    assert stats.skipped_counts["not a regular file"] == 2  # /dev/null has no known extension: counted as such
    assert "unreadable (FileNotFoundError" in skipped[str(tmp_path / "in" / "dangling.txt")]
    assert stats.skipped_counts["unreadable"] == 1 and stats.skipped_counts["unknown extension"] == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need os.mkfifo (POSIX)")
def test_a_fifo_swapped_in_after_the_type_check_is_refused_without_blocking(tmp_path, alarm, monkeypatch):
    import bigmodel_fast.data.sources as src_mod

    os.mkfifo(tmp_path / "late.txt")
    monkeypatch.setattr(src_mod, "_is_regular", lambda f, stats: True)  # as if it was a file when listed
    docs, stats = _docs([tmp_path / "late.txt"])
    assert docs == [] and stats.files == 0
    assert "not a regular file" in stats.skipped_files[str(tmp_path / "late.txt")]


def test_unreadable_directories_and_files_are_counted_with_their_reason(tmp_path, monkeypatch):
    """Root reads anything, so the PermissionErrors are injected where the reader meets them."""
    _write(tmp_path / "a.txt", "kept")
    _write(tmp_path / "locked" / "b.txt", "never listed")
    _write(tmp_path / "secret.txt", "never opened")
    real_scandir, real_open = os.scandir, os.open

    def scandir(path="."):
        if Path(path) == tmp_path / "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    def os_open(path, *args, **kwargs):
        if Path(path) == tmp_path / "secret.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "open", os_open)
    docs, stats = _docs([tmp_path])
    assert [d.text for d in docs] == ["kept"] and stats.files == 1
    assert stats.skipped_files[str(tmp_path / "locked")].startswith("unreadable directory (PermissionError")
    assert stats.skipped_files[str(tmp_path / "secret.txt")].startswith("unreadable (PermissionError")
    assert stats.skipped_counts == {"unreadable": 2}
    with pytest.raises(SourceFormatError, match="secret.txt: could not open"):
        list(iter_documents([tmp_path / "secret.txt"], strict=True))


# ------------------------------------------------------------------------------------------------ labels


def test_read_labelled_strips_label_whitespace(tmp_path):
    from bigmodel_fast.data.classification import read_labelled

    f = _write(tmp_path / "l.jsonl", "".join(json.dumps({"text": f"t{i}", "label": lab}) + "\n"
                                             for i, lab in enumerate([" business", "business", "sport\t", 3])))
    assert read_labelled(f).labels == ["business", "business", "sport", "3"]
    c = _write(tmp_path / "l.csv", "text,label\na, business \nb,business\n")
    assert read_labelled(c).labels == ["business", "business"]
    blank = _write(tmp_path / "blank.jsonl", json.dumps({"text": "x", "label": "  "}) + "\n")
    with pytest.raises(ValueError, match="blank.jsonl:1: missing 'label'"):
        read_labelled(blank)
