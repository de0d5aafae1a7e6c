"""Evaluation figures: each PNG decodes and is not blank, and the numbers drawn are the report's."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the figures need matplotlib (the plots extra)")

from bigmodel_fast.eval import plots  # noqa: E402
from bigmodel_fast.eval.entity_metrics import entity_scores  # noqa: E402
from bigmodel_fast.eval.metrics import classification_report, multilabel_report, regression_report  # noqa: E402
from bigmodel_fast.optional import MissingDependencyError, require  # noqa: E402

LABELS = ["neg", "neu", "pos", "none"]  # "none" never occurs in y_true


def _png(path, size):
    """The decoded image (H, W, channels); asserts its size and that it holds a real drawing."""
    from matplotlib.image import imread

    img = imread(str(path))
    assert img.shape[:2] == (size[1], size[0])  # image_size is [width, height]
    assert img.shape[0] >= 300 and img.shape[1] >= 300
    rgb = np.round(img[..., :3] * 255).astype(np.uint32).reshape(-1, 3)
    colours = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2])
    assert len(colours) > 50  # lines, text and colour maps, not one flat colour
    white = np.all(rgb > 252, axis=1).mean()
    assert 0.05 < white < 0.995
    return img


@pytest.fixture(scope="module")
def multiclass():
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, len(LABELS)))
    logits[np.arange(n), y] += 1.2
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    probs = np.round(probs, 2)  # many tied scores: the tie rules must agree too
    return y, probs, classification_report(y, probs.argmax(-1), LABELS, probs=probs)


def test_classification_plots_draw_the_reports_numbers(multiclass, tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    y, probs, report = multiclass
    out = plots.write_classification_plots(tmp_path / "figs", y, probs, LABELS, report)
    assert set(out) == {"confusion", "roc", "pr"}
    for name, entry in out.items():
        assert entry["path"] == str(tmp_path / "figs" / f"{name}.png")
        _png(entry["path"], entry["data"]["image_size"])

    cm = out["confusion"]["data"]
    assert cm["counts"] == report["confusion_matrix"] and cm["labels"] == LABELS and cm["annotated"]
    rates = np.array(cm["normalised"])
    assert np.allclose(rates[:3].sum(axis=1), 1.0) and rates[3].tolist() == [0.0] * 4  # the empty row: 0, not NaN
    counts = np.array(report["confusion_matrix"])
    assert rates[1, 2] == counts[1, 2] / counts[1].sum()

    roc = out["roc"]["data"]
    assert roc["mode"] == "one-vs-rest" and list(roc["curves"]) == LABELS[:3]
    assert roc["skipped"] == {"none": "no examples"} and np.isnan(report["roc_auc"]["none"])
    for i, name in enumerate(LABELS[:3]):
        curve = roc["curves"][name]
        assert curve["auc"] == report["roc_auc"][name]  # the same function, the same float
        assert curve["auc"] == pytest.approx(roc_auc_score(y == i, probs[:, i]), rel=1e-12)
        assert np.trapezoid(curve["tpr"], curve["fpr"]) == pytest.approx(curve["auc"], rel=1e-12)  # curve = AUC
        assert curve["fpr"][0] == curve["tpr"][0] == 0.0 and curve["fpr"][-1] == curve["tpr"][-1] == 1.0

    pr = out["pr"]["data"]
    assert list(pr["curves"]) == LABELS[:3] and pr["skipped"] == {"none": "no examples"}
    for i, name in enumerate(LABELS[:3]):
        curve = pr["curves"][name]
        assert curve["average_precision"] == pytest.approx(average_precision_score(y == i, probs[:, i]), rel=1e-12)
        assert curve["prevalence"] == pytest.approx(np.mean(y == i))
        assert curve["recall"][0] == 1.0 and curve["recall"][-1] == 0.0 and curve["precision"][-1] == 1.0


def test_binary_draws_one_curve_of_the_positive_class(tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 120)
    p1 = np.clip(0.35 * y + 0.65 * rng.random(120), 0, 1)
    probs = np.stack([1 - p1, p1], axis=1)
    report = classification_report(y, probs.argmax(-1), ["neg", "pos"], probs=probs)
    roc = plots.roc_figure(y, probs, ["neg", "pos"], tmp_path / "roc.png")
    assert roc["mode"] == "binary" and list(roc["curves"]) == ["pos"]
    assert roc["curves"]["pos"]["auc"] == report["roc_auc"]["pos"]
    assert roc["curves"]["pos"]["auc"] == pytest.approx(roc_auc_score(y, p1), rel=1e-12)
    pr = plots.pr_figure(y, probs, ["neg", "pos"], tmp_path / "pr.png")
    assert list(pr["curves"]) == ["pos"]
    assert pr["curves"]["pos"]["average_precision"] == pytest.approx(average_precision_score(y, p1), rel=1e-12)
    _png(roc["path"], roc["image_size"])
    _png(pr["path"], pr["image_size"])

    only_neg = plots.roc_figure(np.zeros(10, int), np.tile([[0.6, 0.4]], (10, 1)), ["neg", "pos"],
                                tmp_path / "none.png")
    assert only_neg["curves"] == {} and only_neg["skipped"] == {"pos": "no examples"}


def test_curve_helpers_match_sklearn_on_ties_and_edge_cases():
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    rng = np.random.default_rng(2)
    for trial in range(20):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        score = np.round(rng.random(n), int(rng.integers(1, 3)))
        fpr, tpr = plots.roc_curve(y, score)
        sk_fpr, sk_tpr, _ = roc_curve(y, score, drop_intermediate=False)
        np.testing.assert_allclose(fpr, sk_fpr[-len(fpr):], rtol=0, atol=1e-15)  # sklearn may add an inf threshold
        np.testing.assert_allclose(tpr, sk_tpr[-len(tpr):], rtol=0, atol=1e-15)
        recall, precision = plots.pr_curve(y, score)
        sk_p, sk_r, _ = precision_recall_curve(y, score)
        np.testing.assert_array_equal(recall, sk_r)
        np.testing.assert_array_equal(precision, sk_p)
        assert plots.average_precision(y, score) == average_precision_score(y, score)
    assert np.isnan(plots.average_precision([0, 0], [0.2, 0.4]))


def test_big_confusion_matrix_skips_the_cell_numbers(tmp_path):
    C = plots.ANNOTATE_MAX_CLASSES + 5
    m = np.diag(np.arange(1, C + 1))
    m[0, 1] = 3
    data = plots.confusion_matrix_figure(m, [f"c{i}" for i in range(C)], tmp_path / "big.png")
    assert not data["annotated"] and data["counts"] == m.tolist()
    assert data["normalised"][0] == pytest.approx([1 / 4, 3 / 4] + [0.0] * (C - 2))
    _png(data["path"], data["image_size"])
    with pytest.raises(ValueError, match=r"shape \(2, 2\) for 3 labels"):
        plots.confusion_matrix_figure([[1, 0], [0, 1]], ["a", "b", "c"], tmp_path / "bad.png")


def test_entity_bars_and_tag_confusion(tmp_path):
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "B-PER"], ["B-LOC", "I-LOC", "O"]]
    y_pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O", "O"], ["B-LOC", "I-LOC", "O"]]
    report = entity_scores(y_true, y_pred)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]
    index = {t: i for i, t in enumerate(tags)}
    cm = np.zeros((len(tags), len(tags)), int)
    for t, p in zip(sum(y_true, []), sum(y_pred, [])):
        cm[index[t], index[p]] += 1
    out = plots.write_token_plots(tmp_path, report, tag_confusion=cm, tag_labels=tags)
    assert set(out) == {"entity_types", "tag_confusion"}
    bars = out["entity_types"]["data"]
    assert bars["groups"] == ["LOC", "ORG", "PER", "micro", "macro"]
    rows = [*(report["per_type"][t] for t in ("LOC", "ORG", "PER")), report["micro"], report["macro"]]
    for key in ("precision", "recall", "f1", "support"):
        assert bars[key] == [r[key] for r in rows]
    assert bars["support"][:3] == [2, 1, 2]
    assert out["tag_confusion"]["data"]["counts"] == cm.tolist()
    for entry in out.values():
        _png(entry["path"], entry["data"]["image_size"])
    assert set(plots.write_token_plots(tmp_path / "only", report)) == {"entity_types"}


def test_multilabel_and_regression_plots(tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    names = ["x", "y", "z"]
    y = rng.integers(0, 2, (80, 3))
    y[:, 2] = 0  # label z never true: no curve
    probs = np.clip(0.4 * y + 0.6 * rng.random((80, 3)), 0, 1)
    report = multilabel_report(y, (probs >= 0.5).astype(int), names)
    out = plots.write_evaluation_plots(tmp_path / "ml", "multi_label", y, probs, names, report)
    assert set(out) == {"roc", "pr", "labels"}
    roc, pr = out["roc"]["data"], out["pr"]["data"]
    assert roc["mode"] == "per-label" and list(roc["curves"]) == ["x", "y"] and roc["skipped"] == {"z": "no examples"}
    for i, name in enumerate(["x", "y"]):
        assert roc["curves"][name]["auc"] == pytest.approx(roc_auc_score(y[:, i], probs[:, i]), rel=1e-12)
        assert pr["curves"][name]["average_precision"] == pytest.approx(
            average_precision_score(y[:, i], probs[:, i]), rel=1e-12)
    assert out["labels"]["data"]["f1"] == [report["per_label"][n]["f1"] for n in names]

    yt = rng.normal(size=40)
    yp = yt + 0.3 * rng.normal(size=40)
    reg = plots.write_evaluation_plots(tmp_path / "reg", "regression", yt, yp[:, None], [])
    data = reg["scatter"]["data"]
    assert data["true"] == yt.tolist() and data["pred"] == yp.tolist()
    assert data["mse"] == regression_report(yt, yp)["mse"]
    for entry in (*out.values(), reg["scatter"]):
        _png(entry["path"], entry["data"]["image_size"])
    with pytest.raises(ValueError, match="no plots for problem type"):
        plots.write_evaluation_plots(tmp_path, "ranking", yt, yp, [])


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"probs must be \(N, 3\)"):
        plots.roc_figure([0, 1], np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"outside \[0, 2\)"):
        plots.pr_figure([0, 2], np.zeros((2, 2)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="needs probs or a classification report"):
        plots.write_classification_plots(tmp_path, [0, 1], None, ["a", "b"])


def test_missing_matplotlib_is_a_one_line_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(MissingDependencyError, match=r"^--plots needs matplotlib: pip install -e '\.\[plots\]'"):
        require("matplotlib", "plots", "--plots")
    with pytest.raises(MissingDependencyError, match="--plots needs matplotlib") as e:
        plots.confusion_matrix_figure([[1]], ["a"], tmp_path / "x.png")
    assert "\n" not in str(e.value) and isinstance(e.value, ValueError)
    assert not (tmp_path / "x.png").exists()
