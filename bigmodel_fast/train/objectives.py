"""What a fine-tuning run optimises and selects by, one small class per problem type (``ModelConfig.problem_type``).

=================  ================================  ==============================  ===================================
problem type       targets                           loss                            selection (best checkpoint)
=================  ================================  ==============================  ===================================
``single_label``   (N,) int64 class ids              cross-entropy (class weights)   validation macro-F1 (higher wins)
``multi_label``    (N, L) float 0/1                  BCE with logits (pos. weights)  validation macro-F1 at per-label
                                                                                     thresholds tuned on it
``regression``     (N, 1) float, (y - mean) / std    MSE on the normalised targets   validation MSE (lower wins)
=================  ================================  ==============================  ===================================

Regression trains on targets normalised by the training set's mean and std; :meth:`Regression.fold_state` folds
``y = mean + std * output`` into the head's weights before a checkpoint is written, so the saved model outputs
values on the data's own scale and inference (evaluate, predict, export, the runner) needs nothing extra. Accuracy
never selects: a collapsed model that predicts the majority class cannot win on macro-F1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..eval.metrics import classification_report, multilabel_report, regression_report

PROBLEM_OF_TASK = {"single-label": "single_label", "multi-label": "multi_label", "regression": "regression"}
TASK_OF_PROBLEM = {v: k for k, v in PROBLEM_OF_TASK.items()}
CLASS_WEIGHTS = ("none", "auto")
MAX_POS_WEIGHT = 100.0


def inverse_frequency(counts: np.ndarray) -> np.ndarray:
    """Class weights ``N / (C * n_c)`` (C classes with ``n_c`` examples each, N in all): the inverse frequency,
    normalised so that the mean weight over the training examples is 1 (all 1 on balanced data)."""
    counts = np.asarray(counts, dtype=np.float64)
    return counts.sum() / (len(counts) * np.maximum(counts, 1.0))


class SingleLabel:
    """Softmax over ``label_names`` (one class per text)."""

    problem_type = "single_label"
    higher_is_better = True
    metric = "macro_f1"

    def __init__(self, label_names: Sequence[str], train_labels: Sequence[str], class_weights: str = "none"):
        self.label_names = list(label_names)
        self.index = {name: i for i, name in enumerate(self.label_names)}
        counts = np.bincount([self.index[x] for x in train_labels], minlength=len(self.label_names))
        self.counts = counts
        self.weights = inverse_frequency(counts) if class_weights == "auto" else None
        self._w = None if self.weights is None else torch.tensor(self.weights, dtype=torch.float32)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def targets(self, labels: Sequence[str]) -> torch.Tensor:
        """(N,) int64 class ids."""
        return torch.tensor([self.index[x] for x in labels], dtype=torch.long)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of logits (B, C) against ids (B,), weighted per class with ``--class-weights auto``."""
        w = None if self._w is None else self._w.to(logits.device)
        return F.cross_entropy(logits.float(), targets, weight=w)

    def predict(self, logits: torch.Tensor) -> np.ndarray:
        """(N,) class ids."""
        return logits.argmax(-1).numpy()

    def evaluate(self, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        """``{"macro_f1", "accuracy", "predicted_classes"}`` of validation logits (N, C)."""
        pred, y = self.predict(logits), targets.numpy()
        rep = classification_report(y, pred, self.label_names)
        return {"macro_f1": rep["macro"]["f1"], "accuracy": rep["accuracy"],
                "predicted_classes": sorted({self.label_names[i] for i in pred})}

    def never_predicted(self, logits: torch.Tensor) -> list[str]:
        seen = set(self.predict(logits).tolist())
        return [name for i, name in enumerate(self.label_names) if i not in seen]

    def tune(self, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        return {}

    def meta(self) -> dict:
        return {} if self.weights is None else {"class_weights": dict(zip(self.label_names, self.weights.tolist()))}

    def fold_state(self, state: dict) -> dict:
        return state


class MultiLabel:
    """One independent sigmoid per label in ``label_names``; a text may have any subset (also none)."""

    problem_type = "multi_label"
    higher_is_better = True
    metric = "macro_f1"

    def __init__(self, label_names: Sequence[str], train_labels: Sequence[list[str]], class_weights: str = "none"):
        self.label_names = list(label_names)
        self.index = {name: i for i, name in enumerate(self.label_names)}
        y = self.targets(train_labels).numpy()
        self.counts = y.sum(axis=0).astype(np.int64)
        self.thresholds = [0.5] * len(self.label_names)
        self.weights = None
        if class_weights == "auto":  # positive weight per label: negatives / positives, capped
            pos = np.maximum(self.counts, 1).astype(np.float64)
            self.weights = np.clip((len(y) - self.counts) / pos, 1.0, MAX_POS_WEIGHT)
        self._w = None if self.weights is None else torch.tensor(self.weights, dtype=torch.float32)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def targets(self, labels: Sequence[list[str]]) -> torch.Tensor:
        """(N, L) float 0/1 indicator."""
        y = torch.zeros(len(labels), len(self.label_names))
        for row, names in enumerate(labels):
            for name in names:
                y[row, self.index[name]] = 1.0
        return y

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean binary cross-entropy with logits over (B, L)."""
        w = None if self._w is None else self._w.to(logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), targets, pos_weight=w)

    def predict(self, logits: torch.Tensor, thresholds: Sequence[float] | None = None) -> np.ndarray:
        """(N, L) 0/1: ``sigmoid(logit) >= threshold`` per label."""
        t = np.asarray(self.thresholds if thresholds is None else thresholds, dtype=np.float64)
        return (torch.sigmoid(logits.double()).numpy() >= t[None, :]).astype(np.int64)

    def evaluate(self, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        """``{"macro_f1", "micro_f1", "subset_accuracy"}`` at the per-label thresholds tuned on these logits (what
        the model would be saved with), and ``"macro_f1_at_0.5"``."""
        y = targets.numpy().astype(np.int64)
        rep = multilabel_report(y, self.predict(logits, self.best_thresholds(logits, targets)), self.label_names)
        half = multilabel_report(y, self.predict(logits, [0.5] * self.num_labels), self.label_names)
        return {"macro_f1": rep["macro_f1"], "micro_f1": rep["micro_f1"], "subset_accuracy": rep["subset_accuracy"],
                "macro_f1_at_0.5": half["macro_f1"]}

    def never_predicted(self, logits: torch.Tensor) -> list[str]:
        hit = self.predict(logits).any(axis=0)
        return [name for name, h in zip(self.label_names, hit) if not h]

    def tune(self, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        """Sets :attr:`thresholds` to :meth:`best_thresholds`; returns ``{"thresholds": [...]}``."""
        self.thresholds = self.best_thresholds(logits, targets)
        return {"thresholds": list(self.thresholds)}

    def best_thresholds(self, logits: torch.Tensor, targets: torch.Tensor) -> list[float]:
        """Per-label thresholds that maximise each label's F1 on the validation logits (candidates 0.05 .. 0.95 by
        0.05; ties keep the one nearest 0.5; a label without validation positives keeps 0.5)."""
        probs, y = torch.sigmoid(logits.double()).numpy(), targets.numpy().astype(bool)
        grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
        grid = grid[np.argsort(np.abs(grid - 0.5), kind="stable")]  # nearest 0.5 first: wins ties
        out = []
        for j in range(len(self.label_names)):
            if not y[:, j].any():
                out.append(0.5)
                continue
            pred = probs[:, j][:, None] >= grid[None, :]  # (N, G)
            tp = (pred & y[:, j][:, None]).sum(0)
            f1 = 2 * tp / (pred.sum(0) + y[:, j].sum())
            out.append(float(grid[int(np.argmax(f1))]))
        return out

    def meta(self) -> dict:
        out = {"thresholds": list(self.thresholds)}
        if self.weights is not None:
            out["pos_weights"] = dict(zip(self.label_names, self.weights.tolist()))
        return out

    def fold_state(self, state: dict) -> dict:
        return state


class Regression:
    """One real output; trained on ``(y - mean) / std`` of the training targets (see the module docstring)."""

    problem_type = "regression"
    higher_is_better = False
    metric = "mse"

    def __init__(self, train_labels: Sequence[float], label_name: str = "value"):
        y = np.asarray(train_labels, dtype=np.float64)
        self.mean = float(y.mean())
        std = float(y.std())
        self.std = std if std > 0 else 1.0
        self.label_names = [label_name]
        self.counts = None
        self.weights = None

    num_labels = 1

    def targets(self, labels: Sequence[float]) -> torch.Tensor:
        """(N, 1) float32 normalised targets."""
        return ((torch.tensor(labels, dtype=torch.float64) - self.mean) / self.std).float()[:, None]

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits.float(), targets)

    def predict(self, logits: torch.Tensor) -> np.ndarray:
        """(N,) predictions on the data's scale from normalised outputs (N, 1)."""
        return logits.double().numpy()[:, 0] * self.std + self.mean

    def evaluate(self, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        """``{"mse", "mae", "pearson", "spearman"}`` on the data's scale."""
        y = targets.double().numpy()[:, 0] * self.std + self.mean
        rep = regression_report(y, self.predict(logits))
        return {k: rep[k] for k in ("mse", "mae", "pearson", "spearman")}

    def never_predicted(self, logits: torch.Tensor) -> list[str]:
        return []

    def tune(self, logits: torch.Tensor, targets: torch.Tensor) -> dict:
        return {}

    def meta(self) -> dict:
        return {"target_mean": self.mean, "target_std": self.std, "targets_folded_into_head": True}

    def fold_state(self, state: dict) -> dict:
        """The model's state dict with the head folded to output ``mean + std * output`` (the data's scale): what the
        checkpoint holds."""
        return {**state, "classifier.weight": state["classifier.weight"] * self.std,
                "classifier.bias": state["classifier.bias"] * self.std + self.mean}


def make_objective(task: str, label_names: Sequence[str], train_labels: Sequence, class_weights: str = "none",
                   label_field: str = "label"):
    """The objective of ``task`` (``single-label``, ``multi-label`` or ``regression``). ``--class-weights auto``
    with regression is a ValueError."""
    if class_weights not in CLASS_WEIGHTS:
        raise ValueError(f"class_weights must be one of {', '.join(CLASS_WEIGHTS)}, got {class_weights!r}")
    if task == "single-label":
        return SingleLabel(label_names, train_labels, class_weights)
    if task == "multi-label":
        return MultiLabel(label_names, train_labels, class_weights)
    if task == "regression":
        if class_weights != "none":
            raise ValueError("class_weights 'auto' needs labels; a regression run takes --class-weights none")
        return Regression(train_labels, label_field)
    raise ValueError(f"task must be one of {', '.join(PROBLEM_OF_TASK)}, got {task!r}")
