"""Text lines from a byte stream with bounded memory: the one input policy of ``bmf predict --input`` and
``bmf_runner``.

Policy (the C++ runner implements the same, byte for byte):

* a line ends at ``\\n``, ``\\r\\n`` or ``\\r`` (the terminator is not part of the text); a last line without a
  terminator counts when it is non-empty;
* a line longer than ``max_line_bytes`` bytes keeps its first ``max_line_bytes`` bytes, cut back to the last whole
  UTF-8 character (an incomplete multi-byte sequence at the cut is dropped, not replaced); the rest of that line is
  skipped without being stored;
* invalid UTF-8 becomes U+FFFD per maximal ill-formed subpart (Python's ``errors="replace"``).

Memory is O(max_line_bytes + chunk) whatever the input: a 100 MB line, or ``/dev/zero`` (no newline at all),
costs no more than a short one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator

DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB: far more text than any model here reads (max_len tokens)
_CHUNK = 1 << 16


def _utf8_cut(b: bytes) -> bytes:
    """``b`` without a trailing incomplete UTF-8 sequence (at most 3 bytes are dropped)."""
    n = len(b)
    for back in range(1, min(4, n) + 1):
        c = b[n - back]
        if c < 0x80:  # ASCII: the sequence before it is whatever it is; nothing is cut
            return b
        if c >= 0xC0:  # a lead byte: keep it only if its whole sequence is there
            need = 2 if c < 0xE0 else 3 if c < 0xF0 else 4
            return b if back >= need else b[: n - back]
    return b  # only continuation bytes: invalid anyway, replaced on decoding


@dataclass
class LineStats:
    lines: int = 0
    truncated: int = 0  # lines longer than the cap (their tail was skipped)


def iter_lines(stream: BinaryIO, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
               stats: LineStats | None = None) -> Iterator[str]:
    """Decoded lines of a binary stream under the policy above; ``stats`` counts lines and truncations."""
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be >= 1, got {max_line_bytes}")
    stats = stats if stats is not None else LineStats()
    buf = bytearray()
    over = False  # the current line passed the cap: skip to its end
    pending_cr = False  # the last chunk ended in \r: a \n starting the next chunk belongs to it

    def emit() -> str:
        nonlocal over
        data = bytes(buf)
        if over:
            data = _utf8_cut(data)
            stats.truncated += 1
        buf.clear()
        over = False
        stats.lines += 1
        return data.decode("utf-8", errors="replace")

    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        i, n = 0, len(chunk)
        if pending_cr:
            pending_cr = False
            if chunk[0] == 0x0A:
                i = 1
        while i < n:
            # next terminator in this chunk
            j_n, j_r = chunk.find(b"\n", i), chunk.find(b"\r", i)
            j = min((x for x in (j_n, j_r) if x >= 0), default=-1)
            end = n if j < 0 else j
            if not over:
                room = max_line_bytes - len(buf)
                take = min(room, end - i)
                buf += chunk[i : i + take]
                if end - i > take:
                    over = True
            if j < 0:
                break
            yield emit()
            i = j + 1
            if chunk[j] == 0x0D:
                if i < n:
                    if chunk[i] == 0x0A:
                        i += 1
                else:
                    pending_cr = True
    if buf or over:
        yield emit()
