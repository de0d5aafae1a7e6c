"""``bmf evaluate``: metrics of a classifier on a labelled file, as a table and a JSON report."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.classification import read_labelled
from ..jsonio import write_json
from .metrics import classification_report
from .predict import Predictor


def evaluate(model_path: str | Path, data: str | Path, *, out: str | Path | None = None, text_field: str = "text",
             label_field: str = "label", batch_size: int = 64, device: str = "auto") -> dict:
    """Accuracy, per-class and macro P/R/F1, confusion matrix (and ROC AUC) of ``model_path`` on ``data``."""
    predictor = Predictor(model_path, device=device)
    rows = read_labelled(data, text_field, label_field)
    unknown = sorted(set(rows.labels) - set(predictor.labels))
    if unknown:
        raise ValueError(f"{data}: labels {unknown} are not among the model's labels {predictor.labels}")
    index = {name: i for i, name in enumerate(predictor.labels)}
    y_true = np.array([index[l] for l in rows.labels])
    probs = predictor.predict_proba(rows.texts, batch_size).numpy()
    report = classification_report(y_true, probs.argmax(-1), predictor.labels, probs=probs)
    report.update(model=str(model_path), data=str(data))
    if out is not None:
        write_json(out, report)
    return report
