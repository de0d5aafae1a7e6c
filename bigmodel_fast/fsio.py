"""Durable, exclusive, verifiable directories: the one place bmf writes outputs that must survive a kill.

Every output directory bmf publishes (a checkpoint, a ``bmf prepare`` output, an export bundle) goes the same way:

1. it is written into a staging directory ``<dest>.tmp-<pid>`` beside its destination;
2. :func:`write_manifest` fsyncs every file, then writes ``manifest.json`` (size and SHA-256 of each file) last, so
   a directory that has a manifest is complete;
3. :func:`publish_dir` swaps it into place: ``dest -> dest.old-<pid>``, ``tmp -> dest``, fsync of the parent, then
   the old copy is removed.

A kill between the two renames leaves no ``dest`` but two complete copies beside it; :func:`recover_dir`, called
by every reader and writer before it looks at ``dest``, moves the newest complete copy back into place.
:func:`clean_stale` removes the temporaries that dead runs left behind. Writers hold a :class:`DirLock` so two runs
never write one destination at once.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "bmf-manifest"
MANIFEST_VERSION = 1
_TEMP_RE = re.compile(r"\.(tmp|old)-(\d+)$")
_LIVE_WRITER_WAIT_S = 2.0  # how long a reader waits for a live writer to finish its publishing renames


class LockedError(ValueError):
    """Another live process holds the lock of an output directory."""


class ManifestError(ValueError):
    """A directory's files do not match its ``manifest.json`` (missing, truncated, corrupted)."""


# ---------------------------------------------------------------------------------------------------------- fsync
def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Make a directory's entries (creations, renames) durable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems (e.g. certain FUSE mounts) refuse fsync on directories
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (temp file, fsync, rename, fsync of the directory)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


# ------------------------------------------------------------------------------------------------------- manifest
def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _files(root: Path) -> list[str]:
    names = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            names.append(p.relative_to(root).as_posix())
    return names


def write_manifest(root: str | Path) -> dict:
    """fsync every file under ``root``, then write ``root/manifest.json`` (bytes + SHA-256 per file) durably.

    Call it last: a directory with a manifest is complete."""
    root = Path(root)
    files = {}
    for name in _files(root):
        p = root / name
        fsync_file(p)
        files[name] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    for d in sorted({(root / n).parent for n in files} | {root}, reverse=True):
        fsync_dir(d)
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "files": files}
    write_bytes(root / MANIFEST, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return manifest


def read_manifest(root: str | Path) -> dict | None:
    """The parsed manifest of ``root``, or None when it has none; a malformed one is a :class:`ManifestError`."""
    f = Path(root) / MANIFEST
    if not f.is_file():
        return None
    try:
        m = json.loads(f.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"{f}: not a valid manifest ({e}); HINT: the directory is damaged, re-create it") from e
    files = m.get("files") if isinstance(m, dict) else None
    if (not isinstance(m, dict) or m.get("format") != MANIFEST_FORMAT or not isinstance(files, dict)
            or not all(isinstance(v, dict) and isinstance(v.get("bytes"), int) and isinstance(v.get("sha256"), str)
                       for v in files.values())):
        raise ManifestError(f"{f}: not a bmf manifest (expected format {MANIFEST_FORMAT!r} with files -> "
                            f"{{bytes, sha256}}); HINT: the directory is damaged, re-create it")
    if m.get("version") != MANIFEST_VERSION:
        raise ManifestError(f"{f}: manifest version {m.get('version')!r}, this bmf reads version {MANIFEST_VERSION}")
    return m


def verify_manifest(root: str | Path, hashes: bool = True, required: bool = False) -> bool:
    """Check ``root`` against its manifest: every listed file present with its size (and SHA-256 if ``hashes``).

    Returns False when there is no manifest (and not ``required``); raises :class:`ManifestError` naming the first
    file that does not match."""
    root = Path(root)
    m = read_manifest(root)
    if m is None:
        if required:
            raise ManifestError(f"{root}: missing {MANIFEST}; HINT: the directory was not written completely "
                                f"by bmf, re-create it")
        return False
    for name, entry in m["files"].items():
        p = root / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise ManifestError(f"{root / MANIFEST}: file name {name!r} points outside the directory")
        if not p.is_file():
            raise ManifestError(f"{p}: missing, but listed in {MANIFEST}; HINT: the directory is damaged")
        size = p.stat().st_size
        if size != entry["bytes"]:
            raise ManifestError(f"{p}: {size} bytes, {MANIFEST} says {entry['bytes']} (truncated or damaged)")
        if hashes and sha256_file(p) != entry["sha256"]:
            raise ManifestError(f"{p}: SHA-256 does not match {MANIFEST} (the file is corrupted or was replaced)")
    return True


def is_complete(root: str | Path) -> bool:
    """A staging copy is complete when its manifest is there and every file has its listed size."""
    try:
        return Path(root).is_dir() and verify_manifest(root, hashes=False)
    except ManifestError:
        return False


# ------------------------------------------------------------------------------------------- publish and recover
def staging_dir(dest: str | Path) -> Path:
    """A fresh, empty ``<dest>.tmp-<pid>`` beside ``dest``."""
    dest = Path(dest)
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def publish_dir(tmp: str | Path, dest: str | Path) -> Path:
    """Move the complete staging directory ``tmp`` into place at ``dest`` (replacing it). Write the manifest first.

    Between the two renames ``dest`` does not exist; :func:`recover_dir` repairs that state."""
    tmp, dest = Path(tmp), Path(dest)
    old = dest.with_name(dest.name + f".old-{os.getpid()}")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)
    if old.exists():
        shutil.rmtree(old)
    return dest


def _siblings(dest: Path) -> list[tuple[Path, str, int]]:
    out = []
    if not dest.parent.is_dir():
        return out
    prefix = dest.name + "."
    for p in dest.parent.iterdir():
        if p.name.startswith(prefix):
            m = _TEMP_RE.search(p.name)
            if m and p.name[: m.start()] == dest.name:
                out.append((p, m.group(1), int(m.group(2))))
    return out


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_dir(dest: str | Path) -> Path | None:
    """When ``dest`` is missing but a complete copy sits beside it (a save killed between its two renames), move
    that copy into place and return its old path; otherwise None. The newest complete copy wins: a finished
    staging copy (``.tmp-``) is newer than the copy it was replacing (``.old-``). Copies of another live process
    are never taken: that writer is between its renames, so this waits up to 2 s for it to finish."""
    dest = Path(dest)
    if dest.exists():
        return None
    # A live writer between its two renames: give it a moment to finish rather than taking its copy from under it.
    deadline = time.monotonic() + _LIVE_WRITER_WAIT_S
    while any(pid != os.getpid() and pid_alive(pid) for _, _, pid in _siblings(dest)):
        if dest.exists():
            return None
        if time.monotonic() > deadline:
            break
        time.sleep(0.01)
    candidates = [(p, kind) for p, kind, pid in _siblings(dest)
                  if (pid == os.getpid() or not pid_alive(pid)) and p.is_dir() and is_complete(p)]
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c[1] == "tmp", (c[0] / MANIFEST).stat().st_mtime_ns), reverse=True)
    best = candidates[0][0]
    try:
        os.replace(best, dest)
        fsync_dir(dest.parent)
    except OSError as e:
        print(f"bmf: warning: {dest} is missing and {best} could not be moved back into place ({e})", file=sys.stderr)
        return None
    print(f"bmf: note: {dest} was missing (a save was interrupted); recovered it from {best.name}", file=sys.stderr)
    return best


def clean_stale(dest: str | Path) -> list[Path]:
    """Remove ``<dest>.tmp-<pid>`` / ``.old-<pid>`` left by processes that no longer run (call under the lock,
    after :func:`recover_dir`). Returns what was removed."""
    removed = []
    for p, _, pid in _siblings(Path(dest)):
        if pid != os.getpid() and not pid_alive(pid):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


# ---------------------------------------------------------------------------------------------------------- locks
class DirLock:
    """An exclusive, non-blocking ``fcntl`` lock on ``lock_file``; the holder's PID is written into it.

    ``with DirLock(path, what="run directory"):`` -- a second process gets a :class:`LockedError` at once naming the
    holder's PID. The kernel drops the lock when the holder dies, however it dies, so a stale lock file never
    blocks a later run."""

    def __init__(self, lock_file: str | Path, what: str = "output directory"):
        self.lock_file = Path(lock_file)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> "DirLock":
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            finally:
                os.close(fd)
            raise LockedError(f"{self.lock_file}: this {self.what} is in use by another bmf process (PID {holder}); "
                              f"HINT: wait for it to finish, or use another output path") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def sibling_lock(dest: str | Path, what: str = "output directory") -> DirLock:
    """The lock for a directory that gets replaced as a whole: ``.<name>.lock`` beside it (a lock file inside would
    be swapped away with the directory)."""
    dest = Path(dest)
    return DirLock(dest.with_name(f".{dest.name}.lock"), what)
