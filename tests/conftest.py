"""Shared fixtures: a tiny prepared corpus and a tiny pretrained checkpoint, built once per session."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pytest


def head_jsonl(src: Path, dst: Path, n: int) -> Path:
    with gzip.open(src, "rt", encoding="utf-8") as f, gzip.open(dst, "wt", encoding="utf-8") as g:
        g.writelines(itertools.islice(f, n))
    return dst


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """`bmf prepare` output over 80 English + 80 Chinese sample documents, vocabulary 400."""
    from bigmodel_fast.data import sample_files as samples
    from bigmodel_fast.data.prepare import PrepareConfig, prepare

    root = tmp_path_factory.mktemp("tiny_data")
    inputs = [head_jsonl(p, root / p.name, 80) for p in samples.corpus_paths()]
    prepare(PrepareConfig(inputs=[str(p) for p in inputs], out=str(root / "data"), vocab_size=1500,
                          valid_fraction=0.1, quality=False, progress=False))
    return root / "data"


@pytest.fixture(scope="session")
def sentiment_small(tmp_path_factory) -> dict[str, Path]:
    """The first 120 rows of each sentiment split."""
    from bigmodel_fast.data import sample_files as samples

    root = tmp_path_factory.mktemp("sentiment")
    return {k: head_jsonl(p, root / p.name, 120) for k, p in samples.sentiment_paths().items()}


TINY_MODEL = {"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64}


@pytest.fixture(scope="session")
def tiny_pretrained(tiny_data, tmp_path_factory) -> Path:
    """A 10-step BERT pretraining checkpoint on `tiny_data`."""
    from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("pretrain")
    summary = pretrain(PretrainConfig(data=str(tiny_data), out=str(out), model_overrides=TINY_MODEL, seq_len=32,
                                      batch_size=8, max_steps=10, eval_every=10, eval_batches=2, device="cpu",
                                      progress=False))
    return Path(summary["checkpoint"])


@pytest.fixture(scope="session")
def tiny_classifier(tiny_pretrained, sentiment_small, tmp_path_factory) -> Path:
    """A fine-tuned (1 epoch) classifier checkpoint on the small sentiment splits."""
    from bigmodel_fast.train.finetune import FinetuneConfig, finetune

    out = tmp_path_factory.mktemp("finetune")
    summary = finetune(FinetuneConfig(checkpoint=str(tiny_pretrained), train=str(sentiment_small["train"]),
                                      valid=str(sentiment_small["valid"]), out=str(out), max_len=32, epochs=1,
                                      device="cpu", progress=False))
    return Path(summary["checkpoint"])


@pytest.fixture(scope="session")
def ner_files(tmp_path_factory) -> dict[str, Path]:
    """Generated NER data: 300 training sentences (JSONL), 60 validation and 60 test sentences (CoNLL)."""
    from tests.train.ner_data import sentences, write_conll, write_jsonl

    root = tmp_path_factory.mktemp("ner")
    return {"train": write_jsonl(root / "train.jsonl", sentences(300, 0)),
            "valid": write_conll(root / "valid.conll", sentences(60, 1)),
            "test": write_conll(root / "test.conll", sentences(60, 2))}


@pytest.fixture(scope="session")
def tiny_token_classifier(tiny_pretrained, ner_files, tmp_path_factory) -> Path:
    """A BERT token classifier fine-tuned (4 epochs, max_len 12: long sentences in windows) on `ner_files`."""
    from bigmodel_fast.train.finetune import FinetuneConfig, finetune

    out = tmp_path_factory.mktemp("token_finetune")
    summary = finetune(FinetuneConfig(checkpoint=str(tiny_pretrained), train=str(ner_files["train"]),
                                      valid=str(ner_files["valid"]), out=str(out), task="token", max_len=12,
                                      window_overlap=4, epochs=4, device="cpu", progress=False))
    return Path(summary["checkpoint"])
