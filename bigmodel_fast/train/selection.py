"""Model selection of a fine-tuning run: the validation set (``--valid``, or a seeded held-out share of train) and
early stopping on the selection metric."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ..data.classification import LabelledTexts


def subset(data: LabelledTexts, idx, source: str | None = None) -> LabelledTexts:
    """The rows ``idx`` of ``data`` (in that order)."""
    idx = list(idx)
    return LabelledTexts([data.texts[i] for i in idx], [data.labels[i] for i in idx], source or data.source,
                         [data.lines[i] for i in idx] if data.lines else [], data.task)


def hold_out(data: LabelledTexts, fraction: float, seed: int) -> tuple[LabelledTexts, LabelledTexts | None]:
    """``(train, held out)``: ``floor(fraction * N)`` rows held out, seeded. Single-label data is split per class
    (stratified: each class gives ``round(fraction * n_c)`` rows, never its last one); multi-label and regression
    data at random. ``(data, None)`` when ``fraction`` is 0 or that leaves no row to hold out."""
    n = len(data)
    want = math.floor(fraction * n)
    if fraction <= 0 or want < 1:
        return data, None
    rng = np.random.default_rng(seed)
    if data.task == "single-label":
        by_class: dict[str, list[int]] = defaultdict(list)
        for i, label in enumerate(data.labels):
            by_class[label].append(i)
        held = []
        for label in sorted(by_class):
            rows = by_class[label]
            take = min(round(fraction * len(rows)), len(rows) - 1)
            held.extend(rng.permutation(rows)[:take].tolist())
        if not held:
            return data, None
    else:
        held = rng.permutation(n)[:want].tolist()
    held_set = set(held)
    keep = [i for i in range(n) if i not in held_set]
    return subset(data, keep), subset(data, sorted(held), f"{data.source} (held out)")


class EarlyStopping:
    """Tracks the best validation score; :meth:`update` says whether an epoch's score is a new best, and
    :attr:`stop` turns True after ``patience`` epochs in a row without one (0: never), not before epoch
    ``min_epochs`` (a third of the planned epochs). Epochs only count once the best score beats ``floor`` (the
    majority baseline's): a model still stuck at the constant prediction (a slow start) is not stopped."""

    def __init__(self, patience: int, higher_is_better: bool, min_epochs: int = 1, floor: float | None = None):
        self.patience, self.higher, self.min_epochs, self.floor = patience, higher_is_better, min_epochs, floor
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0
        self.stop = False

    def update(self, epoch: int, score: float) -> bool:
        """Record the score of (1-based) ``epoch``; True when it beats the best so far (strictly; NaN never)."""
        better = not math.isnan(score) and (self.best is None or (score > self.best if self.higher
                                                                  else score < self.best))
        if better:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
        elif self.floor is None or self._beats(self.best, self.floor):
            self.bad_epochs += 1
        self.stop = self.patience > 0 and self.bad_epochs >= self.patience and epoch >= self.min_epochs
        return better

    def _beats(self, a: float | None, b: float) -> bool:
        return a is not None and (a > b if self.higher else a < b)
