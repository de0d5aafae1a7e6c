"""``bmf evaluate``: metrics of a classifier (single-label, multi-label) or regression model on a labelled file,
as a table and a JSON report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint as ckpt
from ..config_cli import check_fields, setting
from ..data.classification import read_labelled
from ..export.bundle import BUNDLE_JSON
from ..jsonio import read_json, write_json
from .metrics import classification_report, format_report, multilabel_report, regression_report
from .outputs import decide
from .predict import Predictor, batch_size_field, device_field


@dataclass
class EvaluateConfig:
    """Settings of ``bmf evaluate`` (each field's metadata is also its flag: :mod:`bigmodel_fast.config_cli`);
    :func:`evaluate`'s keyword defaults are these fields' defaults."""

    model: str = setting(help="classifier checkpoint or exported bundle directory")
    data: str = setting(help="CSV/JSONL with text and label")
    out: str | None = setting(None, help="write the JSON report here")
    text_field: str = setting("text")
    label_field: str = setting("label")
    batch_size: int = batch_size_field()
    device: str = device_field()
    plots: str | None = setting(None, metavar="DIR", help="write figures here (confusion matrix, ROC and PR curves; "
                                                          "token models: per-type P/R/F1 bars, tag confusion); "
                                                          "needs the plots extra")
    baseline: str | None = setting(None, metavar="TRAIN_FILE",
                                   help="also fit a baseline on this training file and report it beside the model: "
                                        "TF-IDF (word + char n-grams) + logistic regression for classifiers, the "
                                        "most-frequent-tag tagger for token models")

    def __post_init__(self):
        check_fields(self)
        if self.plots is not None:
            from ..optional import require

            require("matplotlib", "plots", "--plots")
        if self.baseline is not None and not Path(self.baseline).is_file():
            raise ValueError(f"--baseline {self.baseline}: no such file; expected the training file of the model")


def check_report_path(out: str | Path) -> Path:
    """``--out`` must be a file path (its folder is created); refused before any work is done."""
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"{out}: is a directory; expected the path of the JSON report file (e.g. {out}/report.json)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def check_finite(probs: np.ndarray, model_path, data) -> None:
    """A model whose outputs are NaN/inf has no meaningful metrics: refuse it instead of reporting noise."""
    bad = ~np.isfinite(probs).all(axis=-1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{model_path}: the model's output is not finite (NaN/inf) for {int(bad.sum())} of "
                         f"{len(probs)} examples of {data} (first: example {first + 1}); its weights are probably "
                         f"non-finite, evaluate another checkpoint")


def peek_problem_type(model_path: str | Path) -> str:
    """The problem type of a checkpoint (config.json) or bundle (bundle.json) without loading the model; anything
    unreadable counts as single_label (loading the model reports it properly)."""
    path = Path(model_path)
    if path.is_file():
        path = path.parent
    try:
        if (path / BUNDLE_JSON).is_file():
            info = read_json(path / BUNDLE_JSON, "bundle description")
            return str(info.get("problem_type") or "single_label")
        cfg, _ = ckpt.read_meta(path)
        return str(cfg.get("problem_type") or "single_label")
    except Exception:  # noqa: BLE001 -- only a hint; Predictor names what is wrong with the model
        return "single_label"


def task_of(problem_type: str) -> str:
    """The :func:`~bigmodel_fast.data.classification.read_labelled` task that reads a problem type's labels."""
    return problem_type.replace("_", "-")


def evaluate(model_path: str | Path, data: str | Path, *, out: str | Path | None = EvaluateConfig.out,
             text_field: str = EvaluateConfig.text_field, label_field: str = EvaluateConfig.label_field,
             batch_size: int = EvaluateConfig.batch_size, device: str = EvaluateConfig.device,
             plots: str | Path | None = EvaluateConfig.plots, baseline: str | Path | None = EvaluateConfig.baseline,
             ) -> dict:
    """Metrics of ``model_path`` on ``data`` by the model's problem type (``"problem_type"`` in the report):

    - single_label: accuracy, per-class and macro P/R/F1, confusion matrix, ROC AUC (:func:`classification_report`);
    - multi_label: micro / macro F1, per-label P/R/F1, subset accuracy (:func:`multilabel_report`) of the labels
      whose sigmoid probability reaches the model's threshold (meta.json ``thresholds``, 0.5 each by default);
      ``label`` holds a list of names (or ``a|b`` in CSV);
    - regression: MSE, MAE, Pearson, Spearman (:func:`regression_report`); ``label`` holds a number.

    Texts longer than the model's ``max_len`` are fed as its ``long_text`` setting says (chunks: mean of the
    windows' logits). The data and ``out`` are checked before the model is loaded. Undefined metrics (ROC AUC of a
    class absent from the data) are NaN in the returned dict and ``null`` in the JSON report.

    A token classifier (checkpoint kind ``token_classifier`` or bundle task ``token``) reads ``data`` as tagged
    sentences and gets entity scores instead (:func:`~.token_evaluate.evaluate_token`).

    ``plots``: a directory for the figures (:mod:`.plots`; their paths in ``report["plots"]``). ``baseline``: a
    training file on which a baseline is fitted and scored on ``data`` the same way (``report["baseline"]``,
    :mod:`.baseline`)."""
    if out is not None:
        out = check_report_path(out)
    from .token_predict import is_token_model

    if is_token_model(model_path):
        from .token_evaluate import evaluate_token

        return evaluate_token(model_path, data, out=out, batch_size=batch_size, device=device, plots=plots,
                              baseline=baseline)
    problem_type = peek_problem_type(model_path)
    rows = read_labelled(data, text_field, label_field, task=task_of(problem_type))
    predictor = Predictor(model_path, device=device)
    if predictor.spec.problem_type != problem_type:  # config.json said otherwise than the loaded model
        problem_type = predictor.spec.problem_type
        rows = read_labelled(data, text_field, label_field, task=task_of(problem_type))
    probs = predictor.predict_proba(rows.texts, batch_size).numpy()
    check_finite(probs, model_path, data)
    if problem_type == "multi_label":
        report = _multilabel(predictor, rows, probs, data)
    elif problem_type == "regression":
        if probs.shape[1] != 1:
            raise ValueError(f"{model_path}: a regression model with {probs.shape[1]} outputs; bmf evaluate reads "
                             f"one number per row of {data}")
        report = regression_report(np.asarray(rows.labels, dtype=np.float64), probs[:, 0])
    else:
        unknown = sorted(set(rows.labels) - set(predictor.labels))
        if unknown:
            raise ValueError(f"{data}: labels {unknown} are not among the model's labels {predictor.labels}")
        index = {name: i for i, name in enumerate(predictor.labels)}
        y_true = np.array([index[l] for l in rows.labels])
        report = classification_report(y_true, probs.argmax(-1), predictor.labels, probs=probs)
    report.update(model=str(model_path), data=str(data), problem_type=problem_type)
    if baseline is not None:
        from .baseline import text_baseline_report

        report["baseline"] = text_baseline_report(baseline, rows.texts, rows.labels, problem_type, predictor.labels,
                                                  text_field, label_field)
    if plots is not None:
        report["plots"] = _plots(plots, problem_type, predictor, rows, probs, report)
    if out is not None:
        write_json(out, report)
    return report


def _plots(out_dir, problem_type: str, predictor, rows, probs: np.ndarray, report: dict) -> dict:
    """The figures of the evaluation in ``out_dir``; ``{name: path}``."""
    from .plots import write_evaluation_plots

    names = predictor.labels
    if problem_type == "single_label":
        index = {name: i for i, name in enumerate(names)}
        y_true = np.array([index[label] for label in rows.labels])
    elif problem_type == "multi_label":
        y_true = np.array([[int(n in ls) for n in names] for ls in rows.labels], dtype=np.int64)
    else:
        y_true = np.asarray(rows.labels, dtype=np.float64)
    figures = write_evaluation_plots(out_dir, problem_type, y_true, probs, names,
                                     None if problem_type == "regression" else report)
    return {name: str(f["path"]) for name, f in figures.items()}


def _multilabel(predictor, rows, probs: np.ndarray, data) -> dict:
    names = predictor.labels
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({l for ls in rows.labels for l in ls} - set(names))
    if unknown:
        raise ValueError(f"{data}: labels {unknown} are not among the model's labels {names}")
    y_true = np.zeros((len(rows), len(names)), dtype=np.int64)
    for r, ls in enumerate(rows.labels):
        y_true[r, [index[l] for l in ls]] = 1
    y_pred = decide(torch.from_numpy(probs), predictor.spec.thresholds).numpy().astype(np.int64)
    report = multilabel_report(y_true, y_pred, names)
    report["thresholds"] = list(predictor.spec.thresholds)
    return report


def format_evaluation(report: dict) -> str:
    """A plain-text table of an :func:`evaluate` report of any problem type."""
    kind = report.get("problem_type", "single_label")
    if kind == "token":
        from .token_evaluate import format_token_report

        return format_token_report(report)
    text = _format_model(report, kind)
    if "baseline" in report:
        from .baseline import format_baseline_line

        text += "\n" + format_baseline_line(report, report["baseline"])
    return text


def _format_model(report: dict, kind: str) -> str:
    if kind == "regression":
        return (f"regression on {report['examples']} examples: mse {report['mse']:.6g}  mae {report['mae']:.6g}  "
                f"pearson {report['pearson']:.4f}  spearman {report['spearman']:.4f}")
    if kind != "multi_label":
        return format_report(report)
    names = report["labels"]
    w = max(9, *(len(n) for n in names))
    lines = [f"{'label':<{w}}  precision  recall     f1  support"]
    for name in names:
        r = report["per_label"][name]
        lines.append(f"{name:<{w}}  {r['precision']:9.4f}  {r['recall']:6.4f}  {r['f1']:6.4f}  {r['support']:7d}")
    lines.append(f"micro F1 {report['micro_f1']:.4f}  macro F1 {report['macro_f1']:.4f}  subset accuracy "
                 f"{report['subset_accuracy']:.4f} on {report['examples']} examples")
    return "\n".join(lines)
