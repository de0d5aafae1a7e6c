"""``bmf finetune`` with its defaults: auto lr / epochs / warmup, selection by macro-F1, early stopping, class
weights, and the warnings after training (collapsed model, majority and TF-IDF baselines)."""

import json

import numpy as np
import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.cli import main
from bigmodel_fast.data.classification import LabelledTexts
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.train.finetune_defaults import RECIPES, backbone_kind, resolve_schedule
from bigmodel_fast.train.objectives import SingleLabel, inverse_frequency
from bigmodel_fast.train.optim import clamp_warmup
from bigmodel_fast.train.selection import EarlyStopping, hold_out

from .finetune_helpers import keyword_rows, write_jsonl


def _summary(capsys) -> tuple[dict, str]:
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_defaults_train_a_tiny_bert_on_a_keyword_task(untrained_tiny, tmp_path, capsys):
    """The CLI with no tuning flag at all (max_len shrunk for speed) learns 4 keyword classes from scratch."""
    train = write_jsonl(tmp_path / "train.jsonl", keyword_rows(160, seed=1))
    valid = write_jsonl(tmp_path / "valid.jsonl", keyword_rows(60, seed=2))
    assert main(["finetune", "--checkpoint", str(untrained_tiny), "--train", str(train), "--valid", str(valid),
                 "--out", str(tmp_path / "ft"), "--max-len", "16", "--device", "cpu", "--no-progress"]) == 0
    summary, err = _summary(capsys)
    sched = summary["schedule"]
    assert sched["backbone_kind"] == "small" and sched["auto"] == ["lr", "epochs", "warmup_steps"]
    assert sched["lr"] == RECIPES["small"].lr and sched["steps_per_epoch"] == 5
    assert sched["epochs"] == 20 and sched["warmup_steps"] == 6  # ceil(600 / 5) clamped to 20; 6% of 100
    assert "lr 0.0005 (auto), epochs 20 (auto), warmup 6 steps (auto)" in err
    assert summary["best_valid_macro_f1"] >= 0.9, summary["best_valid"]
    assert not [w for w in summary["warnings"] if "predicts only" in w or "majority" in w]
    assert summary["selection"]["metric"] == "macro_f1"
    model, cfg, meta = ckpt.load_model(summary["checkpoint"], "classifier")
    assert meta["schedule"] == sched and meta["selection"]["value"] == summary["best_valid_macro_f1"]
    from bigmodel_fast.data.classification import encode_for_classifier, read_labelled
    from bigmodel_fast.data.tokenizer_base import load_tokenizer
    from bigmodel_fast.inference import predict_logits

    tok = load_tokenizer(ckpt.tokenizer_path(summary["checkpoint"]))
    rows = read_labelled(valid)
    pred = predict_logits(model, encode_for_classifier(tok, rows.texts, 16), tok.pad_id, 64, torch.device("cpu"))
    assert {cfg.label_names[i] for i in pred.argmax(-1).tolist()} == {"food", "money", "sport", "weather"}


def test_imbalanced_labels_warn_and_class_weights(tiny_pretrained, tmp_path, capsys):
    # every text is the same: no model can tell the classes apart, so it predicts one class for all of them
    counts = {"a": 90, "b": 6, "c": 4}
    rows = [{"text": "the same text", "label": k} for k, n in counts.items() for _ in range(n)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    valid = write_jsonl(tmp_path / "valid.jsonl", rows[::5] + [rows[-1]])
    base = ["finetune", "--checkpoint", str(tiny_pretrained), "--train", str(train), "--valid", str(valid),
            "--max-len", "16", "--epochs", "2", "--warmup-steps", "100", "--device", "cpu", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "w"), "--class-weights", "auto"]) == 0
    summary, err = _summary(capsys)
    expect = {k: 100 / (3 * n) for k, n in counts.items()}  # N / (C * n_c)
    assert summary["class_weights"] == pytest.approx(expect, rel=1e-12)
    assert sum(counts[k] * w for k, w in summary["class_weights"].items()) / 100 == pytest.approx(1.0)
    assert ckpt.read_meta(summary["checkpoint"])[1]["class_weights"] == summary["class_weights"]
    assert "class weights (auto): a 0.37, b 5.56, c 8.33" in err
    warned = [line for line in err.splitlines() if line.startswith("bmf finetune: warning: the model predicts only")]
    assert len(warned) == 1 and "of 3 labels" in warned[0]
    assert any("predicts only" in w for w in summary["warnings"])
    assert any("no better than the majority baseline" in w for w in summary["warnings"])
    assert "note: warmup_steps 100 is more than half of the run's 8 steps; clamped to 4" in err
    assert summary["schedule"]["warmup_steps"] == 4

    assert main([*base, "--out", str(tmp_path / "n")]) == 0
    summary, _ = _summary(capsys)
    assert summary["class_weights"] is None and any("predicts only" in w for w in summary["warnings"])


def test_weighted_loss_is_inverse_frequency_cross_entropy():
    obj = SingleLabel(["a", "b"], ["a"] * 3 + ["b"], "auto")
    assert obj.weights.tolist() == pytest.approx([4 / 6, 4 / 2])
    logits, y = torch.randn(5, 2), torch.tensor([0, 1, 1, 0, 0])
    w = torch.tensor(obj.weights, dtype=torch.float32)[y]
    manual = (w * torch.nn.functional.cross_entropy(logits, y, reduction="none")).sum() / w.sum()
    assert obj.loss(logits, y).item() == pytest.approx(manual.item(), rel=1e-6)
    assert inverse_frequency([5, 5]).tolist() == [1.0, 1.0]


def test_without_valid_a_seeded_stratified_share_is_held_out(tiny_pretrained, tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", keyword_rows(80, seed=3))
    assert main(["finetune", "--checkpoint", str(tiny_pretrained), "--train", str(train), "--out",
                 str(tmp_path / "ft"), "--max-len", "16", "--max-steps", "3", "--device", "cpu", "--no-progress"]) == 0
    summary, err = _summary(capsys)
    assert "no --valid: selecting by the 8 rows held out of" in err
    assert summary["selection"]["examples"] == 8 and "held out" in summary["selection"]["on"]
    assert summary["train_examples"] == 72
    rows = LabelledTexts([r["text"] for r in keyword_rows(80, 3)], [r["label"] for r in keyword_rows(80, 3)], "x",
                         list(range(80)))
    kept, held = hold_out(rows, 0.1, seed=0)
    again = hold_out(rows, 0.1, seed=0)[1]
    assert held.texts == again.texts and len(held) == 8 and len(kept) == 72
    assert sorted(held.labels) == ["food", "food", "money", "money", "sport", "sport", "weather", "weather"]
    assert hold_out(rows, 0.0, seed=0)[1] is None


def test_resolve_schedule_rule():
    small = resolve_schedule("small", 1500, 32, None, None, None)
    assert (small.lr, small.epochs, small.steps_per_epoch, small.warmup_steps) == (5e-4, 13, 47, 36)
    big = resolve_schedule("large", 100_000, 32, None, None, None)
    assert (big.lr, big.epochs) == (3e-5, 3)
    assert resolve_schedule("lstm", 50, 32, None, None, None).epochs == 20
    given = resolve_schedule("small", 1500, 32, 1e-3, 2, 5, max_steps=50)
    assert (given.lr, given.epochs, given.warmup_steps, given.total_steps, given.auto) == (1e-3, 2, 5, 50, [])
    assert clamp_warmup(10, 21) == (10, None) and clamp_warmup(11, 21)[0] == 10
    assert clamp_warmup(-1, 100) == (6, None) and clamp_warmup(None, 1) == (0, None)
    tiny = ModelConfig(hidden_size=128, num_heads=4)
    assert backbone_kind(tiny, {}) == "small" and backbone_kind(tiny, {"hf_model_type": "bert"}) == "large"
    assert backbone_kind(ModelConfig(hidden_size=384, num_heads=4), {}) == "large"
    assert backbone_kind(ModelConfig(arch="lstm", hidden_size=64, num_heads=1), {}) == "lstm"


def test_early_stopping_waits_for_a_model_above_the_majority_baseline():
    stop = EarlyStopping(patience=2, higher_is_better=True, min_epochs=1, floor=0.2)
    for epoch, score in enumerate([0.2, 0.2, 0.2, 0.2], 1):  # stuck at the constant prediction: never stopped
        stop.update(epoch, score)
        assert not stop.stop
    assert stop.update(5, 0.6) and not stop.stop
    stop.update(6, 0.5)
    assert not stop.stop
    stop.update(7, 0.6)  # a tie is no improvement
    assert stop.stop and stop.best_epoch == 5
    late = EarlyStopping(patience=1, higher_is_better=False, min_epochs=3)
    late.update(1, 1.0)
    late.update(2, 2.0)
    assert not late.stop  # not before min_epochs
    late.update(3, np.nan)
    assert late.stop and late.best == 1.0


BAD_FLAGS = [
    (["--task", "ordinal"], "argument --task: invalid choice"),
    (["--class-weights", "balanced"], "argument --class-weights: invalid choice"),
    (["--epochs", "0"], "argument --epochs: expected 'auto' or an integer >= 1, got 0"),
    (["--epochs", "many"], "argument --epochs: expected 'auto' or an integer >= 1"),
    (["--lr", "0"], "argument --lr: expected 'auto' or a number > 0"),
    (["--lr", "fast"], "argument --lr: expected 'auto' or a number > 0"),
    (["--warmup-steps", "-2"],
     "argument --warmup-steps: expected 'auto' or an integer >= -1 (-1: 6% of the run), got -2"),
]


@pytest.mark.parametrize("flags,message", BAD_FLAGS)
def test_bad_flags_are_refused_by_the_parser(flags, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["finetune", "--checkpoint", "c", "--train", "t", "--out", "o", *flags])
    assert e.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("flags,message", [
    (["--patience", "-1"], "patience must be >= 0, got -1"),
    (["--valid-fraction", "0.7"], "valid_fraction must be in [0, 0.5], got 0.7"),
    (["--valid-fraction", "-0.1"], "valid_fraction must be in [0, 0.5], got -0.1"),
    (["--label-sep", ""], "label_sep must be a non-empty string"),
])
def test_out_of_range_values_are_one_line_errors(flags, message, capsys, tmp_path):
    assert main(["finetune", "--checkpoint", "c", "--train", "t", "--out", str(tmp_path / "o"), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_auto_values_parse(capsys):
    from bigmodel_fast.cli import build_parser

    args = build_parser().parse_args(["finetune", "--checkpoint", "c", "--train", "t", "--out", "o", "--lr", "auto",
                                      "--epochs", "AUTO", "--warmup-steps", "auto"])
    assert (args.lr, args.epochs, args.warmup_steps) == (None, None, None)
    args = build_parser().parse_args(["finetune", "--checkpoint", "c", "--train", "t", "--out", "o", "--lr", "2e-5",
                                      "--epochs", "4", "--warmup-steps", "-1"])
    assert (args.lr, args.epochs, args.warmup_steps) == (2e-5, 4, -1)
