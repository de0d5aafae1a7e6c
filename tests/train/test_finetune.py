import json

import pytest

from bigmodel_fast.train import checkpoint as ckpt
from bigmodel_fast.train.finetune import FinetuneConfig, finetune
from bigmodel_fast.train.optim import OptimConfig


def test_finetune_writes_labelled_classifier(tiny_classifier):
    cfg, meta = ckpt.read_meta(tiny_classifier)
    assert meta["kind"] == "classifier"
    assert cfg["label_names"] == ["neg", "pos"] and cfg["num_labels"] == 2
    assert 0.0 <= meta["valid_accuracy"] <= 1.0
    assert (tiny_classifier / "tokenizer.model").is_file()


def test_finetune_learns_a_separable_task(tiny_pretrained, tmp_path):
    # label = whether the text mentions "python": learnable from one token, so accuracy must go well above chance
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
                                      out=str(tmp_path / "ft"), max_len=16, batch_size=16, epochs=6,
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
