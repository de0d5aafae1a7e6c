import json

import pytest

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.train.finetune import FinetuneConfig, finetune
from bigmodel_fast.train.metrics_log import read_metrics
from bigmodel_fast.train.optim import OptimConfig


def test_finetune_writes_labelled_classifier(tiny_classifier):
    cfg, meta = ckpt.read_meta(tiny_classifier)
    assert meta["kind"] == "classifier"
    assert cfg["label_names"] == ["neg", "pos"] and cfg["num_labels"] == 2
    assert 0.0 <= meta["valid_accuracy"] <= 1.0
    assert (tiny_classifier / "tokenizer.model").is_file()


def test_finetune_learns_a_separable_task(tiny_pretrained, tmp_path):
    # label = whether the text mentions "python": learnable from one token, so accuracy must go well above chance
    # (10 epochs: with 6 the tiny backbone sits at chance for 4-5 epochs on some seeds before it learns the token)
    rows = []
    for i in range(160):
        lab = "py" if i % 2 else "other"
        word = "python" if i % 2 else "module"
        rows.append({"text": f"the {word} object number {i % 7} is here", "label": lab})
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows[:120]) + "\n", encoding="utf-8")
    valid = tmp_path / "valid.jsonl"
    valid.write_text("\n".join(json.dumps(r) for r in rows[120:]) + "\n", encoding="utf-8")
    summary = finetune(FinetuneConfig(checkpoint=str(tiny_pretrained), train=str(train), valid=str(valid),
                                      out=str(tmp_path / "ft"), max_len=16, batch_size=16, epochs=10,
                                      optim=OptimConfig(lr=1e-3, warmup_steps=-1), device="cpu", progress=False))
    assert summary["best_valid_accuracy"] >= 0.9


def test_finetune_input_errors(tiny_pretrained, tmp_path):
    one_label = tmp_path / "one.jsonl"
    one_label.write_text('{"text": "a b c", "label": "x"}\n{"text": "d e f", "label": "x"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="two distinct labels"):
        finetune(FinetuneConfig(checkpoint=str(tiny_pretrained), train=str(one_label), out=str(tmp_path / "o"),
                                device="cpu", progress=False))
    no_label = tmp_path / "nolabel.jsonl"
    no_label.write_text('{"text": "a b c", "label": "x"}\n{"text": "d e f"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"nolabel.jsonl:2"):
        finetune(FinetuneConfig(checkpoint=str(tiny_pretrained), train=str(no_label), out=str(tmp_path / "o"),
                                device="cpu", progress=False))
    with pytest.raises(ckpt.CheckpointError, match="missing"):
        finetune(FinetuneConfig(checkpoint=str(tmp_path), train=str(one_label), out=str(tmp_path / "o"),
                                device="cpu", progress=False))


def test_finetune_logs_every_log_every_steps(tiny_pretrained, tmp_path):
    rows = [{"text": f"text number {i}", "label": "ab"[i % 2]} for i in range(40)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert FinetuneConfig(checkpoint="c", train="t", out="o").log_every == 20  # the interval before it was a setting
    with pytest.raises(ValueError, match="log_every must be >= 1"):
        FinetuneConfig(checkpoint="c", train="t", out="o", log_every=0)
    summary = finetune(FinetuneConfig(checkpoint=str(tiny_pretrained), train=str(train), out=str(tmp_path / "ft"),
                                      max_len=16, batch_size=8, epochs=2, log_every=3, device="cpu", progress=False))
    assert summary["steps"] == 10
    records = [r for r in read_metrics(tmp_path / "ft" / "metrics.jsonl") if "loss" in r]
    assert [(r["step"], r["epoch"]) for r in records] == [(3, 0), (6, 1), (9, 1)]
    assert all(r["lr"] > 0 for r in records)
