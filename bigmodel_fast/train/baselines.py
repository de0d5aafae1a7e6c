"""The checks after a fine-tuning run: does the selected model beat what needs no training?

On the validation set (``--valid`` or the held-out share of train) the selected model is compared with

- the majority baseline (single-label: the most frequent training class for every text; multi-label: every label
  for every text, the constant prediction with the best F1; regression: the training mean),
- TF-IDF (:func:`bigmodel_fast.eval.baseline.tfidf_vectorizer`: word 1-2-grams, CJK-aware, and character
  1-3-grams; the featuriser of ``bmf evaluate --baseline`` too) + logistic regression (one-vs-rest for
  multi-label; ridge regression for regression), fitted on the training split, when scikit-learn is installed
  (else skipped, and the checks say so),

by the selection score (macro-F1, or MSE for regression). A warning (one line each) is raised when the model
predicts fewer than all classes, does no better than the majority baseline, or scores below TF-IDF.
"""

from __future__ import annotations

import numpy as np
import torch

from ..eval.baseline import sklearn_classes, tfidf_vectorizer
from ..eval.metrics import classification_report, multilabel_report, regression_report


def _score(objective, pred: np.ndarray, y: np.ndarray) -> float:
    """The selection score of predictions ``pred`` against targets ``y`` (both in the objective's output form:
    class ids, (N, L) 0/1, or values on the data's scale)."""
    if objective.problem_type == "single_label":
        return classification_report(y, pred, objective.label_names)["macro"]["f1"]
    if objective.problem_type == "multi_label":
        return multilabel_report(y, pred, objective.label_names)["macro_f1"]
    return regression_report(y, pred)["mse"]


def _truth(objective, targets: torch.Tensor) -> np.ndarray:
    if objective.problem_type == "single_label":
        return targets.numpy()
    if objective.problem_type == "multi_label":
        return targets.numpy().astype(np.int64)
    return objective.predict(targets)  # normalised targets back on the data's scale


def majority_baseline(objective, train_targets: torch.Tensor, n: int) -> np.ndarray:
    """Predictions of the no-training baseline for ``n`` texts."""
    if objective.problem_type == "single_label":
        return np.full(n, int(np.bincount(train_targets.numpy()).argmax()), dtype=np.int64)
    if objective.problem_type == "multi_label":  # every label for every text: the best constant for F1
        return np.ones((n, train_targets.shape[1]), dtype=np.int64)
    return np.full(n, objective.mean)


def majority_score(objective, train_targets: torch.Tensor, valid_targets: torch.Tensor) -> float:
    """The selection score of the majority baseline on the validation targets."""
    truth = _truth(objective, valid_targets)
    return _score(objective, majority_baseline(objective, train_targets, len(truth)), truth)


def tfidf_baseline(objective, train_texts, train_targets: torch.Tensor, valid_texts) -> np.ndarray | None:
    """Predictions of TF-IDF + a linear model fitted on the training texts; None without scikit-learn or when the
    training split has a single class."""
    sk = sklearn_classes()
    if sk is None:
        return None
    LogisticRegression, Ridge, OneVsRestClassifier = sk["LogisticRegression"], sk["Ridge"], sk["OneVsRestClassifier"]
    vec = tfidf_vectorizer()
    x_train, x_valid = vec.fit_transform(list(train_texts)), vec.transform(list(valid_texts))
    if objective.problem_type == "single_label":
        y = train_targets.numpy()
        if len(set(y.tolist())) < 2:
            return None
        return LogisticRegression(max_iter=1000).fit(x_train, y).predict(x_valid)
    if objective.problem_type == "multi_label":
        y = train_targets.numpy().astype(np.int64)
        cols = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
        pred = np.tile((y.mean(axis=0) > 0.5).astype(np.int64), (x_valid.shape[0], 1))
        if cols:
            clf = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(x_train, y[:, cols])
            pred[:, cols] = clf.predict(x_valid)
        return pred
    return Ridge(alpha=1.0).fit(x_train, objective.predict(train_targets)).predict(x_valid)


def run_checks(objective, model_logits: torch.Tensor, valid_targets: torch.Tensor, train_texts,
               train_targets: torch.Tensor, valid_texts, where: str) -> dict:
    """``{"model", "majority", "tfidf_lr" (None: skipped), "tfidf_note", "never_predicted", "warnings"}``: the
    selection scores on the validation set ``where`` and one-line warnings."""
    metric = "MSE" if objective.problem_type == "regression" else "macro-F1"
    truth = _truth(objective, valid_targets)
    model = _score(objective, objective.predict(model_logits), truth)
    majority = majority_score(objective, train_targets, valid_targets)
    tfidf_pred = tfidf_baseline(objective, train_texts, train_targets, valid_texts)
    tfidf = None if tfidf_pred is None else _score(objective, tfidf_pred, truth)
    note = None
    if tfidf is None:
        note = ("scikit-learn is not installed: the TF-IDF + logistic-regression comparison was skipped"
                if sklearn_classes() is None else "the training split has one class: no TF-IDF baseline")
    warnings = []
    never = objective.never_predicted(model_logits)
    if never:
        warnings.append(f"the model predicts only {objective.num_labels - len(never)} of {objective.num_labels} "
                        f"labels on {where} (never: {', '.join(never[:10])}{' ...' if len(never) > 10 else ''}); "
                        f"try more epochs, another --lr, or --class-weights auto for imbalanced labels")
    worse = (lambda a, b: a >= b) if objective.problem_type == "regression" else (lambda a, b: a <= b)
    if worse(model, majority):
        warnings.append(f"the model's validation {metric} {model:.4f} is no better than the majority baseline's "
                        f"{majority:.4f} on {where}: it has learned nothing usable")
    if tfidf is not None and (tfidf < model if objective.problem_type == "regression" else tfidf > model):
        warnings.append(f"the model's validation {metric} {model:.4f} is below TF-IDF + "
                        f"{'ridge' if objective.problem_type == 'regression' else 'logistic regression'}'s "
                        f"{tfidf:.4f} on {where}")
    return {"metric": metric, "model": model, "majority": majority, "tfidf_lr": tfidf, "tfidf_note": note,
            "never_predicted": never, "warnings": warnings}
