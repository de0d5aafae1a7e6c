"""One prediction record per text, by the model's problem type (``bmf predict``, :class:`~.predict.Predictor`;
``bmf_runner``'s csrc/deploy/output.cpp writes the same records):

- ``single_label``: ``{"label": name, "probabilities": {name: softmax p}}`` (label None when not finite);
- ``multi_label``: ``{"labels": [names whose sigmoid p >= the label's threshold], "probabilities": {name: p}}``
  (thresholds from meta.json / bundle.json ``"thresholds"``, 0.5 each when absent; labels None when not finite);
- ``regression``: ``{"value": v}`` for one target, ``{"values": {name: v}}`` for several (None when not finite).

Probabilities are rounded to 6 decimals, regression values are written as computed (float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch

from ..models.config import PROBLEM_TYPES

DEFAULT_THRESHOLD = 0.5


@dataclass
class OutputSpec:
    """What a model's logits (N, C) mean: its problem type, the C label (or target) names and, for multi_label,
    one decision threshold per label."""

    problem_type: str = "single_label"
    labels: list[str] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)

    @classmethod
    def from_meta(cls, problem_type: str | None, labels: Sequence[str], meta: dict | None,
                  where: str = "meta.json") -> "OutputSpec":
        """From a model's problem type and labels plus its meta.json / bundle.json (``"thresholds"``); a bad
        problem type or threshold list is a one-line ValueError naming ``where``."""
        problem_type = problem_type or "single_label"
        if problem_type not in PROBLEM_TYPES:
            raise ValueError(f"{where}: problem_type must be one of {', '.join(PROBLEM_TYPES)}, got {problem_type!r}")
        labels = list(labels)
        thresholds = (meta or {}).get("thresholds")
        if problem_type != "multi_label":
            return cls(problem_type, labels, [])
        if thresholds is None:
            return cls(problem_type, labels, [DEFAULT_THRESHOLD] * len(labels))
        ok = (isinstance(thresholds, list) and len(thresholds) == len(labels)
              and all(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 <= t <= 1 for t in thresholds))
        if not ok:
            raise ValueError(f"{where}: thresholds must be a list of {len(labels)} numbers in [0, 1] (one per label "
                             f"{labels}), got {thresholds!r}")
        return cls(problem_type, labels, [float(t) for t in thresholds])


def scores(logits: torch.Tensor, problem_type: str) -> torch.Tensor:
    """(N, C) float32 per problem type: softmax probabilities (single_label), per-label sigmoid probabilities
    (multi_label, computed in float64), or the raw values (regression)."""
    logits = logits.float()
    if problem_type == "multi_label":
        return logits.double().sigmoid().float()
    if problem_type == "regression":
        return logits
    return logits.softmax(-1)


def decide(probs: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
    """(N, L) bool: multi-label decisions ``probs >= thresholds`` (thresholds (L,))."""
    return probs.double() >= torch.tensor(list(thresholds), dtype=torch.float64)


def output_records(logits: torch.Tensor, spec: OutputSpec) -> list[dict]:
    """One record (module docstring) per row of ``logits`` (N, C)."""
    values = scores(logits, spec.problem_type)
    return [output_record(row, spec) for row in values]


def output_record(row: torch.Tensor, spec: OutputSpec) -> dict:
    """The record of one text from its :func:`scores` row (C,)."""
    finite = bool(torch.isfinite(row).all())
    if spec.problem_type == "regression":
        vals = [float(v) if math.isfinite(float(v)) else None for v in row]
        if len(vals) == 1:
            return {"value": vals[0]}
        return {"values": dict(zip(spec.labels, vals))}
    probs = {name: round(float(v), 6) for name, v in zip(spec.labels, row)}
    if spec.problem_type == "multi_label":
        on = decide(row[None], spec.thresholds)[0].tolist()
        return {"labels": [n for n, o in zip(spec.labels, on) if o] if finite else None, "probabilities": probs}
    return {"label": spec.labels[int(row.argmax())] if finite else None, "probabilities": probs}


def record_finite(record: dict) -> bool:
    """False when a record stands for a non-finite model output (label / labels / value None)."""
    if "values" in record:
        return all(v is not None for v in record["values"].values())
    for key in ("label", "labels", "value"):
        if key in record:
            return record[key] is not None
    return True
