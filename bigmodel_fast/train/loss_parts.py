"""One optimizer step's loss as the mean over ALL its target tokens, whatever the micro-batching and the ranks.

The pretraining models return per-part means (``mlm_loss`` over masked tokens, ``nsp_loss`` over pairs, the causal
``loss`` over shifted labels). Averaging those means over ``grad_accum`` micro-batches and over ranks would weigh a
micro-batch with few masked tokens as much as one with many, so a step of 2 ranks x 8 rows would not be the step of
one process with 16 rows. Instead each micro-batch's part mean is weighted by its share of the step's targets of
that part, counted over every micro-batch of the step on every rank (one all-reduce of a few numbers per step,
before the forward passes): the step's loss and gradients are then exactly those of the whole global batch at once.

With one micro-batch in one process every weight is exactly 1 (a count divided by itself), so nothing changes there.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..nn import IGNORE_INDEX

# (batch key of the part's labels, model output key of the part's mean loss), in a fixed order
PARTS: tuple[tuple[str, str], ...] = (("mlm_labels", "mlm_loss"), ("nsp_labels", "nsp_loss"), ("labels", "loss"))


def batch_parts(batch: dict) -> list[tuple[str, str]]:
    """The loss parts a batch carries labels for (e.g. MLM + NSP for BERT, the causal loss for GPT / LSTM)."""
    parts = [p for p in PARTS if batch.get(p[0]) is not None]
    if not parts:
        raise ValueError(f"a pretraining batch needs labels ({', '.join(p[0] for p in PARTS)}); got keys "
                         f"{sorted(batch)}")
    return parts


def target_counts(batch: dict, parts: Sequence[tuple[str, str]]) -> torch.Tensor:
    """(P,) float64: the number of labels != -100 of each part in ``batch`` (on the batch's device, no sync)."""
    return torch.stack([(batch[key] != IGNORE_INDEX).sum() for key, _ in parts]).double()


def step_weights(batches: Sequence[dict], parts: Sequence[tuple[str, str]],
                 all_reduce_sum: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """(A, P) float32 weights of ``A`` micro-batches: each one's count of a part over the step's total count of it
    (summed over the micro-batches here and, through ``all_reduce_sum``, over the ranks). A part without any target
    in the whole step gets weight 0."""
    counts = torch.stack([target_counts(b, parts) for b in batches])  # (A, P)
    totals = all_reduce_sum(counts.sum(0))  # (P,)
    return (counts / totals.clamp_min(1.0)).float()


def weighted_loss(out: dict, parts: Sequence[tuple[str, str]], weights: torch.Tensor) -> torch.Tensor:
    """0-d: this micro-batch's contribution to the step's loss, ``sum_p out[p] * weights[p]``."""
    loss = None
    for i, (_, key) in enumerate(parts):
        if key not in out:
            raise KeyError(f"the model returned no {key!r} for a batch with {parts[i][0]!r}")
        term = out[key] * weights[i]
        loss = term if loss is None else loss + term
    return loss
