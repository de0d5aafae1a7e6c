"""LSTM language model and classifier: config, shapes, padding, training, TorchScript export, bmf pretrain/finetune."""

from __future__ import annotations

import json
import math
import os
import warnings

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402

from bigmodel_fast.models import (  # noqa: E402
    ConfigError,
    LSTMClassifier,
    LSTMForCausalLM,
    ModelConfig,
    SequenceClassifier,
    build_classifier,
    build_pretraining_model,
)
from bigmodel_fast.ops import lstm as L  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(L.ENV_VAR, raising=False)
    monkeypatch.delenv(L.MODE_ENV_VAR, raising=False)


def lstm_cfg(**kw) -> ModelConfig:
    fields = dict(arch="lstm", vocab_size=64, hidden_size=24, num_layers=2, max_position=32, dropout=0.0,
                  type_vocab_size=0)
    fields.update(kw)
    return ModelConfig(**fields)


def test_config_accepts_lstm_fields():
    cfg = lstm_cfg(hidden_size=33, num_heads=4, bidirectional=True, num_labels=2)  # heads do not constrain lstm
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="'bidirectional'.*only arch 'lstm'"):
        ModelConfig(arch="gpt", bidirectional=True)
    with pytest.raises(ConfigError, match="'bidirectional'"):
        ModelConfig.from_dict({"arch": "lstm", "bidirectional": 1})
    assert ModelConfig.from_dict({"arch": "gpt"}).bidirectional is False  # old configs load unchanged


def test_builders_dispatch_on_arch():
    assert isinstance(build_pretraining_model(lstm_cfg()), LSTMForCausalLM)
    clf = build_classifier(lstm_cfg(num_labels=3))
    assert isinstance(clf, LSTMClassifier) and isinstance(clf, SequenceClassifier)
    with pytest.raises(ValueError, match="cannot be bidirectional"):
        LSTMForCausalLM(lstm_cfg(bidirectional=True))
    with pytest.raises(ValueError, match="arch='lstm'"):
        LSTMForCausalLM(ModelConfig(arch="gpt"))
    with pytest.raises(ValueError, match="num_labels"):
        LSTMClassifier(lstm_cfg())


def test_lm_shapes_loss_and_right_padding():
    torch.manual_seed(0)
    model = LSTMForCausalLM(lstm_cfg()).eval()
    ids = torch.randint(5, 64, (3, 9))
    labels = torch.randint(0, 64, (3, 9))
    labels[0, :4] = -100
    out = model(ids, labels)
    assert out["logits"].shape == (3, 9, 64)
    manual = torch.nn.functional.cross_entropy(out["logits"].reshape(-1, 64), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out["loss"], manual)
    padded = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(3, 9, dtype=torch.bool), torch.zeros(3, 4, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(model(padded, attention_mask=mask)["logits"][:, :9], out["logits"],
                               atol=1e-5, rtol=1e-5)
    assert model.output_weight() is model.backbone.embeddings.weight
    assert LSTMForCausalLM(lstm_cfg(tie_embeddings=False)).output_weight().shape == (64, 24)


def test_lm_overfits():
    torch.manual_seed(1)
    model = LSTMForCausalLM(lstm_cfg(hidden_size=32))
    ids = torch.randint(5, 64, (4, 12))
    labels = torch.roll(ids, -1, dims=1)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-2)  # tied small-init embeddings: an LSTM LM needs a high lr
    losses = []
    for _ in range(80):
        loss = model(ids, labels)["loss"]
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.6 * losses[0], losses[::10]


@pytest.mark.parametrize("tie", [True, False])
def test_chunked_lm_loss_equals_plain_loss_and_grads(tie):
    """Training mode: the chunked loss (chunks of 4 tokens, not dividing B * S = 30) and every parameter gradient
    equal the plain path's (``lm_loss = "plain"``); fp32, only the summation order differs: 1e-5 relative."""
    torch.manual_seed(5)
    model = LSTMForCausalLM(lstm_cfg(tie_embeddings=tie))
    ids = torch.randint(5, 64, (3, 10))
    labels = torch.roll(ids, -1, dims=1)
    labels[:, -1] = -100
    labels[1, :3] = -100
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[2, 7:] = False
    labels[2, 6:] = -100

    def run(mode):
        model.lm_loss, model.lm_loss_chunk_size = mode, 4
        model.zero_grad(set_to_none=True)
        out = model(ids, labels, attention_mask=mask)
        out["loss"].backward()
        return set(out), out["loss"].detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    keys_c, loss_c, grads_c = run("chunked")
    keys_p, loss_p, grads_p = run("plain")
    assert keys_c == {"loss"} and keys_p == {"logits", "loss"}
    torch.testing.assert_close(loss_c, loss_p, rtol=1e-5, atol=1e-6)
    for name, g in grads_p.items():
        torch.testing.assert_close(grads_c[name], g, rtol=1e-5, atol=1e-6, msg=name)
    model.eval()
    assert set(model(ids, labels)) == {"logits", "loss"}  # evaluation keeps the logits


@pytest.mark.parametrize("bidir", [False, True])
def test_classifier_padding_invariance_and_pooling(bidir):
    torch.manual_seed(2)
    model = build_classifier(lstm_cfg(num_labels=3, bidirectional=bidir)).eval()
    ids = torch.randint(5, 64, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    ids[~mask] = 0
    base = model(ids, mask)
    assert base.shape == (2, 3)
    padded = torch.cat([ids, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    pmask = torch.cat([mask, torch.zeros(2, 5, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(model(padded, pmask), base, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(model(ids[1:, :4], mask[1:, :4]), base[1:], atol=1e-5, rtol=1e-5)
    hidden = model.backbone(ids, mask)
    pooled = model.backbone.pool(hidden, mask)
    assert pooled.shape == (2, 48 if bidir else 24)
    torch.testing.assert_close(pooled[1, :24], hidden[1, 3, :24])
    if bidir:
        torch.testing.assert_close(pooled[1, 24:], hidden[1, 0, 24:])
    with pytest.raises(ValueError, match="token_type_ids"):
        model(ids, mask, torch.zeros_like(ids))


def test_classifier_loads_lm_backbone():
    torch.manual_seed(3)
    cfg = lstm_cfg(num_labels=2)
    lm = LSTMForCausalLM(cfg)
    clf = LSTMClassifier(cfg)
    assert clf.load_backbone(lm.state_dict()) == ([], [])
    ids = torch.randint(5, 64, (2, 6))
    torch.testing.assert_close(clf.backbone(ids), lm.backbone(ids), atol=0, rtol=0)
    assert any(k.startswith("backbone.lstm.weight_hh_l1") for k in clf.state_dict())


def test_triton_backend_matches_reference_in_the_lm(monkeypatch):
    torch.manual_seed(4)
    model = LSTMForCausalLM(lstm_cfg(hidden_size=16, num_layers=2))
    ids = torch.randint(5, 64, (2, 4))
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    labels = torch.randint(0, 64, (2, 4))

    def run():
        model.zero_grad()
        loss = model(ids, labels, attention_mask=mask)["loss"]
        loss.backward()
        return [loss] + [p.grad.clone() for p in model.parameters()]

    ref = run()
    monkeypatch.setenv(L.ENV_VAR, "triton")
    got = run()
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("bidir", [False, True])
def test_classifier_torchscript_export_parity(bidir, tmp_path):
    from bigmodel_fast.export.torchscript import export_torchscript, load_torchscript

    torch.manual_seed(5)
    model = build_classifier(lstm_cfg(num_labels=2, dropout=0.1, bidirectional=bidir))
    path = export_torchscript(model, tmp_path / "m.pt", example_len=12)
    loaded, cfg = load_torchscript(path)
    assert cfg.arch == "lstm" and cfg.bidirectional == bidir
    model.eval()
    ids = torch.randint(5, 64, (3, 10))
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[2, 6:] = False
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.testing.assert_close(loaded(ids, mask), model(ids, mask), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ training end to end

TINY_LSTM = {"hidden_size": 32, "num_layers": 1}


@pytest.fixture(scope="module")
def lstm_pretrained(tiny_data, tmp_path_factory):
    from bigmodel_fast.train.optim import OptimConfig
    from bigmodel_fast.train.pretrain import PretrainConfig, pretrain

    out = tmp_path_factory.mktemp("lstm_pretrain")
    summary = pretrain(PretrainConfig(data=str(tiny_data), out=str(out), arch="lstm", model_overrides=TINY_LSTM,
                                      seq_len=32, batch_size=8, max_steps=30, eval_every=10, eval_batches=2,
                                      log_every=5, optim=OptimConfig(lr=1e-2, warmup_steps=3), device="cpu",
                                      progress=False))
    return summary


def test_pretrain_arch_lstm_learns(lstm_pretrained):
    losses = [loss for _, loss in lstm_pretrained["eval_losses"]]
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
    cfg = json.loads(open(os.path.join(lstm_pretrained["checkpoint"], "config.json")).read())
    assert cfg["arch"] == "lstm"
    assert losses[-1] < losses[0] and losses[-1] < math.log(cfg["vocab_size"]) - 1.0, losses  # well below uniform


def test_finetune_arch_lstm_and_export(lstm_pretrained, sentiment_small, tmp_path):
    from bigmodel_fast import checkpoint as ckpt
    from bigmodel_fast.export.bundle import export_bundle
    from bigmodel_fast.train.finetune import FinetuneConfig, finetune

    base = dict(checkpoint=lstm_pretrained["checkpoint"], train=str(sentiment_small["train"]),
                valid=str(sentiment_small["valid"]), max_len=32, epochs=1, device="cpu", progress=False)
    summary = finetune(FinetuneConfig(out=str(tmp_path / "ft"), arch="lstm", **base))
    cfg, meta = ckpt.read_meta(summary["checkpoint"])
    assert cfg["arch"] == "lstm" and meta["kind"] == "classifier" and cfg["num_labels"] == 2
    with pytest.raises(ValueError, match="checkpoint is arch 'lstm' but arch 'gpt'"):
        finetune(FinetuneConfig(out=str(tmp_path / "ft2"), arch="gpt", **base))
    bundle = export_bundle(summary["checkpoint"], tmp_path / "bundle")  # scripted, reloaded, parity-checked
    assert (tmp_path / "bundle").is_dir() and bundle is not None


def test_cli_accepts_arch_lstm():
    from bigmodel_fast.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["pretrain", "--data", "d", "--out", "o", "--arch", "lstm"]).arch == "lstm"
    args = parser.parse_args(["finetune", "--checkpoint", "c", "--train", "t", "--out", "o", "--arch", "lstm"])
    assert args.arch == "lstm"
    assert parser.parse_args(["finetune", "--checkpoint", "c", "--train", "t", "--out", "o"]).arch is None
