import json

import pytest
import torch

from bigmodel_fast.eval.predict import Predictor
from bigmodel_fast.export.bundle import export_bundle, read_bundle
from bigmodel_fast.fsio import write_manifest


def edit(path, text):
    """Hand-edit a bundle file and re-write the manifest (tests the checks behind the checksum)."""
    path.write_text(text)
    write_manifest(path.parent)

TEXTS = ["这本书写得非常好，强烈推荐！", "质量太差了。", "", "a" * 3000, "emoji 😀 and mixed 中文 text"]


def test_bundle_predictions_equal_checkpoint(tiny_classifier, tmp_path):
    bundle = export_bundle(tiny_classifier, tmp_path / "bundle")
    info = read_bundle(bundle)
    assert info["labels"] == ["neg", "pos"] and info["special_ids"]["cls"] == 2
    eager = Predictor(tiny_classifier, device="cpu").predict_proba(TEXTS)
    scripted = Predictor(bundle, device="cpu").predict_proba(TEXTS)
    assert eager.shape == (len(TEXTS), 2)
    torch.testing.assert_close(scripted, eager, atol=1e-5, rtol=0)
    assert torch.allclose(eager.sum(-1), torch.ones(len(TEXTS)))


def test_bundle_errors(tiny_classifier, tmp_path):
    bundle = export_bundle(tiny_classifier, tmp_path / "b")
    info = json.loads((bundle / "bundle.json").read_text())
    edit(bundle / "bundle.json", json.dumps({**info, "bundle_version": 99}))
    with pytest.raises(ValueError, match="bundle_version 99"):
        read_bundle(bundle)
    edit(bundle / "bundle.json", "{not json")
    with pytest.raises(ValueError, match="invalid"):
        read_bundle(bundle)
    edit(bundle / "bundle.json", json.dumps(info))
    (bundle / "model.pt").unlink()
    with pytest.raises(ValueError, match="model.pt"):
        read_bundle(bundle)


def test_only_classifiers_export(tiny_pretrained, tmp_path):
    with pytest.raises(ValueError, match="classifier"):
        export_bundle(tiny_pretrained, tmp_path / "x")


def tiny_gpt_lm_checkpoint(tiny_pretrained, out):
    """An untrained GPT LM checkpoint sharing tiny_pretrained's tokenizer (export does not care about training)."""
    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.models import GPTForCausalLM, ModelConfig

    vocab = ModelConfig.from_dict(json.loads((tiny_pretrained / "config.json").read_text())).vocab_size
    cfg = ModelConfig(arch="gpt", vocab_size=vocab, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                      max_position=48, type_vocab_size=0)
    torch.manual_seed(0)
    return ckpt.save_checkpoint(out, GPTForCausalLM(cfg), cfg.to_dict(), tiny_pretrained / "tokenizer.model",
                                {"kind": "pretrain"})


def test_gpt_lm_bundle(tiny_pretrained, tmp_path):
    from bigmodel_fast.export.bundle import load_bundle_model
    from bigmodel_fast.export.targets import load_export_target

    checkpoint = tiny_gpt_lm_checkpoint(tiny_pretrained, tmp_path / "gpt")
    bundle = export_bundle(checkpoint, tmp_path / "lm")
    info = read_bundle(bundle)
    assert (info["task"], info["format"], info["model"], info["max_len"]) == ("lm", "torchscript", "model.pt", 48)
    assert info["special_ids"]["bos"] == 5 and info["special_ids"]["eos"] == 6
    model, _ = load_bundle_model(bundle)
    eager = load_export_target(checkpoint).module
    ids = torch.randint(7, info["vocab_size"], (2, 48))
    mask = torch.ones(2, 48, dtype=torch.bool)
    mask[1, 20:] = False
    with torch.no_grad():
        logits = model(ids, mask)
        assert logits.shape == (2, 48, info["vocab_size"])
        torch.testing.assert_close(logits, eager(ids, mask), atol=1e-5, rtol=0)


def test_bundle_format_fields_and_defaults(tiny_classifier, tmp_path):
    bundle = export_bundle(tiny_classifier, tmp_path / "b")
    info = read_bundle(bundle)
    assert (info["format"], info["task"], info["model"], info["tokenizer"]) == (
        "torchscript", "classify", "model.pt", "tokenizer.model")
    old = {k: v for k, v in info.items() if k not in ("format", "task", "model", "tokenizer", "vocab_size")}
    edit(bundle / "bundle.json", json.dumps(old))  # a bundle from before these fields existed
    again = read_bundle(bundle)
    assert (again["format"], again["task"], again["model"]) == ("torchscript", "classify", "model.pt")
    edit(bundle / "bundle.json", json.dumps({**info, "format": "onnx"}))
    with pytest.raises(ValueError, match="format 'onnx'"):
        read_bundle(bundle)
    with pytest.raises(ValueError, match="not supported"):
        export_bundle(tiny_classifier, tmp_path / "c", format="onnx")


def test_export_targets_registry_prefers_specific_arch(tiny_classifier, monkeypatch):
    from bigmodel_fast.export import targets

    seen = []

    def builder(model, cfg, meta):
        seen.append(cfg.arch)
        return targets.ExportTarget(model.eval(), cfg, "classify", 16, ["a", "b"])

    monkeypatch.setitem(targets._BUILDERS, ("classify", "bert"), builder)
    target = targets.load_export_target(tiny_classifier)
    assert seen == ["bert"] and target.max_len == 16
