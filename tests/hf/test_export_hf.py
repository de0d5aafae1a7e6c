"""``export-hf``: HF -> bmf -> HF gives identical tensors; transformers loads the output and matches our logits to
1e-5, also for bmf-pretrained (never imported) BERT and GPT checkpoints."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from bigmodel_fast.checkpoint import load_model
from bigmodel_fast.cli import main
from bigmodel_fast.hf import export_hf
from bigmodel_fast.ops.backend import use_backends
from tests.hf.conftest import batch, import_and_load, max_err, save_hf

T = pytest.importorskip("transformers")

BERT = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)


def _models():
    torch.manual_seed(0)
    yield "BertForPreTraining", T.BertForPreTraining(T.BertConfig(**BERT))
    yield "BertForMaskedLM", T.BertForMaskedLM(T.BertConfig(**BERT, tie_word_embeddings=False))
    yield "BertForSequenceClassification", T.BertForSequenceClassification(
        T.BertConfig(**BERT, num_labels=2, id2label={0: "bad", 1: "good"}, label2id={"bad": 0, "good": 1}))
    yield "RobertaForMaskedLM", T.RobertaForMaskedLM(T.RobertaConfig(**BERT, type_vocab_size=1,
                                                                       max_position_embeddings=34))
    yield "GPT2LMHeadModel", T.GPT2LMHeadModel(T.GPT2Config(vocab_size=97, n_embd=32, n_layer=2, n_head=4,
                                                             n_positions=24))


@pytest.mark.parametrize("name,hf", list(_models()), ids=lambda x: x if isinstance(x, str) else "")
def test_round_trip_identical_tensors_and_logits(tmp_path, name, hf):
    src = save_hf(hf.eval(), tmp_path / "hf")
    kind = "classifier" if "Classification" in name else "pretrain"
    ours, cfg, _ = import_and_load(src, tmp_path / "ckpt", kind)
    assert main(["export-hf", str(tmp_path / "ckpt"), "--out", str(tmp_path / "back")]) == 0
    before, after = load_file(str(src / "model.safetensors")), load_file(str(tmp_path / "back" / "model.safetensors"))
    assert sorted(before) == sorted(after)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert (tmp_path / "back" / "tokenizer.json").is_file()
    loaded = getattr(T, name).from_pretrained(str(tmp_path / "back")).eval()
    ids, mask = batch(cfg.vocab_size, s=16, pad_id=cfg.pad_id)
    with torch.no_grad(), use_backends(attention="reference"):
        res = loaded(input_ids=ids, attention_mask=mask.long())
        ref = res.prediction_logits if name == "BertForPreTraining" else res.logits
        mine = ours(ids, mask) if kind == "classifier" else (
            ours(ids, attention_mask=mask)["logits"] if cfg.arch == "gpt" else ours(ids, None, mask)["mlm_logits"])
    real = mask[..., None] if ref.dim() == 3 else torch.ones(1, dtype=torch.bool)
    assert max_err(mine * real, ref * real) < 1e-5


def test_bmf_pretrained_bert_exports(tiny_pretrained, tmp_path):
    out = tmp_path / "hf"
    summary = export_hf(tiny_pretrained, out)
    assert summary["architecture"] == "BertForPreTraining"
    ours, cfg, _ = load_model(tiny_pretrained, "pretrain")
    loaded = T.AutoModelForPreTraining.from_pretrained(str(out)).eval()
    ids, mask = batch(cfg.vocab_size, s=20, pad_id=cfg.pad_id, low=10)
    with torch.no_grad(), use_backends(attention="reference"):
        ref = loaded(input_ids=ids, attention_mask=mask.long())
        mine = ours.eval()(ids, None, mask)
    assert max_err(mine["mlm_logits"], ref.prediction_logits) < 1e-5
    assert max_err(mine["nsp_logits"], ref.seq_relationship_logits) < 1e-5


def test_bmf_gpt_exports(tmp_path):
    from bigmodel_fast.checkpoint import save_checkpoint
    from bigmodel_fast.models import ModelConfig
    from bigmodel_fast.models.gpt import GPTForCausalLM

    torch.manual_seed(0)
    cfg = ModelConfig(arch="gpt", vocab_size=101, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      max_position=32, layer_norm_eps=1e-5)
    model = GPTForCausalLM(cfg).eval()
    tok = tmp_path / "tokenizer.json"
    tok.write_text("{}")
    save_checkpoint(tmp_path / "ckpt", model, cfg.to_dict(), tok, {"kind": "pretrain", "step": 0})
    export_hf(tmp_path / "ckpt", tmp_path / "hf")
    loaded = T.AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    ids, mask = batch(cfg.vocab_size, s=20, pad_id=cfg.pad_id)
    real = mask[..., None]
    with torch.no_grad(), use_backends(attention="reference"):
        assert max_err(model(ids, attention_mask=mask)["logits"] * real,
                       loaded(input_ids=ids, attention_mask=mask.long()).logits * real) < 1e-5


def test_export_refuses_non_empty_out(tmp_path, tiny_pretrained):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep")
    assert main(["export-hf", str(tiny_pretrained), "--out", str(tmp_path / "busy")]) == 2
    assert (tmp_path / "busy" / "x").read_text() == "keep"
