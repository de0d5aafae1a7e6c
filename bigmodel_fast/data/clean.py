"""Text cleaning: HTML/markup stripping, Unicode normalisation, control characters, whitespace.

:func:`clean_text` applies, in order (each step switchable in :class:`CleanConfig`):

1. ``strip_html``: drop ``<script>``/``<style>`` elements with their contents (an unclosed one loses only its
   tag), HTML comments, ``<!DOCTYPE>``/``<?xml?>``/CDATA markers, then tags of *known HTML elements* only (so text
   such as ``List<int>`` or ``<T>`` that is not HTML survives); block-level tags (``p``, ``div``, ``br``, ``li``,
   headings, table rows...) become line breaks, inline tags vanish. Entities with a terminating ``;`` (``&amp;``,
   ``&#233;``, ``&#x1F600;``) are decoded afterwards, so ``&lt;script&gt;`` stays visible text.
2. ``strip_markup``: light reStructuredText / Markdown clean-up: rst directive and comment lines (``.. note::``,
   ``.. _label:``; an ``.. index::`` block is dropped with its indented body), section underlines (a line of one
   repeated punctuation character), roles (``:func:`len``` -> ``len``, ``:class:`~a.B``` -> ``a.B``), inline
   literals (````x```` -> ``x``), rst links (```text <url>`_`` -> ``text``), Markdown headings (``# Title`` ->
   ``Title``) and links (``[text](url)`` -> ``text``).
3. ``nfkc``: Unicode NFKC, e.g. full-width ``１９９８`` -> ``1998``, ``Ａ`` -> ``A``, ``，`` -> ``,``, NBSP and the
   ideographic space U+3000 -> a plain space, ligatures ``ﬁ`` -> ``fi``.
4. ``drop_control``: ANSI escape sequences (``\\x1b[31m``, OSC titles) are removed whole, then every other C0/C1
   control character except ``\\n`` and ``\\t``; ``\\r\\n``, ``\\r``, ``\\v``, ``\\f``, U+0085, U+2028 and U+2029
   count as line breaks. Invisible format characters that only get in the way of tokenisation are dropped too:
   U+200B zero-width space, U+2060 word joiner, U+FEFF BOM, U+00AD soft hyphen, U+200E/U+200F and the bidi
   embedding/isolate controls U+202A-U+202E, U+2066-U+2069 ("Trojan source" characters), and lone surrogates.
   **Kept on purpose:** U+200C ZWNJ and U+200D ZWJ, which carry meaning (Persian/Indic orthography, emoji ZWJ
   sequences such as a family emoji).
5. ``normalize_whitespace``: tabs and Unicode spaces become one space, runs of spaces collapse, lines are stripped,
   at most one blank line separates paragraphs, the text is stripped. With ``keep_newlines=False`` all whitespace
   (newlines included) collapses to single spaces.

:func:`clean_documents` runs :func:`clean_text` over :class:`~bigmodel_fast.data.sources.Document` s and drops
documents that end up empty or shorter than ``min_chars`` characters, counting both (reasons ``empty``, ``short``)
in :class:`~bigmodel_fast.data.stats.CleanStats`.
"""
from __future__ import annotations

import dataclasses
import html
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from bigmodel_fast.data.sources import Document
from bigmodel_fast.data.stats import CleanStats

__all__ = ["CleanConfig", "CleanStats", "clean_text", "clean_documents"]


@dataclass(frozen=True)
class CleanConfig:
    """Switches for :func:`clean_text` (see the module docstring for what each step does).

    ``min_chars`` is the minimum length (in characters, after cleaning) for :func:`clean_documents` to keep a
    document.
    """

    strip_html: bool = True
    nfkc: bool = True
    drop_control: bool = True
    normalize_whitespace: bool = True
    min_chars: int = 1
    keep_newlines: bool = True
    strip_markup: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.min_chars, int) or isinstance(self.min_chars, bool) or self.min_chars < 0:
            raise ValueError(f"CleanConfig.min_chars={self.min_chars!r}: expected an integer >= 0")


# --------------------------------------------------------------------------------------------------- HTML

_HTML_MARKERS = re.compile(
    r"<!\[CDATA\[|\]\]>"  # CDATA markers (keep the content)
    r"|<![A-Za-z][^<>]*>"  # <!DOCTYPE ...>
    r"|<\?[^<>]*\?>",  # <?xml ...?>
)
_SCRIPT_OPEN = re.compile(r"<(script|style)\b[^<>]*>", re.IGNORECASE)
_SCRIPT_CLOSE = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("script", "style")}
_BLOCK_TAGS = frozenset(
    """address article aside blockquote body br caption dd details dialog div dl dt fieldset figcaption figure footer
    form h1 h2 h3 h4 h5 h6 head header hr html li main nav ol p pre section summary table tbody td tfoot th thead title
    tr ul""".split()
)
_INLINE_TAGS = frozenset(
    """a abbr audio b bdi bdo big button canvas center cite code col colgroup data datalist del dfn em embed font
    i iframe img input ins kbd label legend link map mark meta meter noscript object optgroup option output param
    picture progress q rp rt ruby s samp select small source span strike strong sub sup svg template textarea time
    track tt u var video wbr script style""".split()
)
_TAG = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)\b(?:[^<>\"']|\"[^\"<>\n]*\"|'[^'<>\n]*')*/?>")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _tag_sub(m: re.Match[str]) -> str:
    name = m.group(1).lower()
    if name in _BLOCK_TAGS:
        return "\n"
    if name in _INLINE_TAGS:
        return ""
    return m.group(0)  # not an HTML element: leave the text alone


def _drop_comments(text: str) -> str:
    """Remove ``<!-- ... -->``; an unclosed ``<!--`` loses only the marker. Linear time (no regex backtracking)."""
    out: list[str] = []
    pos = 0
    while True:
        start = text.find("<!--", pos)
        if start < 0:
            break
        end = text.find("-->", start + 4)
        if end < 0:  # no comment closes after here: drop the remaining markers only
            out.append(text[pos:start])
            out.append(text[start:].replace("<!--", ""))
            return "".join(out)
        out.append(text[pos:start])
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def _drop_scripts(text: str) -> str:
    """Remove ``<script>``/``<style>`` elements with their contents; an unclosed one loses only its opening tag."""
    out: list[str] = []
    pos = 0
    unclosed: set[str] = set()
    while True:
        m = _SCRIPT_OPEN.search(text, pos)
        if m is None:
            break
        name = m.group(1).lower()
        close = None if name in unclosed else _SCRIPT_CLOSE[name].search(text, m.end())
        out.append(text[pos : m.start()])
        if close is None:
            unclosed.add(name)  # no later element of this kind can close either
            pos = m.end()
        else:
            pos = close.end()
    out.append(text[pos:])
    return "".join(out)


def _strip_html(text: str) -> str:
    if "<" in text:
        if "<!--" in text:
            text = _drop_comments(text)
        text = _drop_scripts(text)
        text = _HTML_MARKERS.sub("", text)
        text = _TAG.sub(_tag_sub, text)
    if "&" in text:
        text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    return text


# --------------------------------------------------------------------------------------------------- rst / md

# An explicit-markup block: a ".." head line plus its indented body (blank lines are taken only when an indented
# line follows them, so the pattern never eats the next paragraph).
_RST_EXPLICIT = re.compile(
    r"^(?P<ind>[ \t]*)\.\.(?:[ \t]+(?P<rest>[^\n]*?))?[ \t]*$"
    r"(?P<body>(?:(?:\n[ \t]*(?=\n))*\n(?P=ind)[ \t]+\S[^\n]*)*)",
    re.MULTILINE,
)
_RST_DIRECTIVE_HEAD = re.compile(r"^(?P<name>[A-Za-z][\w:+-]*)::(?:[ \t]+(?P<args>.*))?$")
_RST_OPTIONS = re.compile(r"^(?:\n[ \t]+:[\w-]+:(?:[ \t][^\n]*)?)+")  # ":linenos:", ":maxdepth: 2" after a head
# directives whose whole block is metadata, not prose
_RST_DROP_BLOCK = frozenset(
    "index toctree testsetup testcleanup raw highlight sectionauthor moduleauthor include image literalinclude "
    "tabularcolumns".split()
)
# directives whose argument is meaningful text (an API signature, an option name)
_RST_KEEP_ARGS = frozenset(
    "function method class attribute data exception decorator decoratormethod classmethod staticmethod "
    "abstractmethod coroutinefunction coroutinemethod describe option cmdoption envvar opcode pdbcommand "
    "macro member type var seealso rubric topic".split()
)
_RST_VERSION = {"versionadded": "New in version", "versionchanged": "Changed in version",
                "deprecated": "Deprecated since version", "versionremoved": "Removed in version"}
_RST_LITERAL_MARK = re.compile(r"^[ \t]*::[ \t]*$|(?<![ \t])[ \t]+::[ \t]*$|(?<=\S)(::)[ \t]*$", re.MULTILINE)
_UNDERLINE = re.compile(r"^[ \t]*([=\-~^\"'`*+#<>_:.])\1{2,}[ \t]*$", re.MULTILINE)
_RST_ROLE = re.compile(r":[A-Za-z][\w.+-]*(?::[A-Za-z][\w.+-]*)*:`~?!?([^`]+?)`")
_RST_LINK = re.compile(r"`([^`<>]+?)\s*<[^`<>]+>`__?")
_RST_LITERAL = re.compile(r"``([^`]+?)``")
_MD_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.MULTILINE)
_MD_LINK = re.compile(r"!?\[([^\[\]\n]*)\]\([^()\s]*(?:\s+\"[^\"\n]*\")?\)")


def _rst_explicit_sub(m: re.Match[str]) -> str:
    ind, rest, body = m.group("ind"), m.group("rest") or "", m.group("body")
    if ".." in body:  # nested explicit markup inside a block we may keep
        body = _RST_EXPLICIT.sub(_rst_explicit_sub, body)
    d = _RST_DIRECTIVE_HEAD.match(rest)
    if d:
        name = d.group("name").lower().split(":")[-1]  # "py:function" -> "function"
        args = (d.group("args") or "").strip()
        body = _RST_OPTIONS.sub("", body)
        if name in _RST_DROP_BLOCK:
            return ""
        if name in _RST_VERSION:
            version, _, extra = args.partition(" ")
            head = f"{_RST_VERSION[name]} {version}" + (f": {extra.strip()}" if extra.strip() else ".")
            return ind + head + body
        if name in _RST_KEEP_ARGS and args:
            return ind + args + body
        return body  # e.g. note/warning/code-block: keep the content, drop the head
    if rest.startswith("|"):  # substitution definition
        return ""
    if rest.startswith("_"):  # hyperlink target ".. _label:" / anonymous "__ url"
        return body
    if rest.startswith("["):  # footnote / citation: keep its text
        label_end = rest.find("]")
        return ind + rest[label_end + 1 :].strip() + body
    if not rest and body and not body.split("\n", 2)[1].strip():
        return body  # an empty comment followed by a blank line consumes nothing
    return ""  # a comment, with its indented continuation


def _strip_markup(text: str) -> str:
    if ".." in text:
        text = _RST_EXPLICIT.sub(_rst_explicit_sub, text)
    if "::" in text:
        text = _RST_LITERAL_MARK.sub(lambda m: ":" if m.group(1) else "", text)
    text = _UNDERLINE.sub("", text)
    if "`" in text:
        text = _RST_ROLE.sub(r"\1", text)
        text = _RST_LINK.sub(r"\1", text)
        text = _RST_LITERAL.sub(r"\1", text)
    if "#" in text:
        text = _MD_HEADING.sub(r"\1", text)
    if "](" in text:
        text = _MD_LINK.sub(r"\1", text)
    return text


# --------------------------------------------------------------------------------------------------- control

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_LINE_BREAKS = re.compile("\r\n?|[\v\f\x85\u2028\u2029]")
_INVISIBLE = "\u200b\u2060\ufeff\u00ad\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# C0 controls except \t \n, DEL, C1 controls, the invisible format characters above, lone surrogates
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _INVISIBLE + "\ud800-\udfff]")


def _drop_control(text: str) -> str:
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    return _CONTROL.sub("", text)


# --------------------------------------------------------------------------------------------------- whitespace

_HSPACE = re.compile(r"[^\S\n]+")  # any whitespace except \n (tabs, NBSP, U+3000, ...)
_MANY_NEWLINES = re.compile(r"\n{3,}")
_ANY_SPACE = re.compile(r"\s+")


def _normalize_whitespace(text: str, keep_newlines: bool) -> str:
    if not keep_newlines:
        return _ANY_SPACE.sub(" ", text).strip()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _HSPACE.sub(" ", text)
    text = "\n".join(line.strip(" ") for line in text.split("\n"))
    return _MANY_NEWLINES.sub("\n\n", text).strip()


def clean_text(text: str, cfg: CleanConfig = CleanConfig()) -> str:
    """Return the cleaned version of ``text`` (may be ``""``); see the module docstring for the steps."""
    if cfg.strip_html:
        text = _strip_html(text)
    if cfg.strip_markup:
        text = _strip_markup(text)
    if cfg.nfkc:
        text = unicodedata.normalize("NFKC", text)
    if cfg.drop_control:
        text = _drop_control(text)
    if cfg.normalize_whitespace:
        text = _normalize_whitespace(text, cfg.keep_newlines)
    return text


def clean_documents(
    docs: Iterable[Document], cfg: CleanConfig | None = None, stats: CleanStats | None = None
) -> Iterator[Document]:
    """Yield cleaned copies of ``docs``, dropping those that are empty or shorter than ``cfg.min_chars``.

    ``stats`` (optional) counts documents seen/kept/dropped and characters before/after cleaning.
    """
    cfg = cfg if cfg is not None else CleanConfig()
    stats = stats if stats is not None else CleanStats()
    for doc in docs:
        stats.seen += 1
        stats.chars_in += len(doc.text)
        text = clean_text(doc.text, cfg)
        if not text:
            stats.drop("empty")
            continue
        if len(text) < cfg.min_chars:
            stats.drop("short")
            continue
        stats.kept += 1
        stats.chars_out += len(text)
        yield dataclasses.replace(doc, text=text)
