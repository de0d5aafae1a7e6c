import json

import pytest
import torch

from bigmodel_fast.eval.predict import Predictor
from bigmodel_fast.export.bundle import export_bundle, read_bundle

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
    (bundle / "bundle.json").write_text(json.dumps({**info, "bundle_version": 99}))
    with pytest.raises(ValueError, match="bundle_version 99"):
        read_bundle(bundle)
    (bundle / "bundle.json").write_text("{not json")
    with pytest.raises(ValueError, match="invalid"):
        read_bundle(bundle)
    (bundle / "bundle.json").write_text(json.dumps(info))
    (bundle / "model.pt").unlink()
    with pytest.raises(FileNotFoundError, match="model.pt"):
        read_bundle(bundle)


def test_only_classifiers_export(tiny_pretrained, tmp_path):
    with pytest.raises(ValueError, match="classifier"):
        export_bundle(tiny_pretrained, tmp_path / "x")
