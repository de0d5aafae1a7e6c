"""Helpers for the HF interop tests: small random HF models saved locally (never the hub), a WordPiece
tokenizer.json built with the ``tokenizers`` library, and our model loaded back from an imported checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import torch

# transformers imports triton: the interpreter switch must be set first (as tests/ops/conftest.py does), or the
# Triton tests of other folders collected after this one see a triton imported in compiled mode
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

transformers = pytest.importorskip("transformers", reason="transformers is the test-only oracle of the HF interop")
tokenizers = pytest.importorskip("tokenizers", reason="tokenizers builds the test tokenizer.json")

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_wordpiece(dir: Path, vocab_size: int) -> Path:
    """A WordPiece tokenizer.json of exactly ``vocab_size`` ids (specials + letters + ## pieces + filler words)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    words = SPECIALS + list("abcdefghijklmnopqrstuvwxyz") + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    words += [f"w{i}" for i in range(max(0, vocab_size - len(words)))]
    vocab = {w: i for i, w in enumerate(words[:vocab_size])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    path = dir / "tokenizer.json"
    tok.save(str(path))
    return path


def save_hf(model, dir: Path, bin: bool = False, **kw) -> Path:
    """``model.save_pretrained(dir, **kw)`` plus a tokenizer.json that fits its vocabulary. ``bin``: the weights as
    ``pytorch_model.bin`` instead (``torch.save`` of the state dict, the legacy format transformers 5 no longer
    writes itself)."""
    dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(dir), **kw)
    if bin:
        (dir / "model.safetensors").unlink()
        torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, dir / "pytorch_model.bin")
    write_wordpiece(dir, min(model.config.vocab_size, 60))
    return dir


def batch(vocab: int, b: int = 3, s: int = 11, pad_id: int = 0, seed: int = 0, low: int = 5):
    """Random ids (B, S) avoiding the pad id, right-padded rows of lengths S, S-3, 4 (mask True = real)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(low, vocab, (b, s), generator=g)
    ids[ids == pad_id] = low
    lengths = [s, s - 3, 4][:b]
    mask = torch.zeros(b, s, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, :n] = True
    ids[~mask] = pad_id
    return ids, mask


def import_and_load(src: Path, out: Path, kind: str = "pretrain"):
    """``import_hf(src, out)`` (tokenizer stored as it is) and the imported model in eval mode."""
    from bigmodel_fast.checkpoint import load_model
    from bigmodel_fast.hf import import_hf

    summary = import_hf(src, out, use_hf_tokenizer=False)
    model, cfg, meta = load_model(out, kind)
    return model.eval(), cfg, summary


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()
