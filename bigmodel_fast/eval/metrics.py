"""Classification metrics: accuracy, per-class and macro precision / recall / F1, confusion matrix, ROC AUC."""

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
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), dtype=np.float64)
    sorted_scores = score[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y_true].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


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
