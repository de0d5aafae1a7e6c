"""Tiny random classifier checkpoints of every problem type and long-text mode, built directly (no training), for
the predict / evaluate / export / runner tests of multi-label, regression and long documents."""

from __future__ import annotations

from pathlib import Path

TINY = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}

# short and long texts: with max_len 16 (14 text tokens) most of these need several windows
TEXTS = ["good", "", "bad movie " * 3, "a long review that goes on and on about the plot " * 6,
         "中文 文本 很长 " * 20, "the end was great but the start was slow " * 4]


def make_classifier(tokenizer_source: Path, out: Path, problem_type: str, labels: list[str], *,
                    max_len: int = 16, long_text: dict | None = None, thresholds: list[float] | None = None,
                    seed: int = 0) -> Path:
    """A randomly initialised BERT classifier checkpoint with ``tokenizer_source``'s tokenizer (a checkpoint dir)
    and meta ``max_len`` / ``long_text`` / ``thresholds``."""
    import torch

    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.data.tokenizer_base import load_tokenizer
    from bigmodel_fast.models import build_classifier
    from bigmodel_fast.models.config import ModelConfig

    tok_file = ckpt.tokenizer_path(tokenizer_source)
    tok = load_tokenizer(tok_file)
    cfg = ModelConfig.from_dict({"arch": "bert", "vocab_size": tok.vocab_size, **TINY, "max_position": 64,
                                 "num_labels": len(labels), "label_names": labels, "problem_type": problem_type})
    torch.manual_seed(seed)
    model = build_classifier(cfg).eval()
    with torch.no_grad():  # a head that separates texts more than the init's tiny weights do
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(4.0)
    meta = {"kind": "classifier", "max_len": max_len, "long_text": long_text or {"mode": "truncate", "stride": 0}}
    if thresholds is not None:
        meta["thresholds"] = thresholds
    return ckpt.save_checkpoint(out, model, cfg.to_dict(), tok_file, meta)


def make_token_classifier(tokenizer_source: Path, out: Path, labels: list[str], *, max_len: int = 16,
                          overlap: int = 4, arch: str = "bert", seed: int = 0, scale: float = 4.0) -> Path:
    """A randomly initialised token-classifier checkpoint (``arch`` backbone, tags ``labels`` such as ``O``,
    ``B-PER``, ``I-PER``) with ``tokenizer_source``'s tokenizer (a checkpoint dir) and meta ``max_len`` /
    ``token.overlap``. Every matrix is scaled by ``scale`` so that the tags vary from token to token (a fresh init
    predicts nearly the same tag everywhere) and the argmax has wide margins."""
    import torch

    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.data.tokenizer_base import load_tokenizer
    from bigmodel_fast.models import registry
    from bigmodel_fast.models.config import ModelConfig

    tok_file = ckpt.tokenizer_path(tokenizer_source)
    tok = load_tokenizer(tok_file)
    cfg = ModelConfig.from_dict({"arch": arch, "vocab_size": tok.vocab_size, **TINY, "max_position": 64,
                                 "num_labels": len(labels), "label_names": labels})
    torch.manual_seed(seed)
    model = registry.build_model(cfg, "token_classify").eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(scale)
    meta = {"kind": "token_classifier", "max_len": max_len, "token": {"overlap": overlap}}
    return ckpt.save_checkpoint(out, model, cfg.to_dict(), tok_file, meta)
