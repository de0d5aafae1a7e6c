"""`bmf prepare` under faults (issue 11): a failed, killed or concurrent run never loses or mixes the previous output.

Each test builds a tiny corpus (30 synthetic documents, vocabulary 300): one prepare run takes a fraction of a
second; the kill test runs one short subprocess per rename of a run (about 10)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bigmodel_fast import fsio
from bigmodel_fast.cli import main
from bigmodel_fast.data.data_dir import PreparedData
from bigmodel_fast.data.prepare import PrepareConfig, prepare
from bigmodel_fast.data.tokenizer import Tokenizer

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def _corpus(path: Path, n: int = 30, tag: str = "doc") -> Path:
    docs = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(40 + i % 13)) + f" {tag}{i}." for i in range(n)]
    path.write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n", encoding="utf-8")
    return path


def _distinct_corpus(path: Path, n: int, seed: int) -> Path:
    """``n`` documents of seeded random words: no two are near-duplicates."""
    import random

    rng = random.Random(seed)
    docs = [" ".join(rng.choice(WORDS) + str(rng.randrange(500)) for _ in range(60)) for _ in range(n)]
    path.write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n", encoding="utf-8")
    return path


def _cfg(inputs, out, **kw) -> PrepareConfig:
    kw = {"vocab_size": 300, "quality": False, "dedup": "exact", "progress": False, **kw}
    return PrepareConfig(inputs=[str(p) for p in inputs], out=str(out), **kw)


def _cli(inputs, out, *extra) -> list[str]:
    return ["prepare", *map(str, inputs), "--out", str(out), "--vocab-size", "300", "--no-quality",
            "--dedup", "exact", "--no-progress", *extra]


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _content(d: Path) -> dict[str, bytes]:
    """The tokenizer and shards (stats.json and the manifest differ between equal runs: they hold timings)."""
    return {k: v for k, v in _snapshot(d).items() if k not in ("stats.json", "manifest.json")}


def _decoded(out: Path) -> set[str]:
    data = PreparedData(out)
    tok = Tokenizer(data.tokenizer_file)
    return {tok.decode(s[i].tolist()) for s in data.train_shards() + data.valid_shards() for i in range(len(s))}


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(out.name + "."))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture()
def prepared(tmp_path):
    """A good output at tmp_path/out and a snapshot of its bytes."""
    src = _corpus(tmp_path / "a.jsonl")
    out = tmp_path / "out"
    prepare(_cfg([src], out))
    return src, out, _snapshot(out)


def test_output_has_a_manifest_and_the_lock_sits_beside_it(prepared):
    _, out, snap = prepared
    assert "manifest.json" in snap and fsio.verify_manifest(out, hashes=True, required=True)
    assert (out.parent / ".out.lock").is_file()
    assert _siblings(out) == []  # no staging copy left behind


def test_bad_input_path_leaves_previous_output_untouched(prepared, tmp_path, capsys):
    src, out, snap = prepared
    assert main(_cli([tmp_path / "typo.jsonl"], out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "typo.jsonl: no such file" in err
    assert _snapshot(out) == snap
    assert any(t.endswith("doc3.") for t in _decoded(out))  # still loadable
    assert _siblings(out) == []


def test_no_documents_left_leaves_previous_output_untouched(prepared, tmp_path):
    _, out, snap = prepared
    (tmp_path / "empty.txt").write_text("  \n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no document left"):
        prepare(_cfg([tmp_path / "empty.txt"], out))
    assert _snapshot(out) == snap and _siblings(out) == []


def test_exception_while_writing_shards_leaves_previous_output_untouched(prepared, tmp_path, monkeypatch):
    import bigmodel_fast.data.prepare as prep_mod

    _, out, snap = prepared
    real = prep_mod._write_split

    def failing(out_dir, name, *args):
        if name == "valid":
            raise RuntimeError("disk full while writing valid shards")
        return real(out_dir, name, *args)

    monkeypatch.setattr(prep_mod, "_write_split", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(_cfg([_corpus(tmp_path / "b.jsonl", tag="other")], out))
    assert _snapshot(out) == snap and _siblings(out) == []


def test_failure_between_the_publish_renames_puts_a_complete_copy_back(prepared, tmp_path, monkeypatch):
    _, out, snap = prepared
    real = os.replace

    def fail_second_publish_rename(src, dst):
        if Path(src).name.startswith("out.tmp-") and Path(dst) == out:
            raise OSError(5, "Input/output error (injected)")
        return real(src, dst)

    monkeypatch.setattr(fsio.os, "replace", fail_second_publish_rename)
    with pytest.raises(OSError, match="injected"):
        prepare(_cfg([_corpus(tmp_path / "b.jsonl", tag="other")], out))
    assert _snapshot(out) == snap and _siblings(out) == []


def test_a_rerun_replaces_the_output_as_a_whole(prepared, tmp_path):
    _, out, _ = prepared
    prepare(_cfg([_corpus(tmp_path / "b.jsonl", tag="other")], out, valid_fraction=0.0))
    texts = _decoded(out)
    assert any(t.endswith("other3.") for t in texts) and not any(t.endswith("doc3.") for t in texts)
    assert not list(out.glob("valid_*"))
    assert fsio.verify_manifest(out, hashes=True, required=True)


def test_foreign_files_in_out_are_refused_not_deleted(prepared, tmp_path, capsys):
    src, out, _ = prepared
    (out / "notes.md").write_text("my notes", encoding="utf-8")
    snap = _snapshot(out)
    assert main(_cli([src], out)) == 2
    err = capsys.readouterr().err
    assert "notes.md: not a file `bmf prepare` writes" in err
    assert _snapshot(out) == snap
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "raw").mkdir()
    with pytest.raises(ValueError, match="raw: not a file"):
        prepare(_cfg([src], tmp_path / "plain"))
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="not a directory"):
        prepare(_cfg([src], tmp_path / "afile"))


def test_second_concurrent_run_fails_at_once_naming_the_holder(prepared, capsys):
    src, out, snap = prepared
    with fsio.sibling_lock(out):  # flock: a second open of the lock file conflicts, even in this process
        assert main(_cli([src], out)) == 2
    err = capsys.readouterr().err
    assert f"in use by another bmf process (PID {os.getpid()})" in err and len(err.strip().splitlines()) == 1
    assert _snapshot(out) == snap
    assert main(_cli([src], out)) == 0  # the lock is free again


def test_stale_temporaries_of_dead_runs_are_removed(prepared):
    src, out, _ = prepared
    pid = _dead_pid()
    (out.parent / f"out.tmp-{pid}").mkdir()
    (out.parent / f"out.tmp-{pid}" / "train_00000.bin").write_bytes(b"half written")
    (out.parent / f"out.old-{pid}").mkdir()
    prepare(_cfg([src], out))
    assert _siblings(out) == []


def test_reader_recovers_output_missing_after_a_kill_between_renames(prepared):
    _, out, snap = prepared
    old = out.parent / f"out.old-{_dead_pid()}"
    os.replace(out, old)  # the state a kill between publish_dir's two renames leaves
    assert any(t.endswith("doc3.") for t in _decoded(out))
    assert _snapshot(out) == snap and not old.exists()


def test_reader_checks_sizes_against_the_manifest(prepared):
    _, out, _ = prepared
    with open(out / "train_00000.bin", "ab") as f:
        f.write(b"\0\0")
    with pytest.raises(fsio.ManifestError, match="train_00000.bin: .* bytes, manifest.json says"):
        PreparedData(out)


def test_minhash_index_inside_out_is_published_with_it(tmp_path):
    out = tmp_path / "out"
    index = out / "mh.index"
    cfg = dict(dedup="minhash", valid_fraction=0.0, minhash_index=str(index))
    first = prepare(_cfg([_distinct_corpus(tmp_path / "a.jsonl", 10, seed=1)], out, **cfg))
    assert index.is_file() and "mh.index" in fsio.read_manifest(out)["files"]
    assert first["train"]["documents"] == 10
    # run 2: 10 new documents plus the 10 old ones -> the old ones are near-duplicates of the loaded index
    both = tmp_path / "both.jsonl"
    both.write_text((tmp_path / "a.jsonl").read_text() + _distinct_corpus(tmp_path / "b.jsonl", 10, seed=2).read_text())
    second = prepare(_cfg([both], out, **cfg))
    assert second["dedup"]["index_loaded"]["documents"] == 10
    assert second["train"]["documents"] == 10 and second["dedup"]["minhash"]["duplicates"] == 10
    assert fsio.verify_manifest(out, hashes=True, required=True)
    # run 3 without using the index keeps the index file (copied unchanged) instead of dropping it
    before = index.read_bytes()
    prepare(_cfg([both], out, dedup="exact", minhash_index=str(index)))
    assert index.read_bytes() == before


_KILLER = textwrap.dedent("""
    import json, os, signal, sys
    from bigmodel_fast import fsio
    from bigmodel_fast.data.prepare import PrepareConfig, prepare
    kill_at, calls = int(sys.argv[1]), [0]
    real_replace, real_rmtree = os.replace, fsio.shutil.rmtree

    def replace(src, dst):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    def rmtree(path, *a, **k):
        if kill_at == 0 and ".old-" in str(path):  # 0: kill while the replaced copy is being removed
            os.kill(os.getpid(), signal.SIGKILL)
        return real_rmtree(path, *a, **k)

    os.replace, fsio.shutil.rmtree = replace, rmtree
    prepare(PrepareConfig(**json.loads(sys.argv[2])))
""")


def test_sigkill_at_every_rename_leaves_a_complete_output(prepared, tmp_path):
    """Kill a re-run (new corpus) before each of its renames, and while it removes the replaced copy: OUT is then
    always the complete old or the complete new output, readers recover it, and the next run cleans up."""
    src, out, _ = prepared
    old_snap = _content(out)
    new_cfg = json.dumps({"inputs": [str(_corpus(tmp_path / "b.jsonl", tag="other"))], "out": str(out),
                          "vocab_size": 300, "quality": False, "dedup": "exact", "progress": False})
    script = tmp_path / "killer.py"
    script.write_text(_KILLER, encoding="utf-8")
    ok = subprocess.run([sys.executable, str(script), "-1", new_cfg], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    new_snap = _content(out)
    renames = 9  # tokenizer, 4 shard files, stats.json, manifest.json, the 2 of publish_dir
    outcomes = []
    for kill_at in [*range(1, renames + 1), 0]:
        prepare(_cfg([src], out))  # back to the old output
        run = subprocess.run([sys.executable, str(script), str(kill_at), new_cfg], capture_output=True, text=True)
        assert run.returncode == -9, (kill_at, run.stderr)
        PreparedData(out)  # recovers when the kill fell between the two renames
        snap = _content(out)
        assert snap in (old_snap, new_snap), kill_at
        assert fsio.verify_manifest(out, hashes=True, required=True)
        outcomes.append("new" if snap == new_snap else "old")
        prepare(_cfg([src], out))
        assert _siblings(out) == [], kill_at  # the dead run's temporaries are gone
    assert outcomes == ["old"] * (renames - 1) + ["new", "new"]
