"""Token-classification (NER) bundles through bmf_runner: the runner splits words, cuts windows and reads entities
exactly as Python's TokenPredictor does (csrc/deploy/token.cpp against bigmodel_fast/data/words.py,
token_windows.py, token_inputs.py and eval/token_predict.py), so its records equal Python's, not just come close.

The checkpoints are random (tests/export/task_models.make_token_classifier) with scaled weights, so tags vary from
word to word and entities of every type appear. Python reads the same bytes with the runner's input policy
(``read_lines``: errors="replace", the 1 MiB line cap), as ``bmf predict`` does.
"""

from __future__ import annotations

import json
import random
import shutil

import pytest
import torch

from bigmodel_fast.data.token_inputs import effective_overlap, encode_sentences, window_width
from bigmodel_fast.data.words import SINGLE_RANGES, WHITESPACE, split_words
from bigmodel_fast.eval.inputs import output_row
from bigmodel_fast.eval.token_predict import TokenPredictor
from bigmodel_fast.export.bundle import export_bundle, read_bundle
from bigmodel_fast.export.runner import read_lines, run_runner

from .task_models import make_token_classifier
from .test_deploy import BAD_UTF8, expect_failure, runner  # noqa: F401 -- the session-built runner fixture

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
LONG = ("Barack Obama met 习近平 in 北京, then flew to Paris (France)! 😀 Ünïcödé words... "
        "and the U.N. said: “fine” — 東京タワー, 서울特别市 ")

TEXTS = [
    "John Smith lives in Paris, France.",
    "江泽民在北京会见了来自美国的代表团。",
    "Mixed 中文 and English: 李明 works at Google in 上海!",
    "",
    "   \t  ",
    "\u3000\u00a0\u2003",
    "!!!???...---;;;",
    "“Quoted” ‘text’ — dash – en, ellipsis… «guillemets»",
    "ａｂｃ　full-width ①② ＡＢＣ！",
    "emoji 😀👍🏽 and 𠀀𠀁 (CJK Ext B) 🇫🇷 flags",
    "ctl\x01\x02\x1f chars\x7f del \x0b vt \x0c ff \x85 nel",
    "nul\x00byte and \x00\x00 more",
    "quote \" backslash \\ slash / tab\there",
    "\ufeffbom first",
    "日本語のテキスト、カタカナ、ひらがな。한국어 문장입니다.",
    "wordwithoutanyspacesthatgoesonandonandonandonforquiteawhileyes",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 4,
    LONG * 3,
    "长" * 300,
    "the end was great but the start was slow " * 12,
]


def input_bytes() -> bytes:
    """TEXTS, invalid UTF-8 (lone surrogates ED A0 80, overlong, truncated, stray continuation bytes) and CR / CRLF
    line ends."""
    bad = [*BAD_UTF8, b"\xed\xa0\x80\xed\xbf\xbf pair of surrogates", b"Paris \xff\xfe London \xe4\xb8",
           b"\xf0\x9f\x98\x80\xf0\x9f\x98 half an emoji"]
    return "\n".join(TEXTS).encode() + b"\n" + b"\n".join(bad) + b"\r\ncr line\rlast"


@pytest.fixture(scope="module")
def token_bundles(tiny_pretrained, tmp_path_factory):
    """{name: (checkpoint, bundle)}: a BERT tagger (overlap 4), and a GPT one whose overlap (100) is capped at half
    a window."""
    root = tmp_path_factory.mktemp("token_bundles")
    out = {}
    for name, arch, overlap, seed in (("bert", "bert", 4, 0), ("gpt", "gpt", 100, 1)):
        ckpt = make_token_classifier(tiny_pretrained, root / name, LABELS, max_len=16, overlap=overlap, arch=arch,
                                     seed=seed)
        out[name] = (ckpt, export_bundle(ckpt, root / f"{name}_bundle"))
    return out


def run_lines(runner, bundle, data: bytes, *args: str) -> list[str]:  # noqa: F811
    """The runner's output lines. Split at "\\n" only: str.splitlines would also split inside a JSON string at
    U+0085, U+2028 or U+2029, which json.dumps(ensure_ascii=False) writes as they are."""
    r = run_runner(runner, bundle, data, *args, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    text = r.stdout.decode()
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1]


def run_records(runner, bundle, data: bytes, *args: str) -> list[dict]:  # noqa: F811
    return [json.loads(line) for line in run_lines(runner, bundle, data, *args)]


def python_rows(bundle, lines: list[str], echo: bool = False) -> list[dict]:
    """What `bmf predict` prints for `lines` with a token bundle: TokenPredictor's records as output rows."""
    records = TokenPredictor(bundle, device="cpu").predict(lines)
    return [output_row(t, {}, r, echo=echo) for t, r in zip(lines, records)]


def margins(predictor: TokenPredictor, lines: list[str]) -> float:
    """Smallest gap between the two largest logits of any word: the argmax cannot flip by float noise below it."""
    words = [[t[a:b] for a, b in split_words(t)] for t in lines]
    with torch.no_grad():
        z = torch.cat([x for x in predictor.word_logits(words) if x.numel()])
    top = z.topk(2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).min())


def test_bundle_json_and_check(runner, token_bundles):  # noqa: F811
    ckpt, bundle = token_bundles["bert"]
    info = read_bundle(bundle)
    assert info["task"] == "token" and info["labels"] == LABELS and info["problem_type"] == "token"
    assert info["token"]["overlap"] == 4 and info["token"]["scheme"] == "bio"
    assert info["token"]["words"] == "bmf-words-1" and info["token"]["boundary_id"] >= 0
    (desc,) = run_records(runner, bundle, b"", "--check")
    assert desc["task"] == "token" and desc["labels"] == LABELS and desc["problem_type"] == "token"
    assert desc["token"] == info["token"]
    assert list(desc) == ["bundle", "format", "task", "arch", "max_len", "vocab_size", "labels", "problem_type",
                          "token", "threads"]
    assert read_bundle(token_bundles["gpt"][1])["token"]["overlap"] == 100


@pytest.mark.parametrize("name", ["bert", "gpt"])
def test_runner_records_equal_python(runner, token_bundles, name):  # noqa: F811
    ckpt, bundle = token_bundles[name]
    data = input_bytes()
    lines = read_lines(data)
    assert len(lines) == len(TEXTS) + len(BAD_UTF8) + 5 and "\ufffd" in lines[len(TEXTS)]
    p = TokenPredictor(bundle, device="cpu")
    # no near tie: the runner's logits differ from Python's by float noise (~3e-7, other batch shapes), far below
    # the smallest gap between a word's two best tags, so equal tags are a fair demand
    assert margins(p, lines) > 1e-5
    want = python_rows(bundle, lines)
    entities = [e for row in want for e in row["entities"]]
    assert len(entities) > 50 and {e["type"] for e in entities} == {"PER", "LOC", "ORG"}  # the tags vary
    assert any(len(e["text"]) > 1 and " " in e["text"] for e in entities)  # multi-word entities
    for args in ((), ("--batch-size", "1"), ("--batch-size", "7", "--threads", "1")):
        out = run_lines(runner, bundle, data, *args)
        assert [json.loads(line) for line in out] == want
        for line in out:  # the layout of Python's json.dumps(ensure_ascii=False), U+007F escaped
            assert line == json.dumps(json.loads(line), ensure_ascii=False).replace("\x7f", "\\u007f")
    assert want[3] == want[4] == want[5] == {"entities": []}  # empty and whitespace-only lines

    # --echo puts the text first (output_row's rule); --print-words / --print-ids / --print-logits add the word
    # spans, the model inputs and each word's logits after the record
    out = run_records(runner, bundle, data, "--echo", "--print-words", "--print-ids", "--print-logits", "--batch-size",
                   "4")
    assert [{k: o[k] for k in ("text", "entities")} for o in out] == python_rows(bundle, lines, echo=True)
    assert list(out[0]) == ["text", "entities", "words", "windows", "logits"]
    assert [o["words"] for o in out] == [[list(s) for s in split_words(t)] for t in lines]
    words = [[t[a:b] for a, b in split_words(t)] for t in lines]
    windows = encode_sentences(p.tokenizer, words, p.max_len, p.overlap)
    assert [w for o in out for w in o["windows"]] == windows.seqs
    assert max(len(o["windows"]) for o in out) > 10 and max(len(s) for s in windows.seqs) == 16
    for o, z in zip(out, p.word_logits(words)):
        assert len(o["logits"]) == len(z)
        if len(z):
            torch.testing.assert_close(torch.tensor(o["logits"]), z, atol=1e-4, rtol=0)


def test_runner_long_lines(runner, token_bundles, tmp_path):  # noqa: F811
    """A line past the 1 MiB cap (cut like Python's reader; 240k words), a word of 256 KiB (windows inside one
    word) and 100k CJK characters: tens of thousands of windows, answered in seconds (nothing quadratic), records
    equal to Python's. (The lines repeat a few contexts, so their tags have wide margins: see margins().)"""
    ckpt, bundle = token_bundles["bert"]
    big = (LONG * (1100 * 1024 // len(LONG.encode()) + 1)).encode()
    assert len(big) > 1 << 20
    data = b"short line\n" + big + b"\n" + b"x" * (1 << 18) + b"\n" + ("长" * 100_000).encode() + b"\nend\n"
    lines = read_lines(data)
    assert len(lines[1].encode()) <= 1 << 20 and len(lines[1]) > 500_000
    want = python_rows(bundle, lines)
    (tmp_path / "in.txt").write_bytes(data)
    got = run_records(runner, bundle, b"", "--input", str(tmp_path / "in.txt"), "--batch-size", "64", "--timing",
                      str(tmp_path / "t.jsonl"))
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"line {i}"
    assert len(got[1]["entities"]) > 10_000 and len(got[3]["entities"]) > 10_000
    timing = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert sum(t["batch"] for t in timing) > 30_000  # windows of the long lines, max_len 16


def fuzz_code_points(rng: random.Random, n: int) -> str:
    """n code points drawn around the word rule's tables: White_Space, the edges and insides of SINGLE_RANGES,
    ASCII, and anything else (no surrogates; no \\n / \\r, which end lines)."""
    edges = [c for lo, hi in SINGLE_RANGES for c in (lo - 1, lo, lo + 1, hi - 1, hi, hi + 1)]
    edges += [c + d for c in WHITESPACE for d in (-1, 0, 1)] + [0x1C, 0x1D, 0x1E, 0x1F, 0x200B, 0x00, 0x7F, 0xFFFD]
    out = []
    while len(out) < n:
        pick = rng.random()
        if pick < 0.25:
            c = rng.choice(sorted(WHITESPACE))
        elif pick < 0.5:
            c = rng.choice(edges)
        elif pick < 0.65:
            lo, hi = rng.choice(SINGLE_RANGES)
            c = rng.randint(lo, hi)
        elif pick < 0.85:
            c = rng.randint(0x21, 0x7E)
        else:
            c = rng.randint(0, 0x10FFFF)
        if 0xD800 <= c <= 0xDFFF or c in (0x0A, 0x0D):
            continue
        out.append(chr(c))
    return "".join(out)


def test_split_words_fuzz(runner, token_bundles):  # noqa: F811
    """The runner's words (--print-words) are split_words' spans on 1,500 random lines around the code-point
    tables, and its records still equal Python's."""
    ckpt, bundle = token_bundles["bert"]
    rng = random.Random(7)
    texts = [fuzz_code_points(rng, rng.randint(0, 60)) for _ in range(1500)]
    data = "\n".join(texts).encode() + b"\n"
    lines = read_lines(data)
    assert lines == texts
    out = run_records(runner, bundle, data, "--print-words", "--batch-size", "64")
    assert [o["words"] for o in out] == [[list(s) for s in split_words(t)] for t in lines]
    assert sum(len(o["words"]) for o in out) > 20_000
    assert margins(TokenPredictor(bundle, device="cpu"), lines) > 1e-5  # see test_runner_records_equal_python
    assert [{"entities": o["entities"]} for o in out] == python_rows(bundle, lines)


@pytest.mark.parametrize("edit,match", [
    ({"token": {"overlap": -1}}, "token.overlap"),
    ({"token": {"overlap": "4"}}, "token.overlap"),
    ({"token": {"overlap": True}}, "token.overlap"),
    ({"token": {"overlap": 4.0}}, "token.overlap"),
    ({"token": {"words": "bmf-words-2"}}, "field 'token.words' is 'bmf-words-2', expected 'bmf-words-1'"),
    ({"token": {"words": None}}, "token.words"),
    ({"token": {"scheme": "bioes"}}, "field 'token.scheme' is 'bioes', expected 'bio'"),
    ({"token": {"boundary_id": 1500}}, "token.boundary_id"),
    ({"token": {"boundary_id": -2}}, "token.boundary_id"),
    ({"token": None}, "missing field 'token'"),
    ({"token": []}, "field 'token'"),
    ({"labels": ["O", "X-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]}, "labels[1] 'X-PER' is not a BIO tag"),
    ({"labels": ["O", "B-", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]}, "labels[1] 'B-' is not a BIO tag"),
    ({"labels": ["O", "B- PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]}, "labels[1] 'B- PER'"),
    ({"labels": ["o", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]}, "labels[0] 'o'"),
    ({"labels": []}, "'labels' needs at least one tag"),
    ({"labels": ["O", "B-PER", "I-PER"]}, "does not belong to this bundle"),
    ({"problem_type": "single_label"}, "problem_type 'single_label'"),
    ({"max_len": 2}, "max_len 2"),
    ({"task": "tagging"}, "task 'tagging'"),
])
def test_runner_refuses_bad_token_bundles(runner, token_bundles, tmp_path, edit, match):  # noqa: F811
    b = tmp_path / "b"
    shutil.copytree(token_bundles["bert"][1], b)
    info = json.loads((b / "bundle.json").read_text())
    for key, value in edit.items():  # a dict edits bundle.json's "token"; None removes the field
        if key == "token" and isinstance(value, dict):
            info["token"] = {k: v for k, v in {**info["token"], **value}.items() if v is not None}
        elif value is None:
            info.pop(key)
        else:
            info[key] = value
    (b / "bundle.json").write_text(json.dumps(info))  # expect_failure re-seals the manifest
    expect_failure(runner, b, match=match)


def test_window_rule_matches_python_on_a_sweep(runner, token_bundles):  # noqa: F811
    """Lines of growing length around the window width (max_len 16: 14 sub-tokens), long words that span windows,
    mixed with one-sub-token words: the runner's windows (--print-ids) are encode_sentences' for every length."""
    ckpt, bundle = token_bundles["gpt"]
    p = TokenPredictor(bundle, device="cpu")
    width = window_width(p.tokenizer, p.max_len)
    assert width == 14 and effective_overlap(width, p.overlap) == 7
    rng = random.Random(3)
    vocab = ["a", "of", "是", "international", "qwertyuiopasdfgh", ",", "Zürich", "😀", "supercalifragilistic"]
    texts = [" ".join(rng.choice(vocab) for _ in range(n)) for n in range(1, 80)]
    out = run_records(runner, bundle, ("\n".join(texts) + "\n").encode(), "--print-ids", "--batch-size", "3")
    words = [[t[a:b] for a, b in split_words(t)] for t in texts]
    windows = encode_sentences(p.tokenizer, words, p.max_len, p.overlap)
    assert [w for o in out for w in o["windows"]] == windows.seqs
    assert [{"entities": o["entities"]} for o in out] == python_rows(bundle, texts)
