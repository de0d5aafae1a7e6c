"""Multi-label, regression and long documents through Predictor, `bmf predict` and `bmf evaluate`: chunked
prediction is the mean of the per-window logits; the metrics equal scikit-learn's on the same predictions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bigmodel_fast.cli import main
from bigmodel_fast.data.long_text import encode_long
from bigmodel_fast.eval.predict import Predictor

from ..export.task_models import TEXTS, make_classifier
from .eval_helpers import one_line_error

MULTI = ["art", "sport", "tech"]


@pytest.fixture(scope="module")
def multi_chunks(tiny_pretrained, tmp_path_factory):
    return make_classifier(tiny_pretrained, tmp_path_factory.mktemp("multi") / "ckpt", "multi_label", MULTI,
                           long_text={"mode": "chunks", "stride": 5}, thresholds=[0.5, 0.4, 0.6])


@pytest.fixture(scope="module")
def regression_head_tail(tiny_pretrained, tmp_path_factory):
    return make_classifier(tiny_pretrained, tmp_path_factory.mktemp("reg") / "ckpt", "regression", ["score"],
                           long_text={"mode": "head-tail", "stride": 0}, seed=1)


def direct_logits(checkpoint, texts, mode, stride, max_len=16) -> torch.Tensor:
    """Each window through the model alone (batch of one, no padding), then the mean per text."""
    from bigmodel_fast import checkpoint as ckpt

    model, _, _ = ckpt.load_model(checkpoint, "classifier")
    model.eval()
    tok = Predictor(checkpoint, device="cpu").tokenizer
    enc = encode_long(tok, texts, max_len, mode, stride)
    with torch.no_grad():
        rows = [model(torch.tensor([s]), torch.ones(1, len(s), dtype=torch.bool))[0] for s in enc.seqs]
    return torch.stack([torch.stack([r for r, o in zip(rows, enc.owner) if o == i]).mean(0)
                        for i in range(len(texts))])


def test_chunked_prediction_is_the_mean_of_the_window_logits(multi_chunks):
    p = Predictor(multi_chunks, device="cpu")
    assert p.long_text == ("chunks", 5) and p.spec.problem_type == "multi_label"
    enc = p.encode_windows(TEXTS)
    assert len(enc.seqs) > 2 * len(TEXTS)  # the long texts really are cut into several windows
    got = p.predict_logits(TEXTS, batch_size=4)  # length-sorted, padded batches
    torch.testing.assert_close(got, direct_logits(multi_chunks, TEXTS, "chunks", 5), atol=1e-5, rtol=0)
    # texts predicted one by one give the same rows as a whole batch
    one = torch.cat([p.predict_logits([t]) for t in TEXTS])
    torch.testing.assert_close(one, got, atol=1e-5, rtol=0)


def test_multilabel_records_follow_the_thresholds(multi_chunks):
    p = Predictor(multi_chunks, device="cpu")
    probs = torch.sigmoid(direct_logits(multi_chunks, TEXTS, "chunks", 5).double())
    for rec, row in zip(p.predict(TEXTS), probs):
        assert list(rec) == ["labels", "probabilities"]
        assert rec["labels"] == [n for n, q, t in zip(MULTI, row.tolist(), [0.5, 0.4, 0.6]) if q >= t]
        assert rec["probabilities"] == pytest.approx(dict(zip(MULTI, row.tolist())), abs=1e-6)


def test_regression_values_and_head_tail(regression_head_tail):
    p = Predictor(regression_head_tail, device="cpu")
    recs = p.predict(TEXTS)
    want = direct_logits(regression_head_tail, TEXTS, "head-tail", 0)[:, 0]
    assert [list(r) for r in recs] == [["value"]] * len(TEXTS)
    np.testing.assert_allclose([r["value"] for r in recs], want.numpy(), atol=1e-5, rtol=0)


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_evaluate_multilabel_equals_sklearn(multi_chunks, tmp_path, capsys):
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    gold = [["art"], [], ["sport", "tech"], ["tech"], ["art", "sport", "tech"], ["sport"]]
    data = write_jsonl(tmp_path / "multi.jsonl", [{"text": t, "label": g} for t, g in zip(TEXTS, gold)])
    out = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(multi_chunks), "--data", str(data), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert "micro F1" in capsys.readouterr().out
    report = json.loads(out.read_text())
    probs = torch.sigmoid(direct_logits(multi_chunks, TEXTS, "chunks", 5).double()).numpy()
    y_pred = (probs >= np.array([0.5, 0.4, 0.6])).astype(int)
    y_true = np.array([[int(n in g) for n in MULTI] for g in gold])
    assert 0 < y_pred.sum() < y_pred.size  # the oracle sees both decisions
    assert report["problem_type"] == "multi_label" and report["examples"] == len(TEXTS)
    assert report["micro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="micro", zero_division=0), abs=1e-12)
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    assert report["subset_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    for i, name in enumerate(MULTI):
        r = report["per_label"][name]
        assert r["precision"] == pytest.approx(precision_score(y_true[:, i], y_pred[:, i], zero_division=0))
        assert r["recall"] == pytest.approx(recall_score(y_true[:, i], y_pred[:, i], zero_division=0))
        assert r["support"] == int(y_true[:, i].sum())


def test_evaluate_regression_equals_sklearn_and_scipy(regression_head_tail, tmp_path, capsys):
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_absolute_error, mean_squared_error

    gold = [0.5, -1.0, 2.0, 3.5, 0.0, 1.25]
    data = write_jsonl(tmp_path / "reg.jsonl", [{"text": t, "label": g} for t, g in zip(TEXTS, gold)])
    assert main(["evaluate", "--model", str(regression_head_tail), "--data", str(data), "--device", "cpu"]) == 0
    assert "spearman" in capsys.readouterr().out
    from bigmodel_fast.eval.evaluate import evaluate

    report = evaluate(regression_head_tail, data, device="cpu")
    pred = direct_logits(regression_head_tail, TEXTS, "head-tail", 0)[:, 0].double().numpy()
    assert report["problem_type"] == "regression"
    assert report["mse"] == pytest.approx(mean_squared_error(gold, pred), rel=1e-5)
    assert report["mae"] == pytest.approx(mean_absolute_error(gold, pred), rel=1e-5)
    assert report["pearson"] == pytest.approx(pearsonr(gold, pred)[0], abs=1e-5)
    assert report["spearman"] == pytest.approx(spearmanr(gold, pred)[0], abs=1e-9)


def test_predict_cli_writes_the_problem_type_records(multi_chunks, regression_head_tail, capsys):
    assert main(["predict", "--model", str(multi_chunks), "--text", TEXTS[3], "--device", "cpu"]) == 0
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    assert set(rec) >= {"labels", "probabilities"} and "label" not in rec
    assert main(["predict", "--model", str(regression_head_tail), "--text", "ok", "--device", "cpu"]) == 0
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    assert isinstance(rec["value"], float) and "probabilities" not in rec


def test_evaluate_bad_labels_for_the_problem_type(multi_chunks, regression_head_tail, tmp_path, capsys):
    data = write_jsonl(tmp_path / "bad.jsonl", [{"text": "a", "label": ["art", "poetry"]}])
    assert main(["evaluate", "--model", str(multi_chunks), "--data", str(data), "--device", "cpu"]) == 2
    one_line_error(capsys, "poetry", "not among the model's labels")
    data = write_jsonl(tmp_path / "bad_reg.jsonl", [{"text": "a", "label": "high"}])
    assert main(["evaluate", "--model", str(regression_head_tail), "--data", str(data), "--device", "cpu"]) == 2
    one_line_error(capsys, f"{data}:1", "not a number")
