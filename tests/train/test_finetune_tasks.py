"""Multi-label and regression fine-tuning: labels read from JSONL lists / CSV with a separator / numbers, the
problem type, thresholds and target scale in the checkpoint, and metrics equal to scikit-learn's."""

import json

import numpy as np
import pytest
import torch

from bigmodel_fast import checkpoint as ckpt
from bigmodel_fast.cli import main
from bigmodel_fast.data.classification import encode_for_classifier, read_labelled
from bigmodel_fast.data.tokenizer_base import load_tokenizer
from bigmodel_fast.eval.metrics import multilabel_report, regression_report
from bigmodel_fast.inference import predict_logits
from bigmodel_fast.train.finetune import FinetuneConfig, finetune
from bigmodel_fast.train.optim import FinetuneOptimConfig

from .finetune_helpers import FILLER, write_jsonl

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the oracle for the metrics")
TAGS = {"red": "apple", "green": "leaf", "blue": "sky"}


def tagged_rows(n: int, seed: int) -> list[dict]:
    """Texts holding the keywords of a random subset of TAGS; label = that subset (a JSON list), value = a number
    that grows with the keyword count (for regression)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        tags = [t for t in sorted(TAGS) if rng.random() < 0.4]
        words = list(rng.choice(FILLER, 5)) + [TAGS[t] for t in tags]
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": tags, "value": 10.0 + 4.0 * len(tags)})
    return rows


def _outputs(checkpoint, rows):
    model, cfg, meta = ckpt.load_model(checkpoint, "classifier")
    tok = load_tokenizer(ckpt.tokenizer_path(checkpoint))
    logits = predict_logits(model, encode_for_classifier(tok, [r["text"] for r in rows], meta["max_len"]),
                            tok.pad_id, 64, torch.device("cpu"))
    return logits, cfg, meta


FAST = dict(max_len=16, epochs=8, patience=0, optim=FinetuneOptimConfig(lr=2e-3), device="cpu", progress=False)


def test_multi_label_training_and_metrics(untrained_tiny, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", tagged_rows(160, 1))
    valid_rows = tagged_rows(60, 2)
    valid = write_jsonl(tmp_path / "valid.jsonl", valid_rows)
    summary = finetune(FinetuneConfig(checkpoint=str(untrained_tiny), train=str(train), valid=str(valid),
                                      out=str(tmp_path / "ft"), **FAST))
    assert summary["task"] == "multi-label" and summary["labels"] == ["blue", "green", "red"]
    logits, cfg, meta = _outputs(summary["checkpoint"], valid_rows)
    assert cfg.problem_type == "multi_label" and cfg.num_labels == 3 and cfg.label_names == ["blue", "green", "red"]
    thresholds = meta["thresholds"]
    assert len(thresholds) == 3 and all(0.05 <= t <= 0.95 for t in thresholds)
    assert summary["thresholds"] == thresholds
    y_pred = (torch.sigmoid(logits).numpy() >= np.array(thresholds)).astype(int)
    y_true = np.array([[int(t in r["label"]) for t in cfg.label_names] for r in valid_rows])
    rep = multilabel_report(y_true, y_pred, cfg.label_names)
    assert rep["micro_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="micro", zero_division=0), abs=1e-12)
    assert rep["macro_f1"] == pytest.approx(sk.f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    # the saved model and thresholds give the macro-F1 the run selected by
    assert summary["best_valid_macro_f1"] == pytest.approx(rep["macro_f1"], abs=1e-9)
    assert rep["macro_f1"] >= 0.75 > summary["checks"]["majority"], rep  # every label for every text: 0.63
    assert summary["selection"]["metric"] == "macro_f1"


def test_regression_training_scale_and_metrics(untrained_tiny, tmp_path):
    rows = [{"text": r["text"], "label": r["value"]} for r in tagged_rows(220, 3)]
    train, valid_rows = write_jsonl(tmp_path / "train.jsonl", rows[:160]), rows[160:]
    valid = write_jsonl(tmp_path / "valid.jsonl", valid_rows)
    summary = finetune(FinetuneConfig(checkpoint=str(untrained_tiny), train=str(train), valid=str(valid),
                                      out=str(tmp_path / "ft"), task="regression", **FAST))
    logits, cfg, meta = _outputs(summary["checkpoint"], valid_rows)
    assert cfg.problem_type == "regression" and cfg.num_labels == 1 and cfg.label_names == ["label"]
    y = np.array([r["label"] for r in rows[:160]])
    assert meta["target_mean"] == pytest.approx(y.mean()) and meta["target_std"] == pytest.approx(y.std())
    pred, truth = logits.numpy()[:, 0].astype(np.float64), np.array([r["label"] for r in valid_rows])
    rep = regression_report(truth, pred)  # the saved head outputs the data's scale: nothing to un-normalise
    assert rep["mse"] == pytest.approx(sk.mean_squared_error(truth, pred), rel=1e-12)
    assert rep["mse"] == pytest.approx(summary["best_valid"]["mse"], rel=1e-4)
    assert summary["selection"]["metric"] == "mse"
    assert rep["pearson"] >= 0.8 and rep["mse"] < 0.5 * truth.var(), rep


def test_label_formats(tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text('text,label\nfirst,a|b\nsecond, b \nthird,"[""c""]"\nfourth,[]\n', encoding="utf-8")
    got = read_labelled(csv, task="multi-label")
    assert got.labels == [["a", "b"], ["b"], ["c"], []] and got.task == "multi-label"
    assert read_labelled(csv, task="auto").task == "multi-label"  # a JSON list appears
    assert read_labelled(csv, task="multi-label", label_sep=";").labels[0] == ["a|b"]
    jl = write_jsonl(tmp_path / "m.jsonl", [{"text": "x", "label": ["b", "a", "b"]}, {"text": "y", "label": "c"}])
    assert read_labelled(jl, task="auto").labels == [["a", "b"], ["c"]]
    plain = write_jsonl(tmp_path / "p.jsonl", [{"text": "x", "label": "a|b"}])
    assert read_labelled(plain, task="auto").task == "single-label"
    num = write_jsonl(tmp_path / "n.jsonl", [{"text": "x", "label": 1.5}, {"text": "y", "label": "-2"}])
    assert read_labelled(num, task="regression").labels == [1.5, -2.0]


@pytest.mark.parametrize("rows,task,message", [
    ([{"text": "x", "label": 1}, {"text": "y", "label": "high"}], "regression",
     r"bad.jsonl:2: 'label' 'high' is not a number \(--task regression\)"),
    ([{"text": "x", "label": "nan"}], "regression", r"bad.jsonl:1: 'label' 'nan' is not a finite number"),
    ([{"text": "x", "label": "[\"a\", "}], "multi-label", r"bad.jsonl:1: 'label' .* is not a valid JSON list"),
    ([{"text": "x", "label": ["a", {"b": 1}]}], "multi-label", r"bad.jsonl:1: 'label' holds \{'b': 1\}"),
    ([{"text": "x", "label": ["a", " "]}], "multi-label", r"bad.jsonl:1: 'label' .* holds an empty label name"),
])
def test_bad_labels_name_file_and_line(tmp_path, rows, task, message):
    bad = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ValueError, match=message):
        read_labelled(bad, task=task)


def test_task_flag_errors_exit_2(tiny_pretrained, tiny_classifier, tmp_path, capsys):
    rows = write_jsonl(tmp_path / "r.jsonl", [{"text": f"t {i}", "label": str(i % 2)} for i in range(20)])
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "a", "label": "1.5"}, {"text": "b", "label": "x"}])
    common = ["finetune", "--out", str(tmp_path / "o"), "--max-len", "16", "--max-steps", "1", "--device", "cpu",
              "--no-progress"]
    cases = [
        (["--checkpoint", str(tiny_pretrained), "--train", str(bad), "--task", "regression"], "bad.jsonl:2: 'label'"),
        (["--checkpoint", str(tiny_pretrained), "--train", str(rows), "--task", "regression", "--class-weights",
          "auto"], "class_weights 'auto' needs labels"),
        (["--checkpoint", str(tiny_classifier), "--train", str(rows), "--task", "regression"],
         "the classifier is 'single_label' but the run is --task regression; pass --new-head"),
    ]
    for flags, message in cases:
        assert main([*common, *flags]) == 2, flags
        err = capsys.readouterr().err.strip().splitlines()
        assert message in err[-1] and err[-1].startswith("bmf finetune: error:"), err
    assert not (tmp_path / "o" / "checkpoint").exists()


def test_regression_head_folding_is_exact():
    from bigmodel_fast.train.objectives import Regression

    obj = Regression([10.0, 14.0, 18.0])
    head = torch.nn.Linear(4, 1)
    model = torch.nn.Module()
    model.classifier = head
    x = torch.randn(3, 4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded_head = torch.nn.Linear(4, 1)
    folded_head.load_state_dict({k.split(".", 1)[1]: v for k, v in obj.fold_state(model.state_dict()).items()})
    folded = folded_head(x)
    assert torch.allclose(folded[:, 0].double(), torch.tensor(obj.predict(head(x).detach())), atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert obj.targets([14.0]).item() == pytest.approx(0.0) and json.dumps(obj.meta())
