"""Helpers for the shard and loader tests: hostile files in place of a shard file, header patching."""
from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

from bigmodel_fast.data.shards import HEADER_SIZE

# kind -> the words of the error message that name what the file is
NON_REGULAR = {
    "fifo": r"is a named pipe \(FIFO\), not a regular file",
    "directory": "is a directory, not a regular file",
    "char_device": "is a character device, not a regular file",
    "socket": "is a socket, not a regular file",
}
VOCAB_OFFSET = 16  # header field vocab_size (u64), the same in .bin and .idx


def make_non_regular(path: Path, kind: str):
    """Replace ``path`` by a FIFO, a directory, a link to /dev/zero or a bound Unix socket.

    Returns the socket for ``socket`` (keep it open while the test runs), else None.
    """
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)  # open(O_RDONLY) on it blocks until a writer comes: the hang being tested
    elif kind == "directory":
        path.mkdir()
    elif kind == "char_device":
        os.symlink("/dev/zero", path)
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        return sock
    else:
        raise ValueError(kind)
    return None


def patch(path: Path, offset: int, data: bytes) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))


def set_header_vocab(prefix: Path, vocab: int) -> None:
    """Rewrite vocab_size in both headers of shard ``prefix`` (they must agree)."""
    for suffix in (".bin", ".idx"):
        patch(prefix.with_name(prefix.name + suffix), VOCAB_OFFSET, struct.pack("<Q", vocab))


def set_token(prefix: Path, offset: int, value: int, itemsize: int = 2) -> None:
    """Overwrite token ``offset`` of shard ``prefix`` (uint16 ids by default)."""
    fmt = "<H" if itemsize == 2 else "<I"
    patch(prefix.with_name(prefix.name + ".bin"), HEADER_SIZE + offset * itemsize, struct.pack(fmt, value))
