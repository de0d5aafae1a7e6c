"""Multi-label and regression metrics against scikit-learn (and scipy for the correlations when installed)."""

import numpy as np
import pytest

from bigmodel_fast.eval.metrics import average_ranks, multilabel_report, regression_report

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is the oracle for these metrics")


def _multilabel_case(seed: int = 0, n: int = 300, labels: int = 5):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, labels)) < 0.3).astype(int)
    flip = rng.random((n, labels)) < 0.2
    y_pred = np.where(flip, 1 - y_true, y_true)
    y_pred[:, 4] = 0  # a label never predicted: precision and F1 0 by convention
    y_true[:, 3] = 0  # a label never true (but sometimes predicted)
    return y_true, y_pred


def test_multilabel_report_equals_sklearn():
    y_true, y_pred = _multilabel_case()
    names = ["a", "b", "c", "d", "e"]
    rep = multilabel_report(y_true, y_pred, names)
    kw = {"zero_division": 0}
    assert rep["micro_f1"] == pytest.approx(sklearn_metrics.f1_score(y_true, y_pred, average="micro", **kw), abs=1e-12)
    assert rep["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(y_true, y_pred, average="macro", **kw), abs=1e-12)
    assert rep["subset_accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y_true, y_pred), abs=1e-12)
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(y_true, y_pred, **kw)
    for i, name in enumerate(names):
        got = rep["per_label"][name]
        assert (got["precision"], got["recall"], got["f1"]) == pytest.approx((p[i], r[i], f[i]), abs=1e-12)
        assert got["support"] == int(s[i])
    assert rep["per_label"]["e"]["f1"] == 0.0 and rep["per_label"]["d"]["support"] == 0
    assert rep["examples"] == 300


def test_multilabel_report_bad_input():
    with pytest.raises(ValueError, match=r"\(N, 2\) 0/1 array"):
        multilabel_report(np.zeros((3, 3)), np.zeros((3, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="only 0 and 1"):
        multilabel_report(np.full((2, 2), 2), np.zeros((2, 2)), ["a", "b"])


def _reference_ranks(x):
    """Average ranks by brute force: 1 + (number smaller) + (number equal - 1) / 2."""
    x = list(x)
    return np.array([1 + sum(v < xi for v in x) + (sum(v == xi for v in x) - 1) / 2 for xi in x])


def _reference_pearson(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = sum((x - ma) ** 2 for x in a)
    vb = sum((y - mb) ** 2 for y in b)
    return cov / (va * vb) ** 0.5


def test_regression_report_equals_sklearn_and_references():
    rng = np.random.default_rng(1)
    y_true = np.round(rng.normal(3.0, 2.0, 200), 1)  # rounded: ties for the ranks
    y_pred = np.round(y_true + rng.normal(0, 1.0, 200), 0)  # many ties
    rep = regression_report(y_true, y_pred.reshape(-1, 1))
    assert rep["mse"] == pytest.approx(sklearn_metrics.mean_squared_error(y_true, y_pred), rel=1e-12)
    assert rep["mae"] == pytest.approx(sklearn_metrics.mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert np.array_equal(average_ranks(y_pred), _reference_ranks(y_pred))
    assert rep["pearson"] == pytest.approx(_reference_pearson(y_true, y_pred), abs=1e-12)
    spearman = _reference_pearson(_reference_ranks(y_true), _reference_ranks(y_pred))
    assert rep["spearman"] == pytest.approx(spearman, abs=1e-12)
    assert rep["spearman"] != pytest.approx(rep["pearson"], abs=1e-3)  # the two differ on this data
    try:
        from scipy import stats
    except ImportError:
        return
    assert rep["pearson"] == pytest.approx(stats.pearsonr(y_true, y_pred)[0], abs=1e-12)
    assert rep["spearman"] == pytest.approx(stats.spearmanr(y_true, y_pred)[0], abs=1e-12)


def test_regression_report_edge_cases():
    rep = regression_report([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert np.isnan(rep["pearson"]) and np.isnan(rep["spearman"]) and rep["mse"] == pytest.approx(2 / 3)
    assert regression_report([], [])["examples"] == 0
    with pytest.raises(ValueError, match="differ in length"):
        regression_report([1.0, 2.0], [1.0])
