"""Generated, learnable fine-tuning data and an untrained tiny BERT checkpoint for the fine-tuning tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

KEYWORDS = {"sport": ["football", "match", "goal"], "money": ["bank", "price", "market"],
            "food": ["bread", "soup", "cheese"], "weather": ["rain", "snow", "wind"]}
FILLER = "the a of and to in is it that was for on with as at by this from they we".split()


def keyword_rows(n: int, seed: int) -> list[dict]:
    """``n`` rows of 4 balanced classes, each decided by one of its keywords among filler words."""
    rng = np.random.default_rng(seed)
    names = sorted(KEYWORDS)
    rows = []
    for i in range(n):
        label = names[i % len(names)]
        words = list(rng.choice(FILLER, 6))
        words.insert(int(rng.integers(0, 7)), str(rng.choice(KEYWORDS[label])))
        rows.append({"text": " ".join(words), "label": label})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def untrained_tiny_bert(source_ckpt: Path, out: Path) -> Path:
    """A pretraining checkpoint of an untrained ``tiny``-preset BERT with the tokenizer of ``source_ckpt``."""
    import torch

    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.models import build_pretraining_model
    from bigmodel_fast.models.config import ModelConfig
    from bigmodel_fast.models.presets import load_preset

    src_cfg, _ = ckpt.read_meta(source_ckpt)
    cfg = ModelConfig.from_dict({**load_preset("tiny"), "arch": "bert", "vocab_size": src_cfg["vocab_size"],
                                 "pad_id": src_cfg["pad_id"]})
    tok_file = ckpt.tokenizer_path(source_ckpt)
    torch.manual_seed(0)
    if out.exists():
        shutil.rmtree(out)
    ckpt.save_checkpoint(out, build_pretraining_model(cfg), cfg.to_dict(), tok_file, {"kind": "pretrain", "step": 0})
    return out
