"""Fuzzing shard loading: seeded truncations, extensions, byte flips and header-field rewrites of .bin/.idx.

Every mutant must give either a clean ShardFormatError naming one of the two files, a known loader ValueError
(too few tokens / documents for the batch shape), or a valid load; never a crash, a hang or an exception from deep
inside (IndexError, struct.error, numpy errors). The Python API (Shard, every document, CausalLoader/MLMLoader) runs
in this process under an alarm; the native TokenLoader runs over the same mutants in a child process, so that a
segfault fails the test instead of killing pytest. Both must reach the same verdict, and on valid mutants the native
batches must be bit-identical to the reference ones.
"""
from __future__ import annotations

import hashlib
import json
import re
import signal
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from bigmodel_fast.data.loader import CausalLoader, MLMLoader, SpecialIds
from bigmodel_fast.data.shards import HEADER_SIZE, Shard, ShardFormatError, write_shard

SEED = 20261201
CASES_PER_BASE = {1000: 200, 70_000: 100}  # uint16 and uint32 shards
# The loaders' own refusals of a well-formed but too small shard (not format errors).
LOADER_REFUSALS = re.compile(r"needs windows of seq_len \+ 1 tokens|no document of at least 2 tokens|NSP needs")
FIELDS = [(8, "<I"), (12, "<I"), (16, "<Q"), (24, "<Q"), (32, "<Q")]  # version, dtype, vocab, tokens, docs


def _base_docs(rng: np.random.Generator, vocab: int) -> list[np.ndarray]:
    lengths = rng.integers(0, 40, size=24)
    lengths[[2, 9]] = [0, 1]  # an empty and a one-token document
    return [rng.integers(7, vocab, size=int(n)) for n in lengths]


def _interesting(rng: np.random.Generator, old: int, bits: int) -> int:
    top = (1 << bits) - 1
    choices = [0, 1, 2, max(old - 1, 0), min(old + 1, top), old * 2 & top, 1 << (bits - 1), top,
               int(rng.integers(0, 1 << 31))]
    return int(choices[int(rng.integers(len(choices)))])


def _mutate(rng: np.random.Generator, data: bytes, kind: str) -> bytes:
    raw = bytearray(data)
    if kind == "truncate":
        return bytes(raw[: int(rng.integers(0, len(raw)))])
    if kind == "extend":
        return bytes(raw) + rng.bytes(int(rng.integers(1, 17)))
    if kind == "field":
        offset, fmt = FIELDS[int(rng.integers(len(FIELDS)))]
        (old,) = struct.unpack_from(fmt, raw, offset)
        struct.pack_into(fmt, raw, offset, _interesting(rng, old, 8 * struct.calcsize(fmt)))
        return bytes(raw)
    if kind == "body_int64" and len(raw) >= HEADER_SIZE + 8:  # an offset (idx) or four ids (bin) rewritten
        at = HEADER_SIZE + 8 * int(rng.integers(0, (len(raw) - HEADER_SIZE) // 8))
        struct.pack_into("<q", raw, at, int(rng.choice([-1, 0, 1, 7, 10**6, -(2**63), 2**63 - 1])))
        return bytes(raw)
    lo, hi = (0, HEADER_SIZE) if kind == "flip_header" else (HEADER_SIZE, len(raw)) if kind == "flip_body" else (
        0, len(raw))
    for _ in range(1 if kind != "flip_many" else int(rng.integers(2, 9))):
        raw[int(rng.integers(lo, hi))] ^= int(rng.integers(1, 256))
    return bytes(raw)


KINDS = ["truncate", "extend", "field", "field_both", "body_int64", "flip_header", "flip_body", "flip_many"]


def _mutate_both_headers(rng: np.random.Generator, good: dict[str, bytes]) -> dict[str, bytes]:
    """One header field set to the same value in both files (so they agree and deeper checks run)."""
    offset, fmt = FIELDS[int(rng.integers(2, len(FIELDS)))]  # vocab_size, num_tokens or num_docs
    (old,) = struct.unpack_from(fmt, good[".bin"], offset)
    value = _interesting(rng, old, 8 * struct.calcsize(fmt))
    out = {}
    for suffix, data in good.items():
        raw = bytearray(data)
        struct.pack_into(fmt, raw, offset, value)
        out[suffix] = bytes(raw)
    return out


@pytest.fixture(scope="module")
def mutants(tmp_path_factory) -> list[dict]:
    """The seeded mutants, one directory each: ``case/s.bin`` + ``case/s.idx``."""
    root = tmp_path_factory.mktemp("shard_fuzz")
    rng = np.random.default_rng(SEED)
    cases = []
    for vocab, count in CASES_PER_BASE.items():
        base = write_shard(root / f"base{vocab}" / "s", _base_docs(rng, vocab), vocab)
        good = {".bin": base.bin_path.read_bytes(), ".idx": base.idx_path.read_bytes()}
        for i in range(count):
            which = (".bin", ".idx")[i % 2]
            kind = KINDS[(i // 2) % len(KINDS)]
            prefix = root / f"v{vocab}_{i:03d}_{kind}{which.replace('.', '_')}" / "s"
            prefix.parent.mkdir()
            if kind == "field_both":
                files = _mutate_both_headers(rng, good)
            else:
                files = {suffix: _mutate(rng, data, kind) if suffix == which else data for suffix, data in good.items()}
            for suffix, data in files.items():
                prefix.with_name("s" + suffix).write_bytes(data)
            cases.append({"prefix": str(prefix), "vocab": vocab})
    return cases


def _digest(batch: dict) -> str:
    h = hashlib.sha1()
    for key in sorted(batch):
        v = batch[key]
        h.update(key.encode() + (v.numpy().tobytes() if hasattr(v, "numpy") else str(v).encode()))
    return h.hexdigest()


def _verdict(error: Exception, prefix: str) -> str:
    """"format" / "refused" for the allowed errors; anything else is re-raised with the case named."""
    if isinstance(error, ShardFormatError) and str(error).startswith((prefix + ".bin: ", prefix + ".idx: ")):
        return "format"
    if type(error) is ValueError and LOADER_REFUSALS.search(str(error)):
        return "refused"
    raise AssertionError(f"{prefix}: {type(error).__name__}: {error}") from error


def _python_outcome(prefix: str, vocab: int) -> list[str]:
    ids = SpecialIds.fixed(vocab)
    try:
        shard = Shard(prefix)
        for d in range(len(shard)):
            shard[d].sum()  # every document readable
        shard.doc_lengths()
    except Exception as e:  # noqa: BLE001 (the verdict re-raises anything unexpected)
        return [_verdict(e, prefix)] * 2
    out = []
    for make in (lambda: CausalLoader([shard], seq_len=8, batch_size=3, vocab_size=vocab),
                 lambda: MLMLoader([shard], ids, seq_len=8, batch_size=3, vocab_size=vocab)):
        try:
            loader = make()
            out.append(_digest(loader.batch(0)) + _digest(loader.batch(len(loader) + 1)))
        except Exception as e:  # noqa: BLE001
            out.append(_verdict(e, prefix))
    return out


def _alarm(signum, frame):
    raise TimeoutError("shard loading hung")


@pytest.fixture(scope="module")
def python_outcomes(mutants) -> dict[str, list[str]]:
    old = signal.signal(signal.SIGALRM, _alarm) if hasattr(signal, "SIGALRM") else None
    try:
        out = {}
        for case in mutants:
            if old is not None:
                signal.alarm(20)
            out[case["prefix"]] = _python_outcome(case["prefix"], case["vocab"])
        return out
    finally:
        if old is not None:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


def test_python_api_gives_clean_errors_or_valid_loads(python_outcomes):
    verdicts = [v for pair in python_outcomes.values() for v in pair]
    n_format = verdicts.count("format")
    n_ok = sum(len(v) == 80 for v in verdicts)
    # the mutants exercise both sides: most are rejected, a good number still load (reserved bytes, in-range ids)
    assert n_format > len(verdicts) // 2 and n_ok > 20, (n_format, n_ok, len(verdicts))


NATIVE_DRIVER = textwrap.dedent("""
    import hashlib, json, sys
    from bigmodel_fast.data.loader import SpecialIds, TokenLoader
    from bigmodel_fast.data.shards import ShardFormatError

    def digest(batch):
        h = hashlib.sha1()
        for key in sorted(batch):
            v = batch[key]
            h.update(key.encode() + (v.numpy().tobytes() if hasattr(v, "numpy") else str(v).encode()))
        return h.hexdigest()

    for case in json.load(open(sys.argv[1])):
        prefix, vocab = case["prefix"], case["vocab"]
        print("BEGIN " + prefix, file=sys.stderr, flush=True)
        ids = SpecialIds.fixed(vocab)
        out = []
        for mode in ("causal", "mlm"):
            try:
                ld = TokenLoader(prefix, mode=mode, seq_len=8, batch_size=3, special_ids=ids, vocab_size=vocab,
                                 num_threads=2, prefetch=2)
                text = digest(ld.batch(0)) + digest(ld.batch(len(ld) + 1))
                next(ld), next(ld)  # the threaded path too
                ld.close()
                out.append(text)
            except ShardFormatError as e:
                out.append(["ShardFormatError", str(e)])
            except ValueError as e:
                out.append(["ValueError" if type(e) is ValueError else type(e).__name__, str(e)])
            except Exception as e:
                out.append([type(e).__name__, str(e)])
        print(json.dumps([prefix, out]), flush=True)
""")


def test_native_loader_agrees_and_never_crashes(tmp_path, mutants, python_outcomes):
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps(mutants))
    try:
        run = subprocess.run([sys.executable, "-c", NATIVE_DRIVER, str(cases_file)], capture_output=True, text=True,
                             timeout=240)
    except subprocess.TimeoutExpired as e:
        last = (e.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        pytest.fail(f"native loader hung on {last}")
    last = run.stderr.strip().splitlines()[-1:]
    assert run.returncode == 0, f"native loader died (rc {run.returncode}) on {last}: {run.stderr[-2000:]}"
    native = dict(json.loads(line) for line in run.stdout.splitlines())
    assert len(native) == len(mutants)
    for case in mutants:
        prefix = case["prefix"]
        verdicts = []
        for got in native[prefix]:
            if isinstance(got, str):
                verdicts.append(got)
                continue
            cls, message = got
            if cls == "ShardFormatError" and message.startswith((prefix + ".bin: ", prefix + ".idx: ")):
                verdicts.append("format")
            elif cls == "ValueError" and LOADER_REFUSALS.search(message):
                verdicts.append("refused")
            else:
                pytest.fail(f"{prefix}: native {cls}: {message}")
        assert verdicts == python_outcomes[prefix], prefix  # same verdict; same batches when valid
