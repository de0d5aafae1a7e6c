"""Deployment bundles: everything a runner needs to go from raw text to a label, in one directory::

    model.pt        TorchScript classifier: forward(input_ids (B, S) int64, attention_mask (B, S) bool) -> logits (B, C)
    tokenizer.model SentencePiece model
    bundle.json     format, labels, max_len, special-token ids, how inputs are built

Exported models always run the reference (non-Triton) ops.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import __version__
from ..jsonio import read_json, write_json

BUNDLE_JSON, BUNDLE_MODEL, BUNDLE_TOKENIZER = "bundle.json", "model.pt", "tokenizer.model"
BUNDLE_VERSION = 1


def export_bundle(checkpoint: str | Path, out: str | Path, *, format: str = "torchscript") -> Path:
    """Export a fine-tuned classifier checkpoint to a bundle directory; checks parity with the eager model."""
    from ..data.tokenizer import Tokenizer
    from ..train import checkpoint as ckpt
    from .torchscript import export_torchscript

    if format != "torchscript":
        raise ValueError(f"export format {format!r} is not supported yet; expected 'torchscript'")
    model, cfg, meta = ckpt.load_model(checkpoint, "classifier")  # only fine-tuned classifiers export for now
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    export_torchscript(model, out / BUNDLE_MODEL)
    shutil.copyfile(Path(checkpoint) / ckpt.TOKENIZER, out / BUNDLE_TOKENIZER)
    tok = Tokenizer(out / BUNDLE_TOKENIZER)
    write_json(out / BUNDLE_JSON, {
        "bundle_version": BUNDLE_VERSION, "format": format, "bmf_version": __version__, "arch": cfg.arch,
        "labels": list(cfg.label_names), "max_len": int(meta.get("max_len", 128)),
        "input": "[CLS] ids[:max_len-2] [SEP], right-padded with pad_id; attention_mask True on real tokens",
        "special_ids": {"pad": tok.pad_id, "unk": tok.unk_id, "cls": tok.cls_id, "sep": tok.sep_id},
    })
    return out


def read_bundle(path: str | Path) -> dict:
    """``bundle.json`` of a bundle directory, checked for the files and fields a runner needs."""
    path = Path(path)
    info = read_json(path / BUNDLE_JSON, "bundle description (bundle.json, written by `bmf export`)")
    for key in ("bundle_version", "labels", "max_len", "special_ids"):
        if key not in info:
            raise ValueError(f"{path / BUNDLE_JSON}: missing field {key!r}; re-export with `bmf export`")
    if info["bundle_version"] != BUNDLE_VERSION:
        raise ValueError(f"{path / BUNDLE_JSON}: bundle_version {info['bundle_version']} is not supported "
                         f"(expected {BUNDLE_VERSION}); re-export with this bmf version")
    for name in (BUNDLE_MODEL, BUNDLE_TOKENIZER):
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path}: missing {name}; expected a bundle written by `bmf export`")
    return info
