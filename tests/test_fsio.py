"""fsio: manifests catch truncation and corruption, publish/recover survive a kill between the renames, stale
temporaries of dead processes go, and a directory lock refuses a second process naming the holder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bigmodel_fast import fsio
from bigmodel_fast.jsonio import dumps, read_json, write_json


def _make(root, files):
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_manifest_round_trip_and_damage(tmp_path):
    d = _make(tmp_path / "d", {"a.bin": b"x" * 100, "sub/b.json": b"{}"})
    m = fsio.write_manifest(d)
    assert set(m["files"]) == {"a.bin", "sub/b.json"}
    assert m["files"]["a.bin"]["bytes"] == 100
    assert fsio.verify_manifest(d) is True and fsio.is_complete(d)

    (d / "a.bin").write_bytes(b"x" * 99 + b"y")  # same size, other bytes
    assert fsio.is_complete(d)  # the size check alone cannot see it ...
    with pytest.raises(fsio.ManifestError, match=r"a\.bin: SHA-256 does not match"):
        fsio.verify_manifest(d)  # ... the hash does
    (d / "a.bin").write_bytes(b"x" * 50)
    with pytest.raises(fsio.ManifestError, match=r"a\.bin: 50 bytes, manifest\.json says 100"):
        fsio.verify_manifest(d, hashes=False)
    assert not fsio.is_complete(d)
    (d / "a.bin").unlink()
    with pytest.raises(fsio.ManifestError, match=r"a\.bin: missing"):
        fsio.verify_manifest(d)


def test_manifest_missing_malformed_and_escaping(tmp_path):
    d = _make(tmp_path / "d", {"a": b"1"})
    assert fsio.verify_manifest(d) is False
    with pytest.raises(fsio.ManifestError, match="missing manifest.json"):
        fsio.verify_manifest(d, required=True)
    (d / fsio.MANIFEST).write_bytes(b"\xff{not json")
    with pytest.raises(fsio.ManifestError, match="not a valid manifest"):
        fsio.verify_manifest(d)
    (d / fsio.MANIFEST).write_text(json.dumps({"format": "other", "files": {}}))
    with pytest.raises(fsio.ManifestError, match="not a bmf manifest"):
        fsio.verify_manifest(d)
    bad = {"format": fsio.MANIFEST_FORMAT, "version": 1, "files": {"../x": {"bytes": 1, "sha256": "0"}}}
    (d / fsio.MANIFEST).write_text(json.dumps(bad))
    with pytest.raises(fsio.ManifestError, match="points outside"):
        fsio.verify_manifest(d)


def test_publish_replaces_and_leaves_no_temporaries(tmp_path):
    dest = tmp_path / "ckpt"
    for step in (1, 2):
        tmp = fsio.staging_dir(dest)
        (tmp / "step").write_text(str(step))
        fsio.write_manifest(tmp)
        fsio.publish_dir(tmp, dest)
        assert (dest / "step").read_text() == str(step)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


@pytest.mark.parametrize("tmp_complete", [True, False])
def test_recover_after_kill_between_renames(tmp_path, tmp_complete):
    """The state a kill between ``dest -> old`` and ``tmp -> dest`` leaves: no dest, the old copy beside it, and
    the new copy (complete, or killed before its manifest). The newest complete copy comes back."""
    dest = tmp_path / "ckpt"
    old = _make(tmp_path / "ckpt.old-123", {"step": b"1"})
    fsio.write_manifest(old)
    new = _make(tmp_path / "ckpt.tmp-123", {"step": b"2"})
    if tmp_complete:
        fsio.write_manifest(new)
    got = fsio.recover_dir(dest)
    assert got == (new if tmp_complete else old)
    assert (dest / "step").read_bytes() == (b"2" if tmp_complete else b"1")
    assert fsio.recover_dir(dest) is None  # present now: nothing to do


def test_recover_ignores_incomplete_and_foreign_names(tmp_path):
    dest = tmp_path / "ckpt"
    _make(tmp_path / "ckpt.tmp-5", {"step": b"2"})  # no manifest: killed mid-write
    good = _make(tmp_path / "ckpt2.old-5", {"step": b"9"})  # another destination's copy
    fsio.write_manifest(good)
    assert fsio.recover_dir(dest) is None and not dest.exists()


def test_clean_stale_removes_only_dead_owners(tmp_path):
    dest = tmp_path / "out"
    dead = _dead_pid()
    stale = _make(tmp_path / f"out.tmp-{dead}", {"x": b"1"})
    mine = _make(tmp_path / f"out.tmp-{os.getpid()}", {"x": b"1"})
    alive = _make(tmp_path / f"out.old-{os.getppid()}", {"x": b"1"})
    other = _make(tmp_path / f"outer.tmp-{dead}", {"x": b"1"})
    assert fsio.clean_stale(dest) == [stale]
    assert not stale.exists() and mine.exists() and alive.exists() and other.exists()


def test_lock_refuses_second_process_with_pid_and_frees_on_exit(tmp_path):
    lock_file = tmp_path / ".run.lock"
    probe = ("import sys; from bigmodel_fast.fsio import DirLock, LockedError\n"
             "try:\n    DirLock(sys.argv[1], 'run directory').acquire()\n"
             "except LockedError as e:\n    print(e); sys.exit(3)\n")
    with fsio.DirLock(lock_file, "run directory"):
        r = subprocess.run([sys.executable, "-c", probe, str(lock_file)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 3
        assert f"PID {os.getpid()}" in r.stdout and "run directory" in r.stdout
    r = subprocess.run([sys.executable, "-c", probe, str(lock_file)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_lock_held_by_killed_process_is_free(tmp_path):
    lock_file = tmp_path / ".run.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from bigmodel_fast.fsio import DirLock; "
                               "DirLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)",
                               str(lock_file)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(fsio.LockedError, match=f"PID {holder.pid}"):
        fsio.DirLock(lock_file).acquire()
    holder.kill()
    holder.wait()
    with fsio.DirLock(lock_file):
        assert lock_file.read_text().strip() == str(os.getpid())


def test_sibling_lock_sits_beside_the_directory(tmp_path):
    lock = fsio.sibling_lock(tmp_path / "data")
    assert lock.lock_file == tmp_path / ".data.lock"
    assert fsio._siblings(tmp_path / "data") == []  # never taken for a temporary of "data"


def test_strict_json_never_writes_bare_nan(tmp_path):
    obj = {"loss": float("nan"), "auc": [1.0, float("inf"), -float("inf")], "n": 3, "t": (0.5,)}
    text = dumps(obj)
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in {text}")) == {
        "loss": None, "auc": [1.0, None, None], "n": 3, "t": [0.5]}
    write_json(tmp_path / "r.json", obj)
    assert read_json(tmp_path / "r.json")["loss"] is None
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left


def test_recover_never_takes_a_live_writers_copy(tmp_path, monkeypatch):
    """A reader that looks while another live process is between its publishing renames must not move that
    process's copy (the writer's own rename would then fail): it waits, and takes nothing if dest never appears."""
    monkeypatch.setattr(fsio, "_LIVE_WRITER_WAIT_S", 0.05)
    dest = tmp_path / "ckpt"
    live = _make(tmp_path / f"ckpt.tmp-{os.getppid()}", {"step": b"2"})
    fsio.write_manifest(live)
    assert fsio.recover_dir(dest) is None
    assert live.is_dir() and not dest.exists()
