import itertools

import numpy as np
import pytest

from bigmodel_fast.eval.metrics import classification_report, confusion_matrix, format_report, roc_auc


def _brute(y_true, y_pred, c):
    tp = sum(1 for t, p in zip(y_true, y_pred) if t == p == c)
    pred_c = sum(1 for p in y_pred if p == c)
    true_c = sum(1 for t in y_true if t == c)
    prec = tp / pred_c if pred_c else 0.0
    rec = tp / true_c if true_c else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f1


def test_report_matches_brute_force():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 3, 500))
    y_pred[y_pred == 2] = 1  # class 2 never predicted: precision 0 by convention, no NaN
    rep = classification_report(y_true, y_pred, ["a", "b", "c"])
    assert rep["accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    for c, name in enumerate("abc"):
        p, r, f = _brute(y_true, y_pred, c)
        got = rep["per_class"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p, r, f))
        assert got["support"] == int((y_true == c).sum())
    cm = np.array(rep["confusion_matrix"])
    for t, p in itertools.product(range(3), range(3)):
        assert cm[t, p] == int(((y_true == t) & (y_pred == p)).sum())
    assert rep["macro"]["f1"] == pytest.approx(np.mean([_brute(y_true, y_pred, c)[2] for c in range(3)]))
    table = format_report(rep)
    assert "accuracy" in table and "macro" in table and "confusion" in table


def test_roc_auc_matches_pairwise_count_with_ties():
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.4
    s = np.round(rng.random(300) + 0.3 * y, 1)  # rounding makes ties
    pos, neg = s[y], s[~y]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(y, s) == pytest.approx(brute)
    assert roc_auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_confusion_matrix_rejects_bad_ids():
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)
