"""One optimizer step, the same in both trainers: clip -> gradient norm -> non-finite check -> step -> schedule ->
zero-grad; plus the non-finite guards around it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .errors import NonFiniteError
from .metrics_log import MetricsLog


def grad_norm(model: torch.nn.Module, clip: float) -> torch.Tensor:
    """The global gradient norm (a device tensor, no host sync); clips to ``clip`` when ``clip > 0``. FSDP2's
    sharded gradients give the norm over all shards (their DTensor norm, gathered)."""
    params = [p for p in model.parameters() if p.grad is not None]
    if clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)
    full = getattr(norm, "full_tensor", None)  # a DTensor under FSDP2
    return full() if full is not None else norm


class NonFiniteGuard:
    """Stops training at a non-finite loss or gradient norm, or lets it skip up to ``budget`` such steps.

    :meth:`step_ok` costs one host sync per optimizer step. A skipped step does not update the weights (the caller
    zeroes the gradients) but still counts as a step: the step number and the learning-rate schedule advance."""

    def __init__(self, budget: int, last_good: Callable[[], str], skipped: int = 0):
        if budget < 0:
            raise ValueError(f"skip_nonfinite must be >= 0, got {budget}")
        self.budget, self.last_good, self.skipped = budget, last_good, skipped

    def step_ok(self, step: int, loss: torch.Tensor, norm: torch.Tensor) -> bool:
        both = torch.stack([loss.detach().float().reshape(()), norm.detach().float().reshape(())]).cpu()
        if bool(torch.isfinite(both).all()):
            return True
        if self.skipped < self.budget:
            self.skipped += 1
            return False
        raise NonFiniteError(f"step {step}: non-finite loss ({float(both[0])}) or gradient norm ({float(both[1])}); "
                             f"stopped without saving (--skip-nonfinite {self.budget} used up: {self.skipped} "
                             f"skipped); last good checkpoint: {self.last_good()}")


def check_finite_weights(model: torch.nn.Module, step: int, last_good: Callable[[], str]) -> None:
    """Refuse to save weights that hold NaN or infinity."""
    bad = [name for name, p in model.state_dict().items()
           if p.is_floating_point() and not bool(torch.isfinite(p).all())]
    if bad:
        raise NonFiniteError(f"step {step}: the weights hold non-finite values ({', '.join(bad[:3])}); not saved; "
                             f"last good checkpoint: {last_good()}")


@dataclass
class StepOutcome:
    """What one :class:`OptimizerStep` did: ``applied`` False when the weights were not updated; ``overflow`` True
    when that was the fp16 GradScaler skipping a step whose scaled gradients overflowed (the loss was finite: the
    scaler lowers its scale and training goes on, as PyTorch does; not a non-finite failure); ``grad_norm`` is the
    global norm before clipping (a 0-d device tensor)."""

    applied: bool
    grad_norm: torch.Tensor
    overflow: bool = False


class OptimizerStep:
    """The optimizer step both trainers take once the gradients of a step are accumulated.

    ``clip_grad`` (``<= 0``: no clipping) clips the global gradient norm; ``guard`` decides at a non-finite loss or
    norm whether to stop (it raises) or skip. A skipped step leaves the weights alone, is logged to ``log`` as
    ``{step, skipped_nonfinite, loss, grad_norm}``, and still advances the schedule; the gradients are always
    zeroed (``set_to_none``).

    With a ``scaler`` (``torch.amp.GradScaler``, the fp16 path; the loss was backpropagated through
    ``scaler.scale``) the gradients are unscaled before clipping, only the loss is checked by the guard, and the
    scaler decides whether the step runs: an overflow skips it (``scaler_skipped`` counts them, logged as
    ``{step, grad_scaler_skipped, grad_scale}``) without touching the non-finite budget."""

    def __init__(self, model: torch.nn.Module, opt: torch.optim.Optimizer, sched, clip_grad: float,
                 guard: NonFiniteGuard, log: MetricsLog, scaler: torch.amp.GradScaler | None = None,
                 scaler_skipped: int = 0):
        self.model, self.opt, self.sched = model, opt, sched
        self.clip_grad, self.guard, self.log = clip_grad, guard, log
        self.scaler, self.scaler_skipped = scaler, scaler_skipped

    def __call__(self, step: int, loss: torch.Tensor) -> StepOutcome:
        """Take optimizer step number ``step`` (1-based) whose summed loss is ``loss`` (0-d tensor; under
        data parallelism the loss summed over the ranks, so that every rank takes the same decision)."""
        scaler = self.scaler
        if scaler is not None:
            scaler.unscale_(self.opt)
        norm = grad_norm(self.model, self.clip_grad)
        overflow = False
        applied = self.guard.step_ok(step, loss, norm if scaler is None else loss.new_zeros(()))
        if applied and scaler is not None:
            before = scaler.get_scale()
            scaler.step(self.opt)  # skipped by the scaler when the unscaled gradients hold inf/NaN
            scaler.update()
            overflow = scaler.get_scale() < before  # the scale only drops after an overflow
            applied = not overflow
            if overflow:
                self.scaler_skipped += 1
                self.log.write(step=step, grad_scaler_skipped=self.scaler_skipped, grad_scale=scaler.get_scale())
        elif applied:
            self.opt.step()
        else:
            if scaler is not None:
                scaler.update()
            self.log.write(step=step, skipped_nonfinite=self.guard.skipped, loss=float(loss), grad_norm=float(norm))
        self.sched.step()  # a skipped step still advances the schedule (the lr stays a function of the step number)
        self.opt.zero_grad(set_to_none=True)
        return StepOutcome(applied, norm, overflow)
