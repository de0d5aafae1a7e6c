"""``bmf finetune`` from a classifier checkpoint: keep its head when the labels fit, else ``--new-head``."""

import json

import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.cli import main
from bigmodel_fast.data.classification import encode_for_classifier, pad_batch
from bigmodel_fast.data.tokenizer_base import load_tokenizer
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.train import finetune_parts as finetune_mod  # where the trainers build their optimizer
from bigmodel_fast.train.finetune import FinetuneConfig, finetune

TEXTS = ["a great film, I loved it", "dull and far too long", "the plot was fine", "nothing works here at all"]


def logits_of(model, checkpoint) -> torch.Tensor:
    """(len(TEXTS), num_labels) logits of ``model`` in eval mode (its training mode is restored)."""
    tok = load_tokenizer(ckpt.tokenizer_path(checkpoint))
    ids, mask = pad_batch(encode_for_classifier(tok, TEXTS, 32), tok.pad_id)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(ids, mask)
    model.train(was_training)
    return out


@pytest.fixture
def first_model(monkeypatch):
    """The classifier a run trains, as it is when its optimizer is built (before any step): its logits on TEXTS
    ``seen["logits"]`` (tokenized with the tokenizer of checkpoint ``seen["checkpoint"]``, which the test sets) and
    a copy of its state ``seen["state"]``."""
    seen = {}
    real = finetune_mod.build_optimizer

    def spy(model, optim_cfg):
        seen.update(logits=logits_of(model, seen["checkpoint"]),
                    state={k: v.clone() for k, v in model.state_dict().items()})
        return real(model, optim_cfg)

    monkeypatch.setattr(finetune_mod, "build_optimizer", spy)
    return seen


def run(checkpoint, train, out, **kw):
    return finetune(FinetuneConfig(checkpoint=str(checkpoint), train=str(train), out=str(out), max_len=32,
                                   epochs=1, max_steps=2, device="cpu", progress=False, **kw))


def test_keeps_the_head_when_the_labels_match(tiny_classifier, sentiment_small, tmp_path, first_model):
    source, source_cfg, _ = ckpt.load_model(tiny_classifier, "classifier")
    first_model["checkpoint"] = tiny_classifier
    summary = run(tiny_classifier, sentiment_small["train"], tmp_path)
    assert summary["labels"] == ["neg", "pos"] == source_cfg.label_names
    assert summary["head"] == f"kept from {tiny_classifier}"
    assert torch.equal(first_model["logits"], logits_of(source, tiny_classifier))
    assert ckpt.read_meta(tmp_path / "checkpoint")[1]["head"] == summary["head"]


def test_new_head_resets_the_head_and_keeps_the_backbone(tiny_classifier, sentiment_small, tmp_path, first_model):
    source, _, _ = ckpt.load_model(tiny_classifier, "classifier")
    first_model["checkpoint"] = tiny_classifier
    summary = run(tiny_classifier, sentiment_small["train"], tmp_path, new_head=True)
    assert summary["head"] == "new" and summary["labels"] == ["neg", "pos"]
    before, src = first_model["state"], source.state_dict()
    backbone = [k for k in src if k.startswith("backbone.")]
    assert backbone and all(torch.equal(before[k], src[k]) for k in backbone)
    assert not torch.equal(before["classifier.weight"], src["classifier.weight"])
    assert not torch.allclose(first_model["logits"], logits_of(source, tiny_classifier))


def test_a_label_mismatch_is_one_line_unless_new_head(tiny_classifier, tmp_path, capsys):
    rows = [{"text": f"text number {i}", "label": "abc"[i % 3]} for i in range(30)]
    train = tmp_path / "abc.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    argv = ["finetune", "--checkpoint", str(tiny_classifier), "--train", str(train), "--out", str(tmp_path / "o"),
            "--max-len", "32", "--max-steps", "2", "--device", "cpu", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "['neg', 'pos']" in err and "['a', 'b', 'c']" in err and "--new-head" in err
    assert not (tmp_path / "o" / "checkpoint").exists()

    assert main([*argv, "--new-head"]) == 0
    cfg, meta = ckpt.read_meta(tmp_path / "o" / "checkpoint")
    assert cfg["label_names"] == ["a", "b", "c"] and meta["head"] == "new"


def test_keeps_the_heads_label_order(tiny_classifier, sentiment_small, tmp_path, first_model):
    # a classifier whose head has the labels in another order than sorted (as an imported id2label may)
    source, source_cfg, meta = ckpt.load_model(tiny_classifier, "classifier")
    swapped_cfg = ModelConfig.from_dict({**source_cfg.to_dict(), "label_names": ["pos", "neg"]})
    swapped = tmp_path / "swapped"
    ckpt.save_checkpoint(swapped, source, swapped_cfg.to_dict(), ckpt.tokenizer_path(tiny_classifier), meta)
    first_model["checkpoint"] = swapped
    summary = run(swapped, sentiment_small["train"], tmp_path / "ft")
    assert summary["labels"] == ["pos", "neg"] and summary["head"].startswith("kept")
    assert torch.equal(first_model["logits"], logits_of(source, swapped))
    assert ckpt.read_meta(tmp_path / "ft" / "checkpoint")[0]["label_names"] == ["pos", "neg"]


def test_pretrain_checkpoints_still_get_a_new_head(tiny_pretrained, sentiment_small, tmp_path):
    summary = run(tiny_pretrained, sentiment_small["train"], tmp_path)
    assert summary["head"] == "new" and summary["labels"] == ["neg", "pos"]
    assert FinetuneConfig(checkpoint="c", train="t", out="o").new_head is False


def test_other_kinds_are_refused(tiny_pretrained, sentiment_small, tmp_path):
    model, cfg, meta = ckpt.load_model(tiny_pretrained, "pretrain")
    odd = tmp_path / "odd"
    ckpt.save_checkpoint(odd, model, cfg.to_dict(), ckpt.tokenizer_path(tiny_pretrained), {**meta, "kind": "lm"})
    with pytest.raises(ckpt.CheckpointError, match="expected a pretraining or classifier checkpoint .* got kind 'lm'"):
        run(odd, sentiment_small["train"], tmp_path / "o")
