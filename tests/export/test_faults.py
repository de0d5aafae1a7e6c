"""Issue 11 for bundles and bmf_runner: option limits, the per-line byte cap (same texts as data/lines.py),
bounded classify tokenization (same ids as encode_for_classifier), and the checksum manifest checked before
anything is loaded (runner and Python)."""

from __future__ import annotations

import random
import shutil

import pytest

from bigmodel_fast.data.classification import encode_for_classifier
from bigmodel_fast.data.tokenizer import Tokenizer
from bigmodel_fast.export.bundle import export_bundle, read_bundle
from bigmodel_fast.export.runner import read_lines, run_runner
from bigmodel_fast.fsio import ManifestError, write_manifest

from .test_deploy import run_json, runner  # noqa: F401 -- the session-built runner fixture

TRICKY = (b"a\rb\r\nc\n\n\xe4\xb8\xad\xe6\x96\x87\xe6\x96\x87 cut\n\xff\xfe bad\r\r\n" + b"\xf0\x9f\x98\x80" * 5 +
          b"\nabcdef\xe4\xb8\xadg\nno final newline")


@pytest.fixture(scope="module")
def bundle(tiny_classifier, tmp_path_factory):
    return export_bundle(tiny_classifier, tmp_path_factory.mktemp("faults") / "bundle")


def test_numeric_options_are_bounded(runner, bundle):  # noqa: F811
    for args in (("--threads", "100000"), ("--threads", "30000"), ("--threads", "0"), ("--batch-size", "99999"),
                 ("--max-new-tokens", "999999999"), ("--max-line-bytes", "0"), ("--temperature", "inf")):
        r = run_runner(runner, bundle, b"x\n", *args, timeout=60)
        err = r.stderr.decode()
        assert r.returncode == 2 and args[0] in err and len(err.strip().splitlines()) == 1, (args, err)


@pytest.mark.parametrize("cap", [1, 3, 7, 10, 1 << 20])
def test_runner_lines_equal_iter_lines(runner, bundle, cap):  # noqa: F811
    got = run_json(runner, bundle, TRICKY, "--tokenize", "--echo", "--max-line-bytes", str(cap))
    assert [o["text"] for o in got] == read_lines(TRICKY, cap)


def test_runner_huge_line_without_newline_is_capped(runner, bundle):  # noqa: F811
    data = b"ab" * (3 << 20)  # 6 MiB, no newline
    (o,) = run_json(runner, bundle, data, "--tokenize", "--echo")
    assert o["text"] == "ab" * (1 << 19)  # 1 MiB, the default cap


def test_long_text_prefix_rule_equals_full_tokenization(bundle):
    tok = Tokenizer(bundle / "tokenizer.model")
    rng = random.Random(0)
    texts = ["长" * 5000, "这本书写得非常好" * 900, " ".join("word%d" % rng.randint(0, 99) for _ in range(4000)),
             "x" * 20000, "short"]
    for max_len in (3, 16, 64):
        full = [[tok.cls_id, *tok.encode(t)[: max_len - 2], tok.sep_id] for t in texts]
        assert encode_for_classifier(tok, texts, max_len) == full


def test_runner_classify_ids_equal_python_on_long_texts(runner, bundle):  # noqa: F811
    tok = Tokenizer(bundle / "tokenizer.model")
    texts = ["长" * 5000, "这本书写得非常好" * 900, "mixed 中文 text " * 2000]
    out = run_json(runner, bundle, "\n".join(texts).encode() + b"\n", "--print-ids")
    assert [o["ids"] for o in out] == encode_for_classifier(tok, texts, read_bundle(bundle)["max_len"])


def flipped(bundle, tmp_path, name):
    b = tmp_path / "flip"
    shutil.copytree(bundle, b)
    data = bytearray((b / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (b / name).write_bytes(bytes(data))
    return b


@pytest.mark.parametrize("name", ["model.pt", "tokenizer.model", "bundle.json"])
def test_flipped_byte_is_caught_before_loading(runner, bundle, tmp_path, name):  # noqa: F811
    b = flipped(bundle, tmp_path, name)
    r = run_runner(runner, b, b"x\n", timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2 and name in err and "SHA-256" in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(ManifestError, match=name):
        read_bundle(b)
    from bigmodel_fast.cli import main

    inp = tmp_path / "in.txt"
    inp.write_text("hello\n")
    assert main(["predict", "--model", str(b), "--input", str(inp)]) == 2


def test_missing_manifest_is_refused(runner, bundle, tmp_path):  # noqa: F811
    b = tmp_path / "nomanifest"
    shutil.copytree(bundle, b)
    (b / "manifest.json").unlink()
    r = run_runner(runner, b, b"x\n", timeout=60)
    assert r.returncode == 2 and b"manifest.json" in r.stderr
    with pytest.raises(ManifestError, match="manifest.json"):
        read_bundle(b)


def test_runner_fuzz_corrupt_bundles_and_stdin(runner, bundle, tmp_path):  # noqa: F811
    rng = random.Random(11)
    names = ["bundle.json", "tokenizer.model", "model.pt", "manifest.json"]
    for case in range(24):
        b = tmp_path / f"fz{case}"
        shutil.copytree(bundle, b)
        name = names[case % 4]
        data = bytearray((b / name).read_bytes())
        if case % 3 == 0:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        (b / name).write_bytes(bytes(data))
        if case % 2 and name != "manifest.json":
            write_manifest(b)  # a re-manifested corruption reaches the parsers behind the checksum
        r = run_runner(runner, b, b"some text\n", timeout=120)
        assert r.returncode in (0, 2), (case, name, r.returncode, r.stderr[-500:])
        if r.returncode == 2:
            assert len(r.stderr.decode(errors="replace").strip().splitlines()) == 1, (case, r.stderr)
    for seed in range(4):
        soup = random.Random(seed).randbytes(20000)
        r = run_runner(runner, bundle, soup, timeout=120)
        assert r.returncode == 0 and r.stdout.count(b"\n") == len(read_lines(soup)), r.stderr[-300:]
