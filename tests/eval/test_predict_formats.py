"""`bmf predict --input` as JSONL / CSV (`--format`, `--text-field`): other fields copied, the text only with
`--echo`, bad records one-line errors naming file:line (exit 2), streamed one sort window at a time."""

from __future__ import annotations

import io
import json
import sys

import pytest

from bigmodel_fast.cli import main
from bigmodel_fast.eval.inputs import input_format, iter_records, output_row
from bigmodel_fast.eval.predict import Predictor
from bigmodel_fast.eval.stream import SORT_WINDOW_BATCHES

from .eval_helpers import one_line_error
from .test_predict_stream import CountingOut, strict_json

TEXTS = ["good movie", "bad, \"really\" bad", "多行\n文本", ""]


def records(data: bytes, fmt: str, **kw) -> list:
    return list(iter_records(io.BytesIO(data), fmt, name="f", **kw))


def test_formats_by_extension_and_flag():
    assert [input_format(p) for p in ("a.jsonl", "a.NDJSON", "b.csv", "c.txt", "d", "-")] == \
        ["jsonl", "jsonl", "csv", "lines", "lines", "lines"]
    assert input_format("a.jsonl", "lines") == "lines" and input_format("a.txt", "csv") == "csv"


def test_jsonl_and_csv_records():
    jsonl = "".join(json.dumps({"id": i, "text": t, "lang": "x"}, ensure_ascii=False) + "\n" for i, t in
                    enumerate(TEXTS)) + "\n  \n"  # blank lines are skipped
    assert records(jsonl.encode(), "jsonl") == [(t, {"id": i, "lang": "x"}) for i, t in enumerate(TEXTS)]
    csv_data = "id,body,lang\r\n" + "".join(f'{i},"{t.replace(chr(34), chr(34) * 2)}",x\r\n'
                                             for i, t in enumerate(TEXTS))
    assert records(csv_data.encode(), "csv", text_field="body") == \
        [(t, {"id": str(i), "lang": "x"}) for i, t in enumerate(TEXTS)]  # a quoted field spans two lines
    assert records(b"", "csv") == [] and records(b"", "jsonl") == []
    assert records(b"\xff bad\n", "lines") == [("\ufffd bad", {})]


@pytest.mark.parametrize("fmt, data, needle", [
    ("jsonl", b'{"text": "a"}\n{"text": "b"\n', "f:2: not valid JSON"),
    ("jsonl", b'{"text": "a"}\n\n["a"]\n', "f:3: expected a JSON object with a 'text' field, got a JSON list"),
    ("jsonl", b'{"text": "a"}\n{"body": "b", "id": 1}\n', "f:2: no 'text' field (fields: 'body', 'id'); name the "
                                                           "text field with --text-field"),
    ("jsonl", b'{"text": 3}\n', "f:1: field 'text' is a JSON int, expected a string"),
    ("csv", b"id,body\n1,a\n", "f:1: no column 'text' in the CSV header (columns: 'id', 'body')"),
    ("csv", b"id,text\n1,a\n2,b,c\n", "f:3: 3 fields, the header has 2"),
    ("csv", b'id,text\n1,"never closed\n', "f:2: bad CSV"),
])
def test_bad_records_name_the_line(fmt, data, needle):
    with pytest.raises(ValueError) as e:
        records(data, fmt)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_a_cut_json_line_says_so():
    with pytest.raises(ValueError, match=r"f:1: not valid JSON .*cut at --max-line-bytes"):
        records(b'{"text": "' + b"a" * 100 + b'"}\n', "jsonl", max_line_bytes=20)


def test_output_rows_copy_fields_and_rename_clashes():
    result = {"label": "pos", "probabilities": {"pos": 0.9, "neg": 0.1}}
    assert list(output_row("t", {"id": 1, "label": "neg"}, result)) == ["id", "input_label", "label", "probabilities"]
    row = output_row("t", {"id": 1}, result, echo=True, text_key="body")
    assert row == {"id": 1, "body": "t", **result}
    assert output_row("t", None, result) == result  # no echo: the text is not written back


def test_cli_jsonl_and_csv(tiny_bundle, tmp_path, capsys):
    want = Predictor(tiny_bundle, device="cpu").predict(TEXTS)
    f = tmp_path / "in.jsonl"
    f.write_text("".join(json.dumps({"id": f"r{i}", "text": t, "label": "neg"}) + "\n" for i, t in enumerate(TEXTS)),
                 encoding="utf-8")
    assert main(["predict", "--model", str(tiny_bundle), "--input", str(f), "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    rows = [strict_json(line) for line in out.splitlines()]
    assert rows == [{"id": f"r{i}", "input_label": "neg", **w} for i, w in enumerate(want)]
    assert "4 jsonl records (0 blank skipped) in 4 lines from" in err
    c = tmp_path / "in.data"
    c.write_text("body,id\n" + "".join(f'"{t.replace(chr(34), chr(34) * 2)}",{i}\n' for i, t in enumerate(TEXTS)),
                 encoding="utf-8")
    assert main(["predict", "--model", str(tiny_bundle), "--input", str(c), "--format", "csv", "--text-field",
                 "body", "--echo", "--device", "cpu"]) == 0
    rows = [strict_json(line) for line in capsys.readouterr().out.splitlines()]
    assert rows == [{"body": t, "id": str(i), **w} for i, (t, w) in enumerate(zip(TEXTS, want))]


def test_cli_lines_no_echo_by_default(tiny_bundle, tmp_path, capsys):
    f = tmp_path / "in.txt"
    f.write_text("good\nbad\n", encoding="utf-8")
    assert main(["predict", "--model", str(tiny_bundle), "--input", str(f), "--text", "x", "--device", "cpu"]) == 0
    rows = [strict_json(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(list(r) == ["label", "probabilities"] for r in rows)


def test_cli_bad_record_is_one_line_exit_2_after_the_good_ones(tiny_bundle, tmp_path, capsys):
    f = tmp_path / "in.jsonl"
    f.write_text('{"text": "a", "id": 1}\n{"text": "b", "id": 2}\n{"body": "c"}\n{"text": "d"}\n', encoding="utf-8")
    assert main(["predict", "--model", str(tiny_bundle), "--input", str(f), "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    assert [strict_json(line)["id"] for line in out.splitlines()] == [1, 2]  # answered before the error
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"{f}:3: no 'text' field (fields: 'body')" in err


def test_cli_bad_flags_exit_2(tiny_bundle, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", "--model", str(tiny_bundle), "--input", "x", "--format", "xml"])
    assert e.value.code == 2 and "invalid choice: 'xml'" in capsys.readouterr().err
    f = tmp_path / "in.csv"
    f.write_text("a,b\n1,2\n", encoding="utf-8")
    assert main(["predict", "--model", str(tiny_bundle), "--input", str(f), "--text-field", "body",
                 "--device", "cpu"]) == 2
    one_line_error(capsys, "in.csv:1: no column 'body' in the CSV header")


def test_jsonl_stdin_is_consumed_lazily(tiny_bundle, monkeypatch, capsys):
    """JSONL records are read one sort window ahead of the written results at most (memory bounded)."""
    out = CountingOut()
    n = 300  # > 9 sort windows of 4 x SORT_WINDOW_BATCHES
    served = {"lines": 0, "max_ahead": 0}

    class Lazy(io.RawIOBase):
        def __init__(self):
            self.src = (json.dumps({"text": f"t {i}", "i": i}).encode() + b"\n" for i in range(n))
            self.buf = b""

        def readable(self):
            return True

        def readinto(self, b):
            served["max_ahead"] = max(served["max_ahead"], served["lines"] - out.lines)
            if not self.buf:
                self.buf = next(self.src, b"")
            k = min(len(b), len(self.buf))
            b[:k], self.buf = self.buf[:k], self.buf[k:]
            served["lines"] += bytes(b[:k]).count(b"\n")
            return k

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Lazy())))
    monkeypatch.setattr(sys, "stdout", out)
    assert main(["predict", "--model", str(tiny_bundle), "--input", "-", "--format", "jsonl", "--batch-size", "4",
                 "--device", "cpu"]) == 0
    assert [strict_json(line)["i"] for line in out.getvalue().splitlines()] == list(range(n))
    assert served["max_ahead"] < 4 * SORT_WINDOW_BATCHES + 2, served


def test_progress_bar_on_stderr_counts_the_bytes(tiny_bundle, tmp_path, capsys, monkeypatch):
    from bigmodel_fast.eval import inputs

    f = tmp_path / "in.txt"
    f.write_text("good\nbad\n", encoding="utf-8")
    out = io.StringIO()
    with open(f, "rb") as stream:
        inputs.predict_records(Predictor(tiny_bundle, device="cpu"), stream, out, fmt="lines", name=str(f),
                               progress=True)
    assert out.getvalue().count("\n") == 2
    err = capsys.readouterr().err
    assert "predict: 100%" in err and "9.00/9.00" in err, err  # 9 bytes of 9
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # output to a file/pipe: a bar if stderr is a terminal
    monkeypatch.setattr(sys, "stderr", type("Tty", (io.StringIO,), {"isatty": lambda self: True})())
    assert inputs.show_progress(False) and not inputs.show_progress(True)
