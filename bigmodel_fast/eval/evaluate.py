"""``bmf evaluate``: metrics of a classifier on a labelled file, as a table and a JSON report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config_cli import check_fields, setting
from ..data.classification import read_labelled
from ..jsonio import write_json
from .metrics import classification_report
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

    def __post_init__(self):
        check_fields(self)


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


def evaluate(model_path: str | Path, data: str | Path, *, out: str | Path | None = EvaluateConfig.out,
             text_field: str = EvaluateConfig.text_field, label_field: str = EvaluateConfig.label_field,
             batch_size: int = EvaluateConfig.batch_size, device: str = EvaluateConfig.device) -> dict:
    """Accuracy, per-class and macro P/R/F1, confusion matrix (and ROC AUC) of ``model_path`` on ``data``.

    The data and ``out`` are checked before the model is loaded. Undefined metrics (ROC AUC of a class absent from
    the data) are NaN in the returned dict and ``null`` in the JSON report."""
    if out is not None:
        out = check_report_path(out)
    rows = read_labelled(data, text_field, label_field)
    predictor = Predictor(model_path, device=device)
    unknown = sorted(set(rows.labels) - set(predictor.labels))
    if unknown:
        raise ValueError(f"{data}: labels {unknown} are not among the model's labels {predictor.labels}")
    index = {name: i for i, name in enumerate(predictor.labels)}
    y_true = np.array([index[l] for l in rows.labels])
    probs = predictor.predict_proba(rows.texts, batch_size).numpy()
    check_finite(probs, model_path, data)
    report = classification_report(y_true, probs.argmax(-1), predictor.labels, probs=probs)
    report.update(model=str(model_path), data=str(data))
    if out is not None:
        write_json(out, report)
    return report
