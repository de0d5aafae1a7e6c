"""Bad ``bmf import-hf`` input: each a one-line error naming the file or field, exit code 2, nothing at --out."""

from __future__ import annotations

import json

import pytest
import torch

from bigmodel_fast.cli import main
from tests.hf.conftest import save_hf

T = pytest.importorskip("transformers")

BERT = dict(vocab_size=97, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)


@pytest.fixture
def src(tmp_path):
    torch.manual_seed(0)
    return save_hf(T.BertForMaskedLM(T.BertConfig(**BERT)), tmp_path / "hf")


def _fails(tmp_path, capsys, src, match):
    out = tmp_path / "ckpt"
    capsys.readouterr()  # drop transformers' save_pretrained progress output
    assert main(["import-hf", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err
    assert not out.exists() and not list(tmp_path.glob("ckpt.*"))


def _edit_config(src, **changes):
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(changes)
    (src / "config.json").write_text(json.dumps(cfg))


def test_not_a_directory(tmp_path, capsys):
    _fails(tmp_path, capsys, "bert-base-uncased", "download the model first")


def test_missing_weights(tmp_path, capsys, src):
    (src / "model.safetensors").unlink()
    _fails(tmp_path, capsys, src, "no weights file")


def test_truncated_safetensors(tmp_path, capsys, src):
    f = src / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-100])
    _fails(tmp_path, capsys, src, "model.safetensors: not a readable safetensors file")


def test_shape_mismatch(tmp_path, capsys, src):
    _edit_config(src, intermediate_size=40)
    _fails(tmp_path, capsys, src, "intermediate.dense.weight' has shape [32, 16] but")


@pytest.mark.parametrize("field,value,match", [
    ("position_embedding_type", "relative_key", "'position_embedding_type' = 'relative_key'"),
    ("hidden_act", "swish", "'hidden_act' = 'swish'"),
    ("is_decoder", True, "'is_decoder' = True"),
    ("add_cross_attention", True, "'add_cross_attention' = True"),
    ("model_type", "t5", "'model_type' = 't5'"),
    ("architectures", ["BertForTokenClassification"], "BertForTokenClassification"),
])
def test_inexpressible_fields(tmp_path, capsys, src, field, value, match):
    _edit_config(src, **{field: value})
    _fails(tmp_path, capsys, src, match)


@pytest.mark.parametrize("field", ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"])
def test_gpt2_attention_variants(tmp_path, capsys, field):
    torch.manual_seed(0)
    src = save_hf(T.GPT2LMHeadModel(T.GPT2Config(vocab_size=97, n_embd=16, n_layer=1, n_head=2, n_positions=16,
                                                 **{field: True})), tmp_path / "hf")
    _fails(tmp_path, capsys, src, f"'{field}' = True")


def test_tokenizer_larger_than_vocab(tmp_path, capsys, src):
    from bigmodel_fast.hf import import_hf
    from tests.hf.conftest import write_wordpiece

    write_wordpiece(src, 120)
    with pytest.raises(ValueError, match="tokenizer.json: tokenizer has 120 ids but .*vocab_size is 97"):
        import_hf(src, tmp_path / "ckpt", use_hf_tokenizer=False)
    assert not (tmp_path / "ckpt").exists()
