from __future__ import annotations

import importlib
import warnings

import pytest
import torch

from bigmodel_fast.export import ExportError, export_torchscript, load_torchscript
from bigmodel_fast.models import GPTForCausalLM, ModelConfig, build_classifier

ts_mod = importlib.import_module("bigmodel_fast.export.torchscript")


def tiny(arch: str) -> ModelConfig:
    return ModelConfig(arch=arch, vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                       max_position=40, dropout=0.1, num_labels=2, type_vocab_size=2 if arch == "bert" else 0)


@pytest.mark.parametrize("arch", ["bert", "gpt"])
def test_export_reload_parity_variable_lengths(arch, tmp_path):
    torch.manual_seed(0)
    model = build_classifier(tiny(arch))
    model.train()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = export_torchscript(model, tmp_path / "out" / "clf.pt", example_len=12)
    assert not [w for w in caught if "torch.jit" in str(w.message)]
    assert path.is_file()
    assert model.training  # mode restored
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path))
    for b, s in ((1, 1), (3, 5), (2, 33), (4, 40)):  # lengths never seen during export
        ids = torch.randint(0, 64, (b, s))
        mask = torch.ones(b, s, dtype=torch.bool)
        mask[-1, max(1, s - 3):] = False
        ids[~mask] = 0
        with torch.no_grad():
            torch.testing.assert_close(loaded(ids, mask), model(ids, mask), atol=1e-5, rtol=1e-5)
    module, cfg = load_torchscript(path)
    assert cfg == model.cfg


def test_parity_failure_raises_with_diff(tmp_path, monkeypatch):
    model = build_classifier(tiny("bert"))

    def fake_load(path, map_location=None):
        return (lambda ids, mask: model(ids, mask) + 1e-3), model.cfg

    monkeypatch.setattr(ts_mod, "load_torchscript", fake_load)
    with pytest.raises(RuntimeError, match=r"max abs diff 0\.001"):
        export_torchscript(model, tmp_path / "bad.pt")
    assert issubclass(ExportError, RuntimeError)


def test_parity_batches_have_two_lengths_and_padding():
    cfg = tiny("gpt")
    (ids1, m1), (ids2, m2) = ts_mod.parity_batches(cfg, 16, torch.device("cpu"))
    assert ids1.shape[1] == 16 and ids2.shape[1] != 16
    for ids, m in ((ids1, m1), (ids2, m2)):
        assert (~m).any() and m[:, 0].all()
        assert (ids[~m] == cfg.pad_id).all()
    (ids3, _), _ = ts_mod.parity_batches(cfg, 1000, torch.device("cpu"))
    assert ids3.shape[1] == cfg.max_position


def test_rejects_non_classifier(tmp_path):
    with pytest.raises(TypeError, match="SequenceClassifier"):
        export_torchscript(torch.nn.Linear(2, 2), tmp_path / "x.pt")
    with pytest.raises(ExportError, match="script"):
        export_torchscript(GPTForCausalLM(tiny("gpt")), tmp_path / "y.pt")
