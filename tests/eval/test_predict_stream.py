"""`bmf predict --input`: streamed in batches, bounded memory, the line policy of bmf_runner, clean errors."""

from __future__ import annotations

import errno
import io
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bigmodel_fast.cli import main
from bigmodel_fast.eval.stream import SORT_WINDOW_BATCHES

from .eval_helpers import one_line_error

HANG_GUARD_S = 120  # only stops a hung test; a pass never comes near it


def strict_json(line: str):
    def refuse(name):
        raise AssertionError(f"bare {name} in JSON output: {line!r}")

    return json.loads(line, parse_constant=refuse)


class CountingOut(io.StringIO):
    """stdout that counts the result lines written so far."""

    @property
    def lines(self) -> int:
        return self.getvalue().count("\n")


class LazyLines(io.RawIOBase):
    """``n`` lines made only when read, at most ``piece`` bytes per read; records how far reading ran ahead of
    the results written to ``out`` (how many lines the reader held at most)."""

    def __init__(self, n: int, out: CountingOut, piece: int = 100):
        self.source = (f"line {i}\n".encode() for i in range(n))
        self.out, self.piece = out, piece
        self.buf = b""
        self.served = 0  # complete lines handed out
        self.max_ahead = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        self.max_ahead = max(self.max_ahead, self.served - self.out.lines)
        while len(self.buf) < self.piece and (nxt := next(self.source, None)) is not None:
            self.buf += nxt
        k = min(len(b), self.piece, len(self.buf))
        b[:k], self.buf = self.buf[:k], self.buf[k:]
        self.served += bytes(b[:k]).count(b"\n")
        return k


def test_input_is_consumed_lazily_one_window_at_a_time(tiny_bundle, monkeypatch, capsys):
    """Reading never runs more than one sort window (SORT_WINDOW_BATCHES batches) ahead of the written results:
    memory does not grow with the input (the old code listed every line before predicting any)."""
    out = CountingOut()
    lazy = LazyLines(2000, out)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(lazy)))
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["predict", "--model", str(tiny_bundle), "--input", "-", "--batch-size", "8", "--device", "cpu",
                 "--echo"]) == 0
    rows = [strict_json(line) for line in out.getvalue().splitlines()]
    assert [r["text"] for r in rows] == [f"line {i}" for i in range(2000)]
    window = 8 * SORT_WINDOW_BATCHES
    assert lazy.max_ahead < window, f"the reader held {lazy.max_ahead} lines before answering them"
    assert "2000 lines from stdin, 0 truncated" in capsys.readouterr().err


def _reader(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


def _take(q: queue.Queue, n: int) -> list[str]:
    got = []
    for _ in range(n):
        try:
            line = q.get(timeout=HANG_GUARD_S)
        except queue.Empty:
            pytest.fail(f"no result within {HANG_GUARD_S}s after {len(got)} of {n} lines (input still open)")
        assert line is not None, "the process closed its output early"
        got.append(line)
    return got


def test_first_results_arrive_while_the_input_is_still_open(tiny_bundle):
    """An interactive producer gets answers for the lines it wrote, without closing the pipe or filling a batch."""
    proc = subprocess.Popen([sys.executable, "-m", "bigmodel_fast.cli", "predict", "--model", str(tiny_bundle),
                             "--input", "/dev/stdin", "--device", "cpu", "--echo"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    try:
        proc.stdin.write("first\nsecond\nthird\n")
        proc.stdin.flush()
        assert [strict_json(l)["text"] for l in _take(q, 3)] == ["first", "second", "third"]
        proc.stdin.write("fourth\r\nfifth")  # \r\n ends a line; a last line without a terminator counts
        proc.stdin.flush()
        assert strict_json(_take(q, 1)[0])["text"] == "fourth"
        proc.stdin.close()
        assert strict_json(_take(q, 1)[0])["text"] == "fifth"
        assert proc.wait(timeout=HANG_GUARD_S) == 0
        assert "5 lines from /dev/stdin, 0 truncated" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_long_lines_are_cut_like_the_runner(tiny_bundle, tmp_path, capsys):
    f = tmp_path / "in.txt"
    f.write_bytes("短".encode() * 5000 + b"\n" + b"ok\n" + b"x" * 11)  # a 15000-byte line, a short one, 11 bytes
    assert main(["predict", "--model", str(tiny_bundle), "--input", str(f), "--max-line-bytes", "10",
                 "--device", "cpu", "--echo"]) == 0
    out, err = capsys.readouterr()
    texts = [strict_json(l)["text"] for l in out.splitlines()]
    assert texts == ["短" * 3, "ok", "x" * 10]  # 10 bytes cut back to whole characters (9 bytes)
    assert "3 lines from" in err and "2 truncated to --max-line-bytes 10" in err


def test_long_texts_are_tokenized_apart_and_truncated(tiny_classifier, monkeypatch):
    """Tokenizing a batch never holds the ids of all its long lines at once: each long text is encoded alone and
    cut to max_len before the next one is tokenized."""
    from bigmodel_fast.eval import predict as predict_mod

    p = predict_mod.Predictor(tiny_classifier, device="cpu")
    calls = []
    real = p.tokenizer.encode_batch

    def spy(texts, *a, **k):
        calls.append(len(texts))
        return real(texts, *a, **k)

    monkeypatch.setattr(p.tokenizer, "encode_batch", spy)
    monkeypatch.setattr(predict_mod, "ENCODE_GROUP_CHARS", 1000)
    texts = ["word " * 400, "short", "more words " * 200, "a", "b"]
    seqs = p.encode(texts)
    assert calls == [1, 1, 1, 2]  # the long texts alone, the short ones grouped
    assert [len(s) for s in seqs][:1] == [p.max_len] and len(seqs) == 5
    assert seqs == [[p.tokenizer.cls_id, *ids[: p.max_len - 2], p.tokenizer.sep_id]
                    for ids in real(texts)]  # the same ids as tokenizing everything at once


def test_bad_input_paths_are_one_line_errors(tiny_bundle, tmp_path, capsys):
    base = ["predict", "--model", str(tiny_bundle), "--device", "cpu", "--input"]
    assert main(base + [str(tmp_path)]) == 2
    one_line_error(capsys, str(tmp_path), "is a directory")
    assert main(base + [str(tmp_path / "missing.txt")]) == 2
    one_line_error(capsys, "missing.txt", "no such input file")
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        assert main(base + [str(sock_path)]) == 2
    one_line_error(capsys, str(sock_path), "socket")
    with pytest.raises(SystemExit) as e:
        main(base + [str(tmp_path / "x"), "--max-line-bytes", "0"])
    assert e.value.code == 2


def test_a_fifo_is_read_as_a_stream(tiny_bundle, tmp_path, capsys):
    fifo = tmp_path / "texts.txt"
    os.mkfifo(fifo)

    def produce():
        with open(fifo, "w", encoding="utf-8") as f:
            f.write("good\nbad\n")

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    assert main(["predict", "--model", str(tiny_bundle), "--input", str(fifo), "--device", "cpu", "--echo"]) == 0
    writer.join(HANG_GUARD_S)
    assert [strict_json(l)["text"] for l in capsys.readouterr().out.splitlines()] == ["good", "bad"]


def _damage(path: Path, offset: int = 8, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    data[offset : offset + n] = b"\xff" * n
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_damaged_models_are_one_line_errors(command, tiny_classifier, tiny_bundle, sentiment_small, tmp_path,
                                            capsys, reseal):

    ckpt = Path(shutil.copytree(tiny_classifier, tmp_path / "ckpt"))
    _damage(ckpt / "model.safetensors")
    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    (bundle / "model.pt").write_bytes(b"not a zip archive " * 50)
    shapes = Path(shutil.copytree(tiny_classifier, tmp_path / "shapes"))
    cfg = json.loads((shapes / "config.json").read_text())
    cfg["intermediate_size"] = cfg["intermediate_size"] * 2  # weights no longer fit
    (shapes / "config.json").write_text(json.dumps(cfg))
    reseal(shapes)
    tail = ["--text", "hi"] if command == "predict" else ["--data", str(sentiment_small["test"])]
    for model in (ckpt, bundle, shapes):
        assert main([command, "--model", str(model), "--device", "cpu", *tail]) == 2, model
        one_line_error(capsys, str(model), f"bmf {command}: error:")


def test_nan_model_gives_strict_json_and_null_labels(nan_classifier, tmp_path, capsys):
    f = tmp_path / "in.txt"
    f.write_text("good\nbad\n", encoding="utf-8")
    assert main(["predict", "--model", str(nan_classifier), "--text", "fine", "--input", str(f),
                 "--device", "cpu", "--echo"]) == 0
    out, err = capsys.readouterr()
    rows = [strict_json(l) for l in out.splitlines()]
    assert [r["text"] for r in rows] == ["fine", "good", "bad"]
    for r in rows:
        assert r["label"] is None and set(r["probabilities"].values()) == {None}, r
    assert "3 predictions were not finite" in err


def test_a_closed_output_pipe_stops_quietly(tiny_bundle, tmp_path):
    """`bmf predict --input F | head -1`: the reader leaves, predict stops at its next write, no traceback."""
    f = tmp_path / "in.txt"
    f.write_text("".join(f"line {i}\n" for i in range(5000)), encoding="utf-8")  # far more than a pipe buffer
    proc = subprocess.Popen([sys.executable, "-m", "bigmodel_fast.cli", "predict", "--model", str(tiny_bundle),
                             "--input", str(f), "--device", "cpu", "--echo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert strict_json(proc.stdout.readline().decode())["text"] == "line 0"
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=HANG_GUARD_S) == 1
        assert "Traceback" not in err and "5000 lines" not in err, err
    finally:
        proc.kill()
        proc.wait()


class FailingInput(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        raise OSError(errno.EIO, "Input/output error")


def test_a_read_error_is_one_line(tiny_bundle, monkeypatch, capsys):
    """A device error while reading stdin (EIO) is one line naming the input, exit 2 (was a traceback)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(FailingInput())))
    assert main(["predict", "--model", str(tiny_bundle), "--input", "-", "--device", "cpu"]) == 2
    one_line_error(capsys, "stdin: cannot read the input (Input/output error)")
