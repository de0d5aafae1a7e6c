"""bmf finetune --task token: any backbone, windows for long sentences, entity micro-F1 selection, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.train.finetune import FinetuneConfig, finetune

from .ner_data import sentences, write_conll, write_jsonl


def untrained(source_ckpt: Path, out: Path, arch: str) -> Path:
    """A pretraining checkpoint of an untrained tiny ``arch`` model with ``source_ckpt``'s tokenizer."""
    from bigmodel_fast.models import build_pretraining_model
    from bigmodel_fast.models.config import ModelConfig

    src, _ = ckpt.read_meta(source_ckpt)
    extra = {} if arch == "lstm" else {"num_heads": 2, "intermediate_size": 64}
    cfg = ModelConfig.from_dict({"arch": arch, "vocab_size": src["vocab_size"], "pad_id": src["pad_id"],
                                 "hidden_size": 32, "num_layers": 1, "max_position": 64, **extra})
    torch.manual_seed(0)
    if out.exists():
        shutil.rmtree(out)
    ckpt.save_checkpoint(out, build_pretraining_model(cfg), cfg.to_dict(), ckpt.tokenizer_path(source_ckpt),
                         {"kind": "pretrain", "step": 0})
    return out


def run(checkpoint, files, out, **kw):
    base = dict(checkpoint=str(checkpoint), train=str(files["train"]), valid=str(files["valid"]), out=str(out),
                task="token", max_len=12, window_overlap=4, epochs=3, device="cpu", progress=False)
    return finetune(FinetuneConfig(**{**base, **kw}))


def test_bert_token_classifier_learns_and_records_its_tags(tiny_token_classifier, ner_files):
    cfg, meta = ckpt.read_meta(tiny_token_classifier)
    assert meta["kind"] == "token_classifier" and meta["max_len"] == 12 and meta["token"]["overlap"] == 4
    assert cfg["label_names"] == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert cfg["num_labels"] == 7
    scores = meta["valid_scores"]
    assert scores["micro_f1"] > 0.5 and scores["token_accuracy"] > 0.85  # from 0 entities at epoch 0
    assert meta["selection"]["metric"] == "entity_micro_f1" and meta["checks"]["baseline"] == "most_frequent_tag"
    # the selection score is the entity micro-F1 that bmf evaluate computes on the same file
    from bigmodel_fast.eval.evaluate import evaluate

    report = evaluate(tiny_token_classifier, ner_files["valid"], device="cpu")
    assert report["entity"]["micro"]["f1"] == pytest.approx(scores["micro_f1"], abs=1e-12)
    assert report["token_accuracy"] == pytest.approx(scores["token_accuracy"], abs=1e-12)


@pytest.mark.parametrize("arch", ["gpt", "lstm"])
def test_other_backbones_train_token_classifiers(tiny_pretrained, ner_files, tmp_path, arch):
    src = untrained(tiny_pretrained, tmp_path / "src", arch)
    from bigmodel_fast.train.optim import FinetuneOptimConfig

    # an untrained 32-wide LSTM needs a larger step than the auto lr (1e-3) to leave all-O within 4 epochs
    optim = FinetuneOptimConfig(lr=1e-2 if arch == "lstm" else None, weight_decay=0.01)
    summary = run(src, ner_files, tmp_path / "ft", epochs=4, optim=optim)
    assert summary["task"] == "token" and summary["train_windows"] > summary["train_examples"]
    assert summary["best_valid"]["token_accuracy"] > 0.6
    cfg, meta = ckpt.read_meta(summary["checkpoint"])
    assert cfg["arch"] == arch and meta["kind"] == "token_classifier"
    losses = [json.loads(line)["loss"] for line in open(tmp_path / "ft" / "metrics.jsonl") if '"loss"' in line]
    assert losses[-1] < losses[0]


def test_long_sentences_become_windows_not_truncation(tiny_pretrained, tmp_path):
    rows = sentences(40, 3, max_words=40)
    files = {"train": write_jsonl(tmp_path / "t.jsonl", rows), "valid": write_jsonl(tmp_path / "v.jsonl", rows[:10])}
    summary = run(tiny_pretrained, files, tmp_path / "ft", epochs=1, max_len=10, window_overlap=3)
    assert summary["train_windows"] > 2 * len(rows)
    from bigmodel_fast.eval.token_predict import TokenPredictor

    tags = TokenPredictor(summary["checkpoint"], device="cpu").tag([t for t, _ in rows[:10]])
    assert [len(t) for t in tags] == [len(t) for t, _ in rows[:10]]  # every word of a long sentence is tagged


def test_bioes_files_train_the_same_bio_labels(tiny_pretrained, ner_files, tmp_path):
    from bigmodel_fast.data.token_tags import to_bioes

    rows = [(t, to_bioes(g)) for t, g in sentences(120, 0)]
    files = {"train": write_conll(tmp_path / "t.bioes", rows), "valid": ner_files["valid"]}
    summary = run(tiny_pretrained, files, tmp_path / "ft", epochs=1)
    assert summary["labels"] == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert ckpt.read_meta(summary["checkpoint"])[1]["source_scheme"] == "bioes"


def test_bad_sentences_are_skipped_and_counted(tiny_pretrained, ner_files, tmp_path):
    lines = [json.dumps({"tokens": t, "tags": g}) for t, g in sentences(60, 0)]
    lines.insert(3, json.dumps({"tokens": ["a", "b"], "tags": ["O"]}))  # count mismatch
    lines.insert(7, "{not json")
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = run(tiny_pretrained, {"train": tmp_path / "t.jsonl", "valid": ner_files["valid"]}, tmp_path / "ft",
                  epochs=1)
    assert summary["skipped_sentences"] == 2 and summary["train_examples"] == 60


def test_refusals(tiny_pretrained, ner_files, tmp_path):
    only_o = write_jsonl(tmp_path / "o.jsonl", [(["a", "b"], ["O", "O"])] * 5)
    with pytest.raises(ValueError, match="no entity tags"):
        run(tiny_pretrained, {"train": only_o, "valid": ner_files["valid"]}, tmp_path / "a")
    other = write_jsonl(tmp_path / "v.jsonl", [(["x"], ["B-MISC"])])
    with pytest.raises(ValueError, match=r"entity types \['MISC'\] do not occur"):
        run(tiny_pretrained, {"train": ner_files["train"], "valid": other}, tmp_path / "b")
    with pytest.raises(ValueError, match="--class-weights"):
        run(tiny_pretrained, ner_files, tmp_path / "c", class_weights="auto")


def test_token_checkpoint_continues_with_its_head_or_refuses_other_tags(tiny_token_classifier, ner_files, tmp_path):
    summary = run(tiny_token_classifier, ner_files, tmp_path / "again", epochs=1)
    assert ckpt.read_meta(summary["checkpoint"])[1]["head"].startswith("kept from")
    fewer = write_jsonl(tmp_path / "per.jsonl", [(["Alice", "ran"], ["B-PER", "O"])] * 20)
    with pytest.raises(ValueError, match="--new-head"):
        run(tiny_token_classifier, {"train": fewer, "valid": fewer}, tmp_path / "x")
    summary = run(tiny_token_classifier, {"train": fewer, "valid": fewer}, tmp_path / "y", new_head=True, epochs=1)
    assert summary["labels"] == ["O", "B-PER", "I-PER"]


def test_cli_bad_file_exits_2(tiny_pretrained, tmp_path, capsys):
    from bigmodel_fast.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"tokens": ["a"], "tags": ["O"]}\n\xff\xfe\n')
    code = main(["finetune", "--checkpoint", str(tiny_pretrained), "--train", str(bad), "--out", str(tmp_path / "o"),
                 "--task", "token", "--no-progress"])
    assert code == 2
    assert f"{bad}:2: not valid UTF-8" in capsys.readouterr().err


def test_tensorboard_and_curves_of_a_token_run(tiny_pretrained, ner_files, tmp_path):
    pytest.importorskip("tensorboard", reason="--tensorboard needs the plots extra")
    pytest.importorskip("matplotlib", reason="bmf plot needs the plots extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from bigmodel_fast.eval.run_plots import plot_runs

    run(tiny_pretrained, ner_files, tmp_path / "ft", epochs=2, tensorboard=True, log_every=5)
    records = [json.loads(line) for line in open(tmp_path / "ft" / "metrics.jsonl")]
    acc = EventAccumulator(str(tmp_path / "ft"))
    acc.Reload()
    logged = {r["step"]: r["valid_micro_f1"] for r in records if "valid_micro_f1" in r}
    assert len(logged) == 2
    events = {e.step: e.value for e in acc.Scalars("valid_micro_f1")}
    assert events == pytest.approx(logged)
    curves = plot_runs([str(tmp_path / "ft")], str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 5000
    (series,) = curves["runs"].values()
    assert series["loss"]["values"] == pytest.approx([r["loss"] for r in records if "loss" in r])
