"""Imported HF sequence classifiers end to end, through the command line: `bmf import-hf` (the real tokenizer path,
``HFTokenizer.from_hf_dir``) -> `bmf predict` on the checkpoint -> `bmf export` (TorchScript) -> `bmf_runner` on
the bundle. The ids are the same everywhere (runner ``--tokenize`` / ``--print-ids`` vs ``tokenizers`` and
``encode_for_classifier``), the probabilities of the runner equal bmf predict's within 1e-5 and transformers'
softmax logits within 1e-4. Also: a tokenizer.json larger than config.json's vocab_size is refused by the CLI, and
``HFTokenizer`` ids equal ``tokenizers``' on more than 10,000 lines of the shipped corpora.

Tokenizers are trained here on the shipped corpora (WordPiece uncased for BERT, byte-level BPE with RoBERTa's
specials); models are small random transformers models saved locally (never the hub).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bigmodel_fast.cli import main
from bigmodel_fast.data.classification import encode_for_classifier
from bigmodel_fast.data.hf_tokenizer import HFTokenizer
from bigmodel_fast.export.bundle import read_bundle
from bigmodel_fast.export.runner import read_lines
from tests.export.test_deploy import run_json, runner  # noqa: F401 -- the session-built runner fixture
from tests.export.test_runner_tokenizers import HOSTILE, corpus_texts, train_bpe, train_wordpiece
from tests.hf.conftest import save_hf, write_wordpiece

T = pytest.importorskip("transformers")
from tokenizers import Tokenizer  # noqa: E402

LABELS = ["negative", "neutral", "positive"]
MAX_POS = 40  # positions of the small models: the classifier's max_len must follow it


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Corpus lines (English and Chinese), hostile lines and long lines (cut to max_len), as the runner reads
    them (``read_lines`` of the bytes given to it)."""
    corpus = corpus_texts()
    picked = corpus[:60] + corpus[-60:] + [t for t in HOSTILE if "\n" not in t and "\r" not in t]
    picked += [" ".join(corpus[100:140]), "hello world"]
    return read_lines(("\n".join(picked) + "\n").encode("utf-8"))


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("e2e_tokenizers")
    return {"wordpiece": train_wordpiece(tmp, lowercase=True, strip_accents=None),
            "bpe": train_bpe(tmp, add_prefix_space=True, specials=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])}


def _labels_kw() -> dict:
    return dict(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)})


def bert_dir(tokenizer_json: Path, out: Path) -> Path:
    """A BertForSequenceClassification directory: config.json, model.safetensors, tokenizer.json, vocab.txt."""
    tok = Tokenizer.from_file(str(tokenizer_json))
    torch.manual_seed(0)
    cfg = T.BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=48, max_position_embeddings=MAX_POS, **_labels_kw())
    model = T.BertForSequenceClassification(cfg).eval()
    model.save_pretrained(str(out))
    tok.save(str(out / "tokenizer.json"))
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(len(vocab)))
    (out / "vocab.txt").write_text("".join(f"{p}\n" for p, _ in vocab), encoding="utf-8")
    return out


def roberta_dir(tokenizer_json: Path, out: Path) -> Path:
    """A RobertaForSequenceClassification directory (positions start at pad + 1, one token type)."""
    tok = Tokenizer.from_file(str(tokenizer_json))
    ids = {n: tok.token_to_id(n) for n in ("<s>", "<pad>", "</s>")}
    torch.manual_seed(1)
    cfg = T.RobertaConfig(vocab_size=tok.get_vocab_size() + 3, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=48, max_position_embeddings=MAX_POS + 2,
                          type_vocab_size=1, bos_token_id=ids["<s>"], pad_token_id=ids["<pad>"],
                          eos_token_id=ids["</s>"], **_labels_kw())
    model = T.RobertaForSequenceClassification(cfg).eval()
    model.save_pretrained(str(out))
    tok.save(str(out / "tokenizer.json"))
    return out


def transformers_proba(src: Path, seqs: list[list[int]], pad_id: int) -> torch.Tensor:
    """Softmax of transformers' logits (N, C) for the id sequences ``seqs`` (right-padded with ``pad_id``)."""
    model = T.AutoModelForSequenceClassification.from_pretrained(str(src)).eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(seqs), 16):
            group = seqs[i:i + 16]
            n = max(map(len, group))
            ids = torch.tensor([s + [pad_id] * (n - len(s)) for s in group])
            mask = torch.tensor([[1] * len(s) + [0] * (n - len(s)) for s in group])
            out.append(model(input_ids=ids, attention_mask=mask).logits.float().softmax(-1))
    return torch.cat(out)


def check_end_to_end(src: Path, tmp: Path, texts: list[str], runner_bin: Path, capsys, cls: str, sep: str,
                     pad: str) -> None:
    """import-hf, predict, export and the runner on ``src``; ``cls`` / ``sep`` / ``pad``: its special tokens."""
    ckpt, bundle, inp = tmp / "ckpt", tmp / "bundle", tmp / "texts.txt"
    data = ("\n".join(texts) + "\n").encode("utf-8")
    inp.write_bytes(data)
    capsys.readouterr()  # drop transformers' save_pretrained output
    assert main(["import-hf", str(src), "--out", str(ckpt)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "classifier" and summary["fresh_heads"] == [], summary

    # the ids: HFTokenizer of the checkpoint == tokenizers on the source file, [cls] ids[:max_len-2] [sep]
    tok = HFTokenizer(ckpt / "tokenizer.json")
    ref = Tokenizer.from_file(str(src / "tokenizer.json"))
    ref.no_truncation()
    ref.no_padding()
    plain = [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
    meta = json.loads((ckpt / "meta.json").read_text(encoding="utf-8"))
    max_len = int(meta.get("max_len", 128))
    assert max_len <= MAX_POS, f"max_len {max_len} exceeds the model's {MAX_POS} positions"
    seqs = encode_for_classifier(tok, texts, max_len)
    c, s = ref.token_to_id(cls), ref.token_to_id(sep)
    assert seqs == [[c, *p[:max_len - 2], s] for p in plain]
    assert max(map(len, plain)) > max_len  # some lines were really cut

    # bmf predict on the checkpoint == transformers
    assert main(["predict", "--model", str(ckpt), "--input", str(inp), "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.split("\n") if line]  # texts hold U+0085
    assert len(rows) == len(texts)
    predicted = torch.tensor([[r["probabilities"][n] for n in LABELS] for r in rows])
    want = transformers_proba(src, seqs, ref.token_to_id(pad))
    torch.testing.assert_close(predicted, want, atol=1e-4, rtol=0)

    # bmf export (TorchScript) and the runner on the bundle
    assert main(["export", "--checkpoint", str(ckpt), "--out", str(bundle)]) == 0
    info = read_bundle(bundle)
    assert info["labels"] == LABELS and info["max_len"] == max_len
    assert info["vocab_size"] == json.loads((src / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    assert [o["ids"] for o in run_json(runner_bin, bundle, data, "--tokenize")] == plain
    out = run_json(runner_bin, bundle, data, "--print-ids", "--batch-size", "8")
    assert [o["ids"] for o in out] == seqs
    got = torch.tensor([[o["probabilities"][n] for n in LABELS] for o in out])
    torch.testing.assert_close(got, predicted, atol=1e-5, rtol=0)  # bmf predict rounds to 6 decimals
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    assert [o["label"] for o in out] == [r["label"] for r in rows]


def test_bert_classifier_import_predict_export_runner(runner, tokenizer_files, texts, tmp_path, capsys):  # noqa: F811
    src = bert_dir(tokenizer_files["wordpiece"], tmp_path / "hf")
    check_end_to_end(src, tmp_path, texts, runner, capsys, "[CLS]", "[SEP]", "[PAD]")


def test_roberta_classifier_import_predict_export_runner(runner, tokenizer_files, texts, tmp_path,  # noqa: F811
                                                         capsys):
    src = roberta_dir(tokenizer_files["bpe"], tmp_path / "hf")
    check_end_to_end(src, tmp_path, texts, runner, capsys, "<s>", "</s>", "<pad>")


@pytest.mark.parametrize("file", ["tokenizer.json", "vocab.txt"])
def test_import_hf_cli_tokenizer_larger_than_vocab(tmp_path, capsys, file):
    """Through cli.main: exit 2, one line naming the source tokenizer file (not a staging copy), nothing at --out."""
    torch.manual_seed(0)
    src = save_hf(T.BertForMaskedLM(T.BertConfig(vocab_size=97, hidden_size=16, num_hidden_layers=1,
                                                 num_attention_heads=2, intermediate_size=32)), tmp_path / "hf")
    write_wordpiece(src, 120)
    if file == "vocab.txt":  # the WordPiece vocabulary file alone
        vocab = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
        (src / "tokenizer.json").unlink()
        (src / "vocab.txt").write_text("".join(f"{p}\n" for p in sorted(vocab, key=vocab.get)), encoding="utf-8")
    out = tmp_path / "ckpt"
    capsys.readouterr()
    assert main(["import-hf", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"{src / file}: tokenizer has 120 ids" in err and "vocab_size is 97" in err, err
    assert not out.exists() and not list(tmp_path.glob("ckpt*"))


@pytest.mark.parametrize("kind", ["wordpiece", "bpe"])
def test_hf_tokenizer_parity_on_corpus(tokenizer_files, kind):
    """HFTokenizer (encode and encode_batch) == tokenizers on every non-empty line of both shipped corpora."""
    lines = corpus_texts()
    assert len(lines) >= 10_000
    ref = Tokenizer.from_file(str(tokenizer_files[kind]))
    want = [e.ids for e in ref.encode_batch(lines, add_special_tokens=False)]
    tok = HFTokenizer(tokenizer_files[kind])
    got = tok.encode_batch(lines)
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w]
    assert not bad, f"{len(bad)} of {len(lines)} lines differ, first {lines[bad[0]][:80]!r}"
    assert sum(map(len, want)) > 100_000
    assert [tok.encode(t) for t in lines[::97]] == want[::97]


def gpt2_dir(tmp_path: Path, seed: int):
    """``(dir, tokenizer, model)``: a small random GPT2LMHeadModel saved with a byte-level BPE tokenizer.json whose
    only special token is ``<|endoftext|>`` (bos = eos, as GPT-2)."""
    tok = Tokenizer.from_file(str(train_bpe(tmp_path, add_prefix_space=False, specials=["<|endoftext|>"])))
    eos = tok.token_to_id("<|endoftext|>")
    torch.manual_seed(seed)
    cfg = T.GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=32, n_layer=2, n_head=4, n_positions=MAX_POS,
                       bos_token_id=eos, eos_token_id=eos)
    hf = T.GPT2LMHeadModel(cfg).eval()
    src = tmp_path / "hf"
    hf.save_pretrained(str(src))
    tok.save(str(src / "tokenizer.json"))
    return src, tok, hf


def test_gpt2_classifier_empty_lines_predict_and_runner(runner, texts, tmp_path, capsys):  # noqa: F811
    """GPT-2 has no cls/sep: a classifier input is the bare ids, and an empty line (no ids) stands as [eos]
    (``<|endoftext|>``) in bmf predict and in the runner alike (an imported GPT-2, fine-tuned for 2 steps)."""
    src, tok, _ = gpt2_dir(tmp_path, seed=2)
    eos = tok.token_to_id("<|endoftext|>")
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": t, "label": LABELS[i % 3]}) + "\n" for i, t in enumerate(texts[:24])),
                     encoding="utf-8")
    lines = ["", *texts[:20], "", "   ", "hello world", ""]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    lines = read_lines(data)
    (tmp_path / "in.txt").write_bytes(data)
    capsys.readouterr()
    assert main(["import-hf", str(src), "--out", str(tmp_path / "ckpt")]) == 0
    assert main(["finetune", "--checkpoint", str(tmp_path / "ckpt"), "--train", str(train), "--out",
                 str(tmp_path / "ft"), "--max-len", "32", "--max-steps", "2", "--valid-fraction", "0",
                 "--no-progress"]) == 0
    capsys.readouterr()
    clf = tmp_path / "ft" / "checkpoint"
    seqs = encode_for_classifier(HFTokenizer(clf / "tokenizer.json"), lines, 32)
    assert seqs[0] == [eos] and seqs[-1] == [eos] and all(seqs)
    assert main(["predict", "--model", str(clf), "--input", str(tmp_path / "in.txt"), "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.split("\n") if line]
    assert len(rows) == len(lines)
    predicted = torch.tensor([[r["probabilities"][n] for n in LABELS] for r in rows])
    assert main(["export", "--checkpoint", str(clf), "--out", str(tmp_path / "bundle")]) == 0
    out = run_json(runner, tmp_path / "bundle", data, "--print-ids", "--batch-size", "8")
    assert [o["ids"] for o in out] == seqs
    got = torch.tensor([[o["probabilities"][n] for n in LABELS] for o in out])
    torch.testing.assert_close(got, predicted, atol=1e-5, rtol=0)


def test_imported_gpt2_lm_bundle_generates_like_transformers(runner, tmp_path, capsys):  # noqa: F811
    """An imported GPT-2 LM exported as a bundle: `bmf_runner` decodes through the bundle's tokenizer.json (byte-level
    BPE) and its greedy continuation is token for token `bmf generate`'s and `transformers.generate`'s."""
    src, tok, hf = gpt2_dir(tmp_path, seed=3)
    eos = tok.token_to_id("<|endoftext|>")
    prompts = ["The Python", "hello wörld 你好 🙂", "def f(x):"]
    capsys.readouterr()
    assert main(["import-hf", str(src), "--out", str(tmp_path / "ckpt")]) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "lm")]) == 0
    capsys.readouterr()
    data = ("\n".join(prompts) + "\n").encode("utf-8")
    ran = run_json(runner, tmp_path / "lm", data, "--max-new-tokens", "12", "--print-ids")
    argv = ["generate", "--model", str(tmp_path / "lm"), *sum((["--prompt", p] for p in prompts), []),
            "--max-new-tokens", "12", "--print-ids"]
    assert main(argv) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == ran
    for prompt, row in zip(prompts, ran):
        ids = tok.encode(prompt, add_special_tokens=False).ids
        assert row["prompt_ids"] == ids
        with torch.no_grad():
            want = hf.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False, pad_token_id=eos)[0, len(ids):]
        got = row["generated_ids"]
        assert got and (len(got) == 12 or got[-1] == eos)  # full length unless it stopped at <|endoftext|>
        assert got == want.tolist()[: len(got)]
