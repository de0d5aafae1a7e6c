"""``bmf evaluate`` of a token classifier: entity scores (seqeval default and strict IOB2), token accuracy, the
token-tag confusion matrix, and optionally the most-frequent-tag baseline and the figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.token_tags import read_tagged
from ..jsonio import write_json
from .entity_metrics import entity_scores
from .token_predict import TokenPredictor


def tag_confusion(y_true, y_pred, labels: list[str]) -> list[list[int]]:
    """(T, T) counts over every token, rows = true tag, columns = predicted, in ``labels`` order (a gold tag the
    model does not have is counted in no row: the entity scores still see it)."""
    index = {t: i for i, t in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for true, pred in zip(y_true, y_pred):
        for a, b in zip(true, pred):
            if a in index and b in index:
                m[index[a], index[b]] += 1
    return m.tolist()


def evaluate_token(model_path, data, *, out=None, batch_size: int = 64, device: str = "auto",
                   plots: str | None = None, baseline: str | None = None) -> dict:
    """The report of a token-classifier checkpoint or bundle on a tagged file (CoNLL / JSONL, BIO or BIOES):
    ``{"problem_type": "token", "entity": <default-mode scores>, "strict": <strict IOB2 scores>,
    "token_accuracy", "tag_confusion": {"labels", "matrix"}, "sentences", "tokens", "data_stats"}`` (the score
    dicts are :func:`~.entity_metrics.entity_scores`'), plus ``"baseline"`` (the most-frequent-tag tagger fitted on
    ``baseline``, a training file) and ``"plots"`` (the figures written to ``plots``)."""
    gold = read_tagged(data)
    predictor = TokenPredictor(model_path, device=device)
    pred = predictor.tag(gold.tokens, batch_size)
    default, strict = entity_scores(gold.tags, pred, "default"), entity_scores(gold.tags, pred, "strict")
    report = {"problem_type": "token", "model": str(model_path), "data": str(data), "labels": predictor.labels,
              "sentences": len(gold), "tokens": gold.stats.tokens, "data_stats": gold.stats.as_dict(),
              "entity": default, "strict": strict, "token_accuracy": default["token_accuracy"],
              "tag_confusion": {"labels": predictor.labels, "matrix": tag_confusion(gold.tags, pred, predictor.labels)}}
    if gold.stats.problems:
        report["data_problems"] = gold.stats.problems[:20]
    if baseline is not None:
        from .baseline import tagger_baseline_report

        report["baseline"] = tagger_baseline_report(baseline, gold.tokens, gold.tags)
    if plots is not None:
        from .plots import write_token_plots

        figures = write_token_plots(plots, default, report["tag_confusion"]["matrix"], predictor.labels)
        report["plots"] = {name: str(f["path"]) for name, f in figures.items()}
    if out is not None:
        write_json(Path(out), report)
    return report


def format_token_report(report: dict) -> str:
    """A plain-text table: per entity type P/R/F1/support (default mode), micro / macro, strict micro-F1, token
    accuracy, and the baseline's line when there is one."""
    rep = report["entity"]
    types = list(rep["per_type"])
    w = max(9, *(len(t) for t in types)) if types else 9
    lines = [f"{'entity':<{w}}  precision  recall      f1  support"]
    for name in [*types, "micro", "macro"]:
        r = rep["per_type"][name] if name in rep["per_type"] else rep[name]
        lines.append(f"{name:<{w}}  {r['precision']:9.4f}  {r['recall']:6.4f}  {r['f1']:6.4f}  {r['support']:7d}")
    lines.append(f"entity micro-F1 {rep['micro']['f1']:.4f} (strict IOB2 {report['strict']['micro']['f1']:.4f}), "
                 f"token accuracy {report['token_accuracy']:.4f} on {report['sentences']} sentences, "
                 f"{report['tokens']} tokens")
    if "baseline" in report:
        from .baseline import format_baseline_line

        lines.append(format_baseline_line(rep, report["baseline"]))
    return "\n".join(lines)
