"""Tests for bigmodel_fast.data.clean on nasty input (HTML, mixed encodings, control characters, NFKC, whitespace)."""
from __future__ import annotations

import dataclasses
import re
import time

import pytest

from bigmodel_fast.data.clean import CleanConfig, CleanStats, clean_documents, clean_text
from bigmodel_fast.data.sources import Document, ReadStats, iter_documents

NASTY = [
    "<html><head><style>p { color: red }</style><script>if (a < b) { document.write('<p>x</p>') }</script>"
    "</head><body><p>Caf&eacute; &amp; bar</p></body></html>",
    "１９９８年，ＡＢＣ\u3000ｄｅｆ",
    "red\x1b[31m alert\x1b[0m done\x00\x07 \u200bzero\u200bwidth\r\nnext",
    "  lots   of\t\tspace \n\n\n\n\n next para  \n",
    "Title\n=====\n\n.. index:: single: foo\n\nUse :func:`len` and ``x + 1``.",
    "",
    " \n\t \n",
]


# ------------------------------------------------------------------------------------------- HTML


def test_html_script_style_comments_and_entities():
    html = (
        "<!DOCTYPE html><html><head><title>T</title><style>body{color:red}</style>"
        "<script type='text/javascript'>var s = '<b>not text</b>'; alert(1);</script></head>"
        "<body><!-- a comment --><p>Caf&eacute; &amp; b&#228;r &#x1F600;</p>"
        "<div>x<b>bo</b>ld <a href=\"/u?a=1&amp;b=2\">link</a></div></body></html>"
    )
    out = clean_text(html)
    assert out == "T\n\nCafé & bär 😀\n\nxbold link"
    for junk in ("color:red", "alert", "not text", "comment", "href", "<", ">"):
        assert junk not in out


def test_html_keeps_non_html_angle_brackets_and_escaped_tags():
    assert clean_text("List<int> and Map<K, V> and a < b > c") == "List<int> and Map<K, V> and a < b > c"
    # escaped markup is decoded after tag stripping, so it survives as visible text
    assert clean_text("write &lt;script&gt;alert(1)&lt;/script&gt;") == "write <script>alert(1)</script>"
    # legacy entities without ';' are left alone (avoids "&copy=1" -> "©=1")
    assert clean_text("a&copy=1&amp;b") == "a&copy=1&b"
    assert clean_text("<b>bold</b>", CleanConfig(strip_html=False)) == "<b>bold</b>"


def test_unclosed_script_and_comment_lose_only_their_markers():
    assert clean_text("before <script>var x = 1; after") == "before var x = 1; after"
    assert clean_text("a <!-- b <!-- c --> d <!-- e") == "a d e"


@pytest.mark.parametrize(
    "text",
    ["<!--" * 20000, "<script>" * 20000, "[" * 50000 + "](", "<!a" * 30000, " " * 100000 + "x ::", "..\n" * 50000],
)
def test_pathological_input_is_linear_time(text):
    # each of these took seconds with naive regexes (quadratic backtracking); now well under 0.1 s
    start = time.perf_counter()
    clean_text(text)
    assert time.perf_counter() - start < 1.0


# ------------------------------------------------------------------------------------------- encodings


def test_cp1252_fragments_in_utf8_file_are_repaired_then_cleaned(tmp_path):
    f = tmp_path / "mixed.txt"
    f.write_bytes("中文 ✓ ".encode() + b"\x93Caf\xe9\x94 \x96 na\xefve\x81!")
    stats = ReadStats()
    (doc,) = list(clean_documents(iter_documents([f], stats=stats)))
    # 0x93/0x94 -> curly quotes, 0x96 -> en dash, 0x81 (undefined in cp1252) -> C1 control, dropped by the cleaner
    assert doc.text == "中文 ✓ “Café” – naïve!"
    assert stats.repaired_bytes == 6


# ------------------------------------------------------------------------------------------- control characters


def test_control_characters_and_ansi_escapes():
    assert clean_text("a\x00b\x07c\x7fd\x9be") == "abcde"
    assert clean_text("\x1b[1;31mERROR\x1b[0m: disk \x1b]0;title\x07full") == "ERROR: disk full"
    assert clean_text("tab\tsep") == "tab sep"
    assert clean_text("dos\r\nline\rmac\x0bvt\x0cff\u2028ls") == "dos\nline\nmac\nvt\nff\nls"


def test_invisible_format_characters():
    # zero-width space, word joiner, BOM, soft hyphen, bidi overrides: dropped
    assert clean_text("zero\u200bwidth\u2060join\ufeffbom soft\u00adhyphen \u202eevil\u202c") == (
        "zerowidthjoinbom softhyphen evil"
    )
    # ZWJ / ZWNJ carry meaning (emoji sequences, Persian): kept
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert clean_text(f"family {family}") == f"family {family}"
    assert clean_text("می\u200cخواهم") == "می\u200cخواهم"
    assert clean_text("x\u200by", CleanConfig(drop_control=False)) == "x\u200by"


def test_lone_surrogates_are_dropped():
    assert clean_text("a\ud800b\udfffc") == "abc"


# ------------------------------------------------------------------------------------------- NFKC


def test_nfkc_full_width_to_ascii():
    assert clean_text("１９９８年") == "1998年"
    assert clean_text("ＡＢＣｘｙｚ　full\u00a0width ﬁne ①") == "ABCxyz full width fine 1"
    assert clean_text("１９９８", CleanConfig(nfkc=False)) == "１９９８"


def test_nfkc_on_real_peoples_daily_sample():
    from bigmodel_fast.data.sample_files import corpus_paths

    zh = corpus_paths()[1]
    raw = [d for d in iter_documents([zh]) if "１９９８" in d.text][:20]
    assert raw, "the People's Daily sample should contain full-width years"
    cleaned = list(clean_documents(raw))
    assert len(cleaned) == len(raw)
    for before, after in zip(raw, cleaned):
        assert "1998" in after.text
        assert not re.search("[０-９Ａ-Ｚａ-ｚ]", after.text)
        assert after.source == before.source


# ------------------------------------------------------------------------------------------- whitespace


def test_whitespace_normalisation():
    assert clean_text("  lots   of\t\tspace  \n\n\n\n\n  next   para \n") == "lots of space\n\nnext para"
    assert clean_text("a \n b\n\nc") == "a\nb\n\nc"
    assert clean_text("a \n\n\n b\tc", CleanConfig(keep_newlines=False)) == "a b c"
    assert clean_text("a   b", CleanConfig(normalize_whitespace=False)) == "a   b"


def test_rst_and_markdown_markup():
    rst = (
        "Classes\n*******\n\n.. index::\n   single: class\n   object: class\n\n"
        "Use :func:`len`, :class:`~collections.OrderedDict` and ``x + 1``; see `the docs <https://x.y>`_.\n\n"
        ".. note::\n\n   Indented note.\n\n.. _label:\n"
    )
    assert clean_text(rst) == (
        "Classes\n\nUse len, collections.OrderedDict and x + 1; see the docs.\n\nIndented note."
    )
    # real Python-docs constructs: a comment with an indented continuation, literal-block markers, a function
    # signature with nested version notes and an index block, targets, substitutions, code-block options
    docs = (
        "For example (no pun intended):\n\n.. One suggestion was to give a real C example here, but that may\n"
        "   confuse non-C programmers.\n\n::\n\n   >>> words = ['cat']\n\nNext para::\n\n    code\n\n"
        ".. function:: len(s)\n\n   Return the length.\n\n   .. versionchanged:: 3.3 Accepts *x*.\n\n"
        "   .. versionadded:: 3.2\n\n   .. index:: foo\n      bar\n\n   More.\n\n.. |x| replace:: y\n"
        ".. _label:\n\n.. [1] Footnote text.\n\n.. code-block:: python\n   :linenos:\n\n   print(1)\n"
    )
    assert clean_text(docs) == (
        "For example (no pun intended):\n\n>>> words = ['cat']\n\nNext para:\n\ncode\n\nlen(s)\n\n"
        "Return the length.\n\nChanged in version 3.3: Accepts *x*.\n\nNew in version 3.2.\n\nMore.\n\n"
        "Footnote text.\n\nprint(1)"
    )
    assert clean_text("a[::2] and std::vector") == "a[::2] and std::vector"
    assert clean_text("## Heading ##\n\nA [link](http://a.b \"t\") here.\n\n---\n") == "Heading\n\nA link here."
    assert ":func:`len`" in clean_text("Use :func:`len`.", CleanConfig(strip_markup=False))


@pytest.mark.parametrize("text", NASTY)
def test_clean_text_is_idempotent(text):
    once = clean_text(text)
    assert clean_text(once) == once


# ------------------------------------------------------------------------------------------- documents


def test_empty_and_whitespace_only_files_are_dropped(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "blank.txt").write_text("  \n\t\n \u3000 \u200b\n")
    (tmp_path / "real.txt").write_text("real text")
    rstats = ReadStats()
    cstats = CleanStats()
    docs = list(clean_documents(iter_documents([tmp_path], stats=rstats), CleanConfig(), cstats))
    assert [d.text for d in docs] == ["real text"]
    assert rstats.empty_files == 1  # the empty file never becomes a document
    assert (cstats.seen, cstats.kept, cstats.dropped_empty, cstats.dropped_short) == (2, 1, 1, 0)
    assert cstats.chars_out == len("real text")


def test_min_chars_and_metadata_preserved():
    docs = [
        Document("short", "a.jsonl", 1, "pos"),
        Document("  long <b>enough</b> text  ", "a.jsonl", 2, "neg"),
        Document("\x00\x01", "a.jsonl", 3, None),
    ]
    stats = CleanStats()
    out = list(clean_documents(docs, CleanConfig(min_chars=10), stats))
    assert out == [Document("long enough text", "a.jsonl", 2, "neg")]
    assert stats.to_dict() == {
        "seen": 3,
        "kept": 1,
        "dropped_empty": 1,
        "dropped_short": 1,
        "chars_in": sum(len(d.text) for d in docs),
        "chars_out": len("long enough text"),
    }
    assert docs[1].text.startswith("  long")  # inputs are not mutated


def test_clean_config_validation_and_immutability():
    with pytest.raises(ValueError, match="min_chars"):
        CleanConfig(min_chars=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        CleanConfig().nfkc = False  # type: ignore[misc]
