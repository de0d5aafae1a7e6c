"""Metrics: single-label classification (accuracy, per-class and macro precision / recall / F1, confusion matrix,
ROC AUC), multi-label classification (micro / macro F1, per-label P/R/F1, subset accuracy) and regression (MSE,
MAE, Pearson, Spearman)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; row = true class, column = predicted class."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} holds class ids outside [0, {num_classes})")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes).reshape(num_classes, -1)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b != 0)


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of binary labels (1 = positive) by the rank statistic; ties count half."""
    y_true, score = np.asarray(y_true).astype(bool), np.asarray(score, dtype=np.float64)
    pos, neg = int(y_true.sum()), int((~y_true).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    ranks = average_ranks(score)
    return float((ranks[y_true].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks (N,) float64 of ``x`` (N,); tied values share the mean of their ranks (``[3, 1, 3]`` ->
    ``[2.5, 1, 2.5]``)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def classification_report(y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str],
                          probs: np.ndarray | None = None) -> dict:
    """All metrics as a JSON-ready dict. ``probs`` (N, C), when given, adds ROC AUC (one-vs-rest per class)."""
    C = len(label_names)
    cm = confusion_matrix(np.asarray(y_true), np.asarray(y_pred), C)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _safe_div(tp, cm.sum(axis=0).astype(np.float64))
    recall = _safe_div(tp, support.astype(np.float64))
    f1 = _safe_div(2 * precision * recall, precision + recall)
    n = int(cm.sum())
    report = {
        "examples": n,
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(label_names)},
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
        "labels": list(label_names),
        "confusion_matrix": cm.tolist(),
    }
    if probs is not None:
        yt = np.asarray(y_true)
        report["roc_auc"] = {name: roc_auc(yt == i, probs[:, i]) for i, name in enumerate(label_names)}
    return report


def format_report(report: dict) -> str:
    """A plain-text table of a :func:`classification_report`."""
    names = report["labels"]
    w = max(9, *(len(n) for n in names))
    lines = [f"{'label':<{w}}  precision  recall     f1  support"]
    for name in names:
        r = report["per_class"][name]
        lines.append(f"{name:<{w}}  {r['precision']:9.4f}  {r['recall']:6.4f}  {r['f1']:6.4f}  {r['support']:7d}")
    m = report["macro"]
    lines.append(f"{'macro':<{w}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:6.4f}  {report['examples']:7d}")
    lines.append(f"accuracy {report['accuracy']:.4f} on {report['examples']} examples")
    lines.append("confusion matrix (rows = true, columns = predicted):")
    lines.append(" " * (w + 2) + " ".join(f"{n[:8]:>8}" for n in names))
    for name, row in zip(names, report["confusion_matrix"]):
        lines.append(f"{name:<{w}}  " + " ".join(f"{v:8d}" for v in row))
    return "\n".join(lines)



def _indicator(name: str, y: np.ndarray, num_labels: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != num_labels:
        raise ValueError(f"{name} must be an (N, {num_labels}) 0/1 array, got shape {y.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 and 1")
    return y.astype(bool)


def multilabel_report(y_true: np.ndarray, y_pred: np.ndarray, label_names: Sequence[str]) -> dict:
    """Multi-label metrics as a JSON-ready dict; ``y_true`` / ``y_pred`` are (N, L) 0/1 arrays, L =
    ``len(label_names)``.

    Keys: ``examples``, ``micro_f1`` (from the counts summed over labels), ``macro_f1`` (mean of the per-label F1),
    ``per_label`` (``{name: {"precision", "recall", "f1", "support"}}``, support = true positives + false
    negatives) and ``subset_accuracy`` (share of rows whose whole label set is right). A ratio with a zero
    denominator is 0 (scikit-learn's ``zero_division=0``)."""
    L = len(label_names)
    yt, yp = _indicator("y_true", y_true, L), _indicator("y_pred", y_pred, L)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true {yt.shape} and y_pred {yp.shape} differ in shape")
    tp = (yt & yp).sum(axis=0).astype(np.float64)  # (L,)
    fp = (~yt & yp).sum(axis=0).astype(np.float64)
    fn = (yt & ~yp).sum(axis=0).astype(np.float64)
    precision, recall = _safe_div(tp, tp + fp), _safe_div(tp, tp + fn)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn)
    micro = _safe_div(np.array([2 * tp.sum()]), np.array([2 * tp.sum() + fp.sum() + fn.sum()]))[0]
    n = yt.shape[0]
    return {
        "examples": int(n),
        "micro_f1": float(micro),
        "macro_f1": float(f1.mean()) if L else float("nan"),
        "per_label": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(tp[i] + fn[i])} for i, name in enumerate(label_names)},
        "subset_accuracy": float((yt == yp).all(axis=1).mean()) if n else float("nan"),
        "labels": list(label_names),
    }


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Regression metrics of ``y_pred`` against ``y_true`` (both (N,) or (N, 1) floats) as a JSON-ready dict:
    ``examples``, ``mse``, ``mae``, ``pearson`` and ``spearman`` (Pearson of the average ranks, ties sharing their
    mean rank). A correlation with a constant side is NaN."""
    yt = np.asarray(y_true, dtype=np.float64).reshape(-1)
    yp = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true ({yt.size} values) and y_pred ({yp.size} values) differ in length")
    if yt.size == 0:
        nan = float("nan")
        return {"examples": 0, "mse": nan, "mae": nan, "pearson": nan, "spearman": nan}
    err = yp - yt
    return {"examples": int(yt.size), "mse": float((err * err).mean()), "mae": float(np.abs(err).mean()),
            "pearson": _pearson(yt, yp), "spearman": _pearson(average_ranks(yt), average_ranks(yp))}
