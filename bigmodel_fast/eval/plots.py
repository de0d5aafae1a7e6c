"""Figures of an evaluation as PNG files (matplotlib's Agg renderer, no display, no pyplot state).

Each figure function takes plain data (lists / numpy arrays / report dicts), writes one PNG and returns the numbers
it drew as a JSON-ready dict, so they can be checked against the report. What each problem type gets
(:func:`write_evaluation_plots` dispatches on it):

- single_label (:func:`write_classification_plots`): ``confusion.png`` (counts and row-normalised rates, rows =
  true label), ``roc.png`` (one-vs-rest ROC per class, AUC in the legend: the ``roc_auc`` numbers of
  :func:`~.metrics.classification_report`, computed by the same :func:`~.metrics.roc_auc`), ``pr.png``
  (precision-recall, average precision in the legend, equal to scikit-learn's ``average_precision_score``). With
  two classes one curve, the second label's (the positive class). A class with no example (or no negative) has no
  curve; the legend says so.
- multi_label (:func:`write_multilabel_plots`): ``roc.png`` and ``pr.png`` with one curve per label from the
  per-label (sigmoid) probabilities, and ``labels.png``: per-label precision / recall / F1 bars of a
  :func:`~.metrics.multilabel_report`.
- regression (:func:`write_regression_plots`): ``scatter.png``, predicted against true with the y = x line.
- token classification (:func:`write_token_plots`): ``entity_types.png`` (per-type P/R/F1 bars and micro / macro
  of an :func:`~.entity_metrics.entity_scores` report) and, given a tag confusion matrix, ``tag_confusion.png``.

matplotlib is optional (``pip install -e '.[plots]'``); it is imported inside the functions, after
:func:`~bigmodel_fast.optional.require` has checked for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..optional import require
from .metrics import classification_report, regression_report, roc_auc

__all__ = ["ANNOTATE_MAX_CLASSES", "average_precision", "confusion_matrix_figure", "entity_bars_figure",
           "pr_curve", "pr_figure", "regression_figure", "roc_curve", "roc_figure", "write_classification_plots",
           "write_evaluation_plots", "write_multilabel_plots", "write_regression_plots", "write_token_plots"]

ANNOTATE_MAX_CLASSES = 30  # confusion matrices with more classes get no numbers in the cells
DPI = 100
FLAG = "--plots"  # what the missing-matplotlib error names


def _figure(width: float, height: float, ncols: int = 1):
    """A (Figure, axes) pair drawn by Agg; sizes in inches at :data:`DPI`."""
    require("matplotlib", "plots", FLAG)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _save(fig, path: str | Path) -> dict:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI)
    width, height = fig.get_size_inches()
    return {"path": str(path), "image_size": [int(round(width * DPI)), int(round(height * DPI))]}


# ----------------------------------------------------------------------------------------- confusion matrix

def row_normalised(matrix) -> np.ndarray:
    """(C, C) float64: each row divided by its sum (the share of a true class predicted as each class); a row
    without examples stays 0."""
    m = np.asarray(matrix, dtype=np.float64)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums != 0)


def confusion_matrix_figure(matrix, labels: Sequence[str], path: str | Path, title: str = "confusion matrix") -> dict:
    """Two panels of the (C, C) confusion ``matrix`` (rows = true label, columns = predicted): the counts and the
    row-normalised rates (:func:`row_normalised`), label names on both axes, values in the cells up to
    :data:`ANNOTATE_MAX_CLASSES` classes. Returns ``{"counts", "normalised", "labels", "annotated", "path",
    "image_size"}``."""
    counts = np.asarray(matrix, dtype=np.int64)
    C = len(labels)
    if counts.shape != (C, C):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {C} labels")
    rates = row_normalised(counts)
    annotate = C <= ANNOTATE_MAX_CLASSES
    side = min(14.0, max(4.5, 0.35 * C + 2.5))  # inches per panel
    fig, (ax_n, ax_r) = _figure(2 * side + 1.5, side, ncols=2)
    shown_labels = [str(x) for x in labels]
    for ax, values, name, fmt in ((ax_n, counts, "counts", "d"), (ax_r, rates, "share of the true label", ".2f")):
        vmax = float(values.max()) if values.size and values.max() > 0 else 1.0
        im = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest", aspect="auto")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(f"{title}: {name}")
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if C <= 100:
            ax.set_xticks(range(C), shown_labels, rotation=45 if C > 4 else 0, ha="right" if C > 4 else "center",
                          fontsize="small" if C > 12 else None)
            ax.set_yticks(range(C), shown_labels, fontsize="small" if C > 12 else None)
        if annotate:
            for i in range(C):
                for j in range(C):
                    v = values[i, j]
                    ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize="small" if C > 10 else None,
                            color="white" if v > 0.6 * vmax else "black")
    fig.tight_layout()
    out = _save(fig, path)
    return {"counts": counts.tolist(), "normalised": rates.tolist(), "labels": shown_labels, "annotated": annotate,
            **out}


# ---------------------------------------------------------------------------------------------- curves

def _clf_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts at each distinct score, highest first: ``(false positives, true positives, thresholds)`` of
    predicting positive when ``score >= threshold`` (scikit-learn's ``_binary_clf_curve``)."""
    order = np.argsort(score, kind="mergesort")[::-1]
    s, y = score[order], positive[order].astype(np.float64)
    last = np.r_[np.where(np.diff(s))[0], y.size - 1]  # the last index of each run of equal scores
    tps = np.cumsum(y)[last]
    fps = 1 + last - tps
    return fps, tps, s[last]


def roc_curve(positive, score) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` of the ROC curve of binary labels ``positive`` (N,) by ``score`` (N,), from (0, 0) to (1, 1);
    one point per distinct score (ties: a straight segment, so its trapezoid area is the tie-half rank AUC of
    :func:`~.metrics.roc_auc`). Both None-free float arrays; NaN when a side is empty."""
    positive, score = np.asarray(positive).astype(bool), np.asarray(score, dtype=np.float64)
    fps, tps, _ = _clf_curve(positive, score)
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    with np.errstate(invalid="ignore", divide="ignore"):
        return fps / fps[-1], tps / tps[-1]


def pr_curve(positive, score) -> tuple[np.ndarray, np.ndarray]:
    """``(recall, precision)`` as scikit-learn's ``precision_recall_curve``: one point per distinct score, lowest
    threshold first (recall falling to the final point (0, 1))."""
    positive, score = np.asarray(positive).astype(bool), np.asarray(score, dtype=np.float64)
    fps, tps, _ = _clf_curve(positive, score)
    precision = tps / (tps + fps)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tps / tps[-1]
    return np.r_[recall[::-1], 0.0], np.r_[precision[::-1], 1.0]


def average_precision(positive, score) -> float:
    """Average precision, sum over thresholds of (R_k - R_{k-1}) P_k: scikit-learn's ``average_precision_score``
    of binary labels (NaN without positives, where scikit-learn warns and returns 0)."""
    positive = np.asarray(positive).astype(bool)
    if not positive.any():
        return float("nan")
    recall, precision = pr_curve(positive, score)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def _one_vs_rest(y_true, probs, labels: Sequence[str]) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], str]:
    """``([(label, positive (N,) bool, score (N,))], kind)``. ``y_true`` (N,) class ids: one-vs-rest per class, and
    only the second label with two classes (kind ``"binary"`` / ``"one-vs-rest"``); ``y_true`` (N, L) 0/1: one
    per label (``"per-label"``)."""
    y, p = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    C = len(labels)
    if p.ndim != 2 or p.shape[1] != C:
        raise ValueError(f"probs must be (N, {C}) for {C} labels, got shape {p.shape}")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} rows but probs {p.shape[0]}")
    if y.ndim == 2:
        if y.shape[1] != C:
            raise ValueError(f"multi-label y_true must be (N, {C}), got shape {y.shape}")
        return [(str(labels[i]), y[:, i].astype(bool), p[:, i]) for i in range(C)], "per-label"
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= C):
        raise ValueError(f"y_true holds class ids outside [0, {C})")
    classes = [1] if C == 2 else range(C)
    return [(str(labels[i]), y == i, p[:, i]) for i in classes], "binary" if C == 2 else "one-vs-rest"


def _why_no_curve(positive: np.ndarray) -> str | None:
    if not positive.any():
        return "no examples"
    if positive.all():
        return "no negatives"
    return None


def _curves_figure(y_true, probs, labels, path, kind: str) -> dict:
    """ROC (``kind="roc"``) or precision-recall (``"pr"``) curves of :func:`_one_vs_rest`."""
    items, mode = _one_vs_rest(y_true, probs, labels)
    fig, (ax,) = _figure(7.5, 6.0)
    curves: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for name, positive, score in items:
        why = _why_no_curve(positive) if kind == "roc" else (None if positive.any() else "no examples")
        if why is not None:
            skipped[name] = why
            continue
        if kind == "roc":
            x, yv = roc_curve(positive, score)
            value = roc_auc(positive, score)  # the function classification_report's roc_auc numbers come from
            ax.plot(x, yv, label=f"{name} (AUC {value:.3f})")
            curves[name] = {"fpr": x.tolist(), "tpr": yv.tolist(), "auc": value}
        else:
            x, yv = pr_curve(positive, score)
            value = average_precision(positive, score)
            ax.step(x, yv, where="post", label=f"{name} (AP {value:.3f})")
            curves[name] = {"recall": x.tolist(), "precision": yv.tolist(), "average_precision": value,
                            "prevalence": float(positive.mean())}
    if kind == "roc":
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        what = "ROC"
    else:
        if mode == "binary" and curves:
            ax.axhline(next(iter(curves.values()))["prevalence"], linestyle=":", color="grey", label="chance")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        what = "precision-recall"
    for name, why in skipped.items():  # an invisible handle, so the legend says why a class has no curve
        ax.plot([], [], linestyle="none", label=f"{name}: no curve ({why})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_title(f"{what} ({'positive: ' + items[0][0] if mode == 'binary' else mode})")
    n = len(curves) + len(skipped) + 1
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize="small" if n > 6 else None,
              ncol=max(1, math.ceil(n / 20)))
    fig.tight_layout()
    out = _save(fig, path)
    return {"mode": mode, "curves": curves, "skipped": skipped, **out}


def roc_figure(y_true, probs, labels: Sequence[str], path: str | Path) -> dict:
    """ROC curves with their AUC in the legend. ``y_true`` (N,) class ids and ``probs`` (N, C): one-vs-rest per
    class, or with two classes one curve of the second label (the positive class); ``y_true`` (N, L) 0/1 (multi-
    label): one per label. AUC = :func:`~.metrics.roc_auc` (= scikit-learn's ``roc_auc_score``, = the report's
    ``roc_auc``). A class without examples or without negatives has no curve (``skipped`` says why). Returns
    ``{"mode", "curves": {label: {"fpr", "tpr", "auc"}}, "skipped": {label: reason}, "path", "image_size"}``."""
    return _curves_figure(y_true, probs, labels, path, "roc")


def pr_figure(y_true, probs, labels: Sequence[str], path: str | Path) -> dict:
    """Precision-recall curves, the same classes as :func:`roc_figure`, average precision in the legend
    (:func:`average_precision` = scikit-learn's ``average_precision_score``). Returns ``{"mode", "curves": {label:
    {"recall", "precision", "average_precision", "prevalence"}}, "skipped", "path", "image_size"}``."""
    return _curves_figure(y_true, probs, labels, path, "pr")


# ------------------------------------------------------------------------------------------------ bars

def _prf_bars(rows: dict[str, dict], path: str | Path, title: str) -> dict:
    """Grouped precision / recall / F1 bars, one group per row (``{name: {"precision", "recall", "f1",
    "support"}}``), support in the tick labels."""
    names = list(rows)
    fig, (ax,) = _figure(min(30.0, max(6.0, 0.9 * len(names) + 2.5)), 5.0)
    data: dict = {"groups": names, "support": [rows[n].get("support") for n in names]}
    x = np.arange(len(names))
    width = 0.27
    for k, key in enumerate(("precision", "recall", "f1")):
        heights = [float(rows[n][key]) for n in names]
        data[key] = heights
        ax.bar(x + (k - 1) * width, heights, width, label=key)
    ticks = [n if s is None else f"{n}\n(n={s})" for n, s in zip(names, data["support"])]
    ax.set_xticks(x, ticks, rotation=45 if len(names) > 8 else 0, ha="right" if len(names) > 8 else "center",
                  fontsize="small" if len(names) > 8 else None)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return {**data, **_save(fig, path)}


def entity_bars_figure(report: dict, path: str | Path) -> dict:
    """Per-entity-type precision / recall / F1 of an :func:`~.entity_metrics.entity_scores` report as grouped bars,
    then its ``micro`` and ``macro`` averages; support (true entities) in the tick labels. Returns ``{"groups",
    "precision", "recall", "f1", "support", "path", "image_size"}`` (lists aligned with ``groups``)."""
    rows = {**report["per_type"], "micro": report["micro"], "macro": report["macro"]}
    title = f"entity scores ({report.get('mode', 'default')} mode)"
    if "token_accuracy" in report:
        title += f"; token accuracy {report['token_accuracy']:.4f}"
    return _prf_bars(rows, path, title)


# ------------------------------------------------------------------------------------------- regression

def regression_figure(y_true, y_pred, path: str | Path) -> dict:
    """Predicted against true values with the y = x line; MSE and Pearson (:func:`~.metrics.regression_report`) in
    the title. Returns ``{"true", "pred", "mse", "pearson", "path", "image_size"}``."""
    yt = np.asarray(y_true, dtype=np.float64).reshape(-1)
    yp = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    rep = regression_report(yt, yp)
    fig, (ax,) = _figure(6.0, 6.0)
    ax.scatter(yt, yp, s=8 if yt.size > 2000 else 16, alpha=0.3 if yt.size > 2000 else 0.7)
    if yt.size:
        lo, hi = float(min(yt.min(), yp.min())), float(max(yt.max(), yp.max()))
        ax.plot([lo, hi], [lo, hi], linestyle=":", color="grey", label="y = x")
        ax.legend(loc="upper left")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(f"{rep['examples']} examples: MSE {rep['mse']:.4g}, Pearson {rep['pearson']:.3f}")
    fig.tight_layout()
    return {"true": yt.tolist(), "pred": yp.tolist(), "mse": rep["mse"], "pearson": rep["pearson"],
            **_save(fig, path)}


# --------------------------------------------------------------------------------------- per problem type

def _entry(data: dict) -> dict:
    return {"path": data["path"], "data": data}


def write_classification_plots(out_dir: str | Path, y_true, probs, labels: Sequence[str],
                               report: dict | None = None) -> dict:
    """``confusion.png``, ``roc.png`` and ``pr.png`` of a single-label evaluation in ``out_dir`` (created).

    ``y_true`` (N,) class ids, ``probs`` (N, C) class probabilities (None: the confusion matrix only, from
    ``report``), ``report`` a :func:`~.metrics.classification_report` of them (None: computed from ``probs``'
    argmax); the confusion figure draws the report's matrix. Returns ``{"confusion" | "roc" | "pr": {"path",
    "data"}}``, ``data`` what the figure function returned."""
    out = Path(out_dir)
    if report is None:
        if probs is None:
            raise ValueError("write_classification_plots needs probs or a classification report")
        report = classification_report(y_true, np.asarray(probs).argmax(-1), labels, probs=np.asarray(probs))
    result = {"confusion": _entry(confusion_matrix_figure(report["confusion_matrix"], labels, out / "confusion.png"))}
    if probs is not None:
        result["roc"] = _entry(roc_figure(y_true, probs, labels, out / "roc.png"))
        result["pr"] = _entry(pr_figure(y_true, probs, labels, out / "pr.png"))
    return result


def write_multilabel_plots(out_dir: str | Path, y_true, probs, labels: Sequence[str],
                           report: dict | None = None) -> dict:
    """``roc.png`` and ``pr.png`` (one curve per label from ``probs`` (N, L), the per-label probabilities, against
    ``y_true`` (N, L) 0/1) and, given a :func:`~.metrics.multilabel_report`, ``labels.png`` (its per-label P/R/F1
    bars). Returns ``{name: {"path", "data"}}``."""
    out = Path(out_dir)
    y = np.asarray(y_true)
    if y.ndim != 2:
        raise ValueError(f"multi-label y_true must be an (N, L) 0/1 array, got shape {y.shape}")
    result = {"roc": _entry(roc_figure(y, probs, labels, out / "roc.png")),
              "pr": _entry(pr_figure(y, probs, labels, out / "pr.png"))}
    if report is not None:
        title = f"per-label scores; micro F1 {report['micro_f1']:.4f}, macro F1 {report['macro_f1']:.4f}"
        result["labels"] = _entry(_prf_bars(report["per_label"], out / "labels.png", title))
    return result


def write_regression_plots(out_dir: str | Path, y_true, y_pred) -> dict:
    """``scatter.png`` (:func:`regression_figure`) in ``out_dir``. Returns ``{"scatter": {"path", "data"}}``."""
    return {"scatter": _entry(regression_figure(y_true, y_pred, Path(out_dir) / "scatter.png"))}


def write_token_plots(out_dir: str | Path, entity_report: dict, tag_confusion=None,
                      tag_labels: Sequence[str] | None = None) -> dict:
    """``entity_types.png`` (:func:`entity_bars_figure` of an :func:`~.entity_metrics.entity_scores` report) and,
    given ``tag_confusion`` (T, T) counts (rows = true tag) with ``tag_labels`` (T names; default ``0..T-1``),
    ``tag_confusion.png``. Returns ``{"entity_types" | "tag_confusion": {"path", "data"}}``."""
    out = Path(out_dir)
    result = {"entity_types": _entry(entity_bars_figure(entity_report, out / "entity_types.png"))}
    if tag_confusion is not None:
        m = np.asarray(tag_confusion)
        names = [str(i) for i in range(m.shape[0])] if tag_labels is None else list(tag_labels)
        result["tag_confusion"] = _entry(confusion_matrix_figure(m, names, out / "tag_confusion.png",
                                                                 title="token tags"))
    return result


def write_evaluation_plots(out_dir: str | Path, problem_type: str, y_true, probs, labels: Sequence[str],
                           report: dict | None = None) -> dict:
    """The figures of one ``bmf evaluate`` run by ``problem_type`` (module docstring): ``single_label``
    (:func:`write_classification_plots`), ``multi_label`` (:func:`write_multilabel_plots`; ``y_true`` (N, L)) or
    ``regression`` (:func:`write_regression_plots`; ``probs`` (N, 1) or (N,) are the predictions, ``y_true`` the
    numbers, ``labels`` unused)."""
    if problem_type == "single_label":
        return write_classification_plots(out_dir, y_true, probs, labels, report)
    if problem_type == "multi_label":
        return write_multilabel_plots(out_dir, y_true, probs, labels, report)
    if problem_type == "regression":
        return write_regression_plots(out_dir, y_true, np.asarray(probs, dtype=np.float64).reshape(-1))
    raise ValueError(f"no plots for problem type {problem_type!r}")
