"""The C++ runner (csrc/deploy, `bmf_runner`) against the Python side: same texts in, same token ids and the same
probabilities (1e-5) out; GPT greedy generation; clear non-zero exits on bad bundles.

The runner is built once per session (CMake, build directory under pytest's temp root; ~20 s on 2 cores). The
tests skip, naming what is missing, only when CMake, a compiler or the SentencePiece C++ library is absent
(`.ci/run` installs them).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
import torch

from bigmodel_fast.data.classification import encode_for_classifier
from bigmodel_fast.data.tokenizer import Tokenizer
from bigmodel_fast.eval.predict import Predictor
from bigmodel_fast.export.bundle import export_bundle, read_bundle
from bigmodel_fast.export.runner import missing_prerequisites, read_lines, run_runner

TEXTS = ["这本书写得非常好，强烈推荐！", "质量太差了。", "", "emoji 😀👍🏽 and mixed 中文 text",
         "日本語のテキスト、カタカナ",
         "x" * 10_000, "长" * 10_000, "ａｂｃ　full-width ①②", "tab\there  spaces  ", "\ufeffbom first", "nul\x00byte"]
BAD_UTF8 = [b"\xff\xfe bad \xe4\xb8 x", b"\xc0\xaf overlong", b"\xed\xa0\x80 surrogate", b"\xf4\x90\x80\x80 too big",
            b"\xe0\x80 \xf0\x90\x80A", b"truncated \xe4", b"\x80\x80\x80", b"\xf0\x9f\x98"]


def input_bytes(seed: int = 0, fuzz: int = 100) -> bytes:
    """TEXTS, hand-made invalid UTF-8, CR / CRLF line ends, random byte soup, and a last line without newline."""
    rng = random.Random(seed)
    soup = []
    for _ in range(fuzz):
        pool = [rng.randint(0, 255), rng.randint(0x80, 0xFF), 0x61, 0xE4, 0xF0, 0xED, 0xC3, 0xB8, 0x20]
        soup.append(bytes(rng.choice(pool) for _ in range(rng.randint(0, 12)))
                    .replace(b"\n", b"n").replace(b"\r", b"r"))
    return ("\n".join(TEXTS) + "\n").encode() + b"\n".join(BAD_UTF8 + [b"lone\rcr", b"crlf\r"] + soup) + b"\nlast"


def build_dir(tmp_path_factory) -> Path:
    if os.environ.get("BMF_RUNNER_BUILD_DIR"):  # a developer's persistent build (rebuilt incrementally)
        return Path(os.environ["BMF_RUNNER_BUILD_DIR"])
    return tmp_path_factory.getbasetemp() / "bmf_runner_build"  # shared with test_aoti.py: the second build is a no-op


@pytest.fixture(scope="session")
def runner(tmp_path_factory) -> Path:
    """The runner binary, built through `bmf export --build-runner`."""
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    from bigmodel_fast.cli import main

    out = build_dir(tmp_path_factory)
    assert main(["export", "--build-runner", "--runner-dir", str(out)]) == 0
    return out / "bmf_runner"


@pytest.fixture(scope="module")
def ts_bundle(tiny_classifier, tmp_path_factory) -> Path:
    return export_bundle(tiny_classifier, tmp_path_factory.mktemp("deploy") / "bundle")


def tiny_gpt_checkpoint(tiny_data, tmp_path_factory) -> Path:
    """A 10-step GPT pretraining checkpoint (shared by this module and test_aoti.py)."""
    from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

    out = tmp_path_factory.getbasetemp() / "tiny_gpt"
    if not (out / "checkpoint" / "model.safetensors").is_file():
        pretrain(PretrainConfig(data=str(tiny_data), out=str(out), arch="gpt", model_overrides={
            "hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "max_position": 64},
            seq_len=32, batch_size=8, max_steps=10, eval_every=10, eval_batches=2, device="cpu", progress=False))
    return out / "checkpoint"


def run_json(runner: Path, bundle: Path, data: bytes, *args: str) -> list[dict]:
    r = run_runner(runner, bundle, data, *args)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    # JSON lines end at "\n" only: str.splitlines() would also split at U+0085 / U+2028 / U+2029, which the runner
    # (like json.dumps(ensure_ascii=False)) writes unescaped inside strings
    return [json.loads(line) for line in r.stdout.decode().split("\n") if line]


def check_classifier_parity(runner: Path, bundle: Path, checkpoint: Path) -> None:
    """Runner texts, ids (full and model inputs) and probabilities equal the Python side's."""
    data = input_bytes()
    lines = read_lines(data)
    tok = Tokenizer(bundle / "tokenizer.model")
    info = read_bundle(bundle)

    full = run_json(runner, bundle, data, "--tokenize", "--echo")
    assert [o["text"] for o in full] == lines  # the invalid-UTF-8 and line-end policy is Python's
    assert [o["ids"] for o in full] == [tok.encode(t) for t in lines]  # SentencePiece 0.1.97 C++ == Python 0.2.x
    assert max(len(o["ids"]) for o in full) >= 10_000

    out = run_json(runner, bundle, data, "--print-ids", "--batch-size", "8")
    assert len(out) == len(lines)
    assert [o["ids"] for o in out] == encode_for_classifier(tok, lines, info["max_len"])
    eager = Predictor(checkpoint, device="cpu").predict_proba(lines)  # (N, C), eager PyTorch
    got = torch.tensor([[o["probabilities"][name] for name in info["labels"]] for o in out])
    torch.testing.assert_close(got, eager, atol=1e-5, rtol=0)
    assert [o["label"] for o in out] == [info["labels"][i] for i in eager.argmax(-1).tolist()]


def test_runner_matches_python(runner, ts_bundle, tiny_classifier):
    check_classifier_parity(runner, ts_bundle, tiny_classifier)


def test_batch_size_threads_and_files_do_not_change_results(runner, ts_bundle, tmp_path):
    data = input_bytes(seed=1, fuzz=40)
    base = run_json(runner, ts_bundle, data, "--batch-size", "1", "--threads", "1")
    f = tmp_path / "in.txt"
    f.write_bytes(data)
    for args in (("--batch-size", "32", "--threads", "2"), ("--batch-size", "5", "--input", str(f))):
        other = run_json(runner, ts_bundle, b"" if "--input" in args else data, *args)
        assert [o["label"] for o in other] == [o["label"] for o in base]
        for a, b in zip(base, other):
            for k in a["probabilities"]:
                assert abs(a["probabilities"][k] - b["probabilities"][k]) < 1e-6
    assert run_json(runner, ts_bundle, b"") == []  # no input, no output, exit 0


def test_runner_check_describes_bundle(runner, ts_bundle):
    (desc,) = run_json(runner, ts_bundle, b"", "--check")
    assert desc["format"] == "torchscript" and desc["task"] == "classify" and desc["labels"] == ["neg", "pos"]


def test_output_lines_have_python_json_layout(runner, ts_bundle):
    """Every output line is what Python's json.dumps(ensure_ascii=False) writes (", " and ": " separators, non-ASCII
    as UTF-8, control characters escaped), plus U+007F escaped; fields in a fixed order; floats as %.9g."""
    data = '中文 "q" \\ tab\t del\x7f ctl\x01 😀\n'.encode() + b"\xff\n"
    cases = {("--echo", "--print-ids", "--print-logits"): ["text", "label", "probabilities", "ids", "logits"],
             ("--tokenize", "--echo"): ["text", "ids"], ("--check",): ["bundle", "format", "task", "arch", "max_len",
                                                                        "vocab_size", "labels", "problem_type",
                                                                        "long_text", "threads"]}
    for args, keys in cases.items():
        r = run_runner(runner, ts_bundle, b"" if "--check" in args else data, *args)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        lines = r.stdout.decode().splitlines()
        assert len(lines) == (1 if "--check" in args else 2)
        for line in lines:
            o = json.loads(line)
            assert list(o) == keys
            assert line == json.dumps(o, ensure_ascii=False).replace("\x7f", "\\u007f")
        if "--echo" in args:
            assert json.loads(lines[0])["text"] == '中文 "q" \\ tab\t del\x7f ctl\x01 😀'
            assert "\\u007f" in lines[0] and "\\u0001" in lines[0] and "\\t" in lines[0]
            assert json.loads(lines[1])["text"] == "\ufffd"
    line = run_runner(runner, ts_bundle, b"x\n", "--print-logits").stdout.decode()
    for p in json.loads(line)["probabilities"].values():
        assert f"{p:.9g}" in line


def test_gpt_lm_generation_matches_python(runner, tiny_data, tmp_path_factory, tmp_path):
    from bigmodel_fast.export.gpt import greedy_generate
    from bigmodel_fast.export.targets import load_export_target

    ckpt = tiny_gpt_checkpoint(tiny_data, tmp_path_factory)
    bundle = export_bundle(ckpt, tmp_path / "lm")
    info = read_bundle(bundle)
    assert info["task"] == "lm" and info["max_len"] == 64 and info["labels"] == []
    prompts = ["你好，世界", "", "The Python", "长" * 300]  # the last one is longer than the 64-token context
    out = run_json(runner, bundle, "\n".join(prompts).encode() + b"\n", "--max-new-tokens", "6", "--print-ids",
                   "--print-logits")
    target = load_export_target(ckpt)
    tok = Tokenizer(bundle / "tokenizer.model")
    for prompt, o in zip(prompts, out, strict=True):
        ids, first = greedy_generate(target.module, tok.encode(prompt), 6, info["max_len"])
        assert o["prompt_ids"] == (tok.encode(prompt) or [tok.bos_id])
        assert o["generated_ids"] == ids
        assert o["text"] == tok.decode(ids)
        torch.testing.assert_close(torch.tensor(o["logits"]), first, atol=1e-5, rtol=0)
    sampled = run_json(runner, bundle, b"hello\n", "--max-new-tokens", "5", "--top-k", "5", "--seed", "3")
    assert len(sampled[0]["generated_ids"]) == 5
    assert sampled == run_json(runner, bundle, b"hello\n", "--max-new-tokens", "5", "--top-k", "5", "--seed", "3")


def expect_failure(runner, bundle, *args, match: str, code: int = 2) -> None:
    if (Path(bundle) / "manifest.json").is_file() and Path(bundle).name != "nowhere":
        from bigmodel_fast.fsio import write_manifest

        write_manifest(bundle)  # the hand edit gets a valid manifest: the parser behind the checksum is tested
    r = run_runner(runner, bundle, b"some text\n", *args)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == code, (r.returncode, err)
    assert match in err, err
    assert r.stdout == b""


def test_bad_bundles_exit_nonzero_with_a_message(runner, ts_bundle, tmp_path):
    expect_failure(runner, tmp_path / "nowhere", match="not a directory")

    def broken(name: str) -> Path:
        b = tmp_path / name
        shutil.copytree(ts_bundle, b)
        return b

    b = broken("json")
    (b / "bundle.json").write_text("{not json")
    expect_failure(runner, b, match="invalid JSON")
    b = broken("version")
    info = json.loads((b / "bundle.json").read_text())
    (b / "bundle.json").write_text(json.dumps({**info, "bundle_version": 99}))
    expect_failure(runner, b, match="bundle_version 99")
    b = broken("labels")
    (b / "bundle.json").write_text(json.dumps({**info, "labels": ["a", "b", "c"]}))
    expect_failure(runner, b, match="3 labels")
    b = broken("model")
    data = (b / "model.pt").read_bytes()
    (b / "model.pt").write_bytes(data[: len(data) // 2])
    expect_failure(runner, b, match="cannot load the TorchScript model")
    (b / "model.pt").unlink()
    expect_failure(runner, b, match="model file missing")
    b = broken("tokenizer")
    (b / "tokenizer.model").write_bytes(b"\x00garbage" * 10)
    expect_failure(runner, b, match="not a valid SentencePiece model")
    b = broken("field")
    (b / "bundle.json").write_text(json.dumps({**info, "max_len": "long"}))
    expect_failure(runner, b, match="max_len")


def test_bad_usage_exits_2(runner, ts_bundle):
    expect_failure(runner, ts_bundle, "--batch-size", "0", match="--batch-size")
    expect_failure(runner, ts_bundle, "--bogus", match="unknown option")
    r = run_runner(runner, ts_bundle, b"", "--help")
    assert r.returncode == 0 and b"usage: bmf_runner" in r.stdout


def test_cli_export_needs_checkpoint_or_build(capsys):
    from bigmodel_fast.cli import main

    assert main(["export"]) == 2
    assert "--build-runner" in capsys.readouterr().err
    assert main(["export", "--checkpoint", "x"]) == 2


def test_lstm_classifier_through_runner(runner, tiny_pretrained, tmp_path):
    """The LSTM classifier plugs into export with no export-side code (TorchScript bundle)."""
    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.models import ModelConfig, build_classifier

    vocab = Tokenizer(tiny_pretrained / "tokenizer.model").vocab_size
    cfg = ModelConfig(arch="lstm", vocab_size=vocab, hidden_size=32, num_layers=2, num_heads=1, intermediate_size=64,
                      max_position=64, type_vocab_size=0, bidirectional=True, num_labels=2, label_names=["neg", "pos"])
    torch.manual_seed(0)
    checkpoint = ckpt.save_checkpoint(tmp_path / "lstm", build_classifier(cfg), cfg.to_dict(),
                                      tiny_pretrained / "tokenizer.model", {"kind": "classifier", "max_len": 40})
    bundle = export_bundle(checkpoint, tmp_path / "bundle")
    assert read_bundle(bundle)["arch"] == "lstm"
    check_classifier_parity(runner, bundle, checkpoint)
