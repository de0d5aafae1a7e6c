"""The pieces every fine-tuning trainer shares (sequence classification :mod:`.finetune`, token classification
:mod:`.finetune_token`): the model put on its device with its weights and the speed switches, and the optimizer
side of the loop (optimizer, schedule, GradScaler, metrics log, non-finite guard, one step, a checked save)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .. import checkpoint as ckpt
from ..runtime import amp_dtype
from . import speed
from .errors import NonFiniteError
from .metrics_log import MetricsLog, NullLog
from .optim import OptimConfig, build_optimizer, build_scheduler
from .parallel import Parallel
from .step import NonFiniteGuard, OptimizerStep


def attach_model(model: nn.Module, weights: dict, keep_head: bool, cfg, parallel: Parallel):
    """``(module, model)``: ``model`` with ``weights`` (all of them when ``keep_head``, else its backbone's: a
    CheckpointError naming ``cfg.checkpoint`` when some are missing) on the run's device, with TF32 / activation
    checkpointing / compile as ``cfg`` asks, and the model the loop calls (DDP or FSDP2 under torchrun)."""
    device = parallel.device
    if keep_head:  # the whole model, head included: same tensors, same logits before the first step
        model.load_state_dict(weights)
    else:
        missing, _ = model.load_backbone(weights)
        if missing:
            raise ckpt.CheckpointError(f"{cfg.checkpoint}: backbone weights missing for {sorted(missing)[:5]}")
    model.to(device)
    speed.set_tf32(device, cfg.tf32)
    if cfg.activation_checkpointing:
        speed.apply_activation_checkpointing(model)
    if speed.compile_enabled(cfg.compile, device):
        speed.compile_model(model, per_block=parallel.enabled and parallel.mode == "fsdp")
    return model, parallel.wrap(model, amp_dtype(device, cfg.amp) if parallel.mode == "fsdp" else None)


@dataclass
class Optimizing:
    """The optimizer side of one run; ``step`` counts the optimizer steps taken, ``saved_step`` the step of the
    last checkpoint written (None: none yet)."""

    opt: torch.optim.Optimizer
    sched: object
    scaler: object
    log: object
    guard: NonFiniteGuard
    parallel: Parallel
    log_every: int
    out: Path
    step: int = 0
    saved_step: int | None = None
    take: Callable = field(default=None, repr=False)

    def backward(self, loss: torch.Tensor, epoch: int, bar) -> None:
        """Backpropagate this rank's ``loss`` (its share of the global batch's mean), take the optimizer step on
        the loss summed over ranks, and log it every ``log_every`` steps."""
        world = self.parallel.world_size
        (self.scaler.scale(loss * world) if self.scaler is not None else loss * world).backward()
        loss = self.parallel.all_reduce_sum(loss.detach())
        self.take(self.step + 1, loss)
        self.step += 1
        bar.update(1)
        if self.step % self.log_every == 0:
            value = loss.item()
            self.log.write(step=self.step, epoch=epoch, loss=value, lr=self.sched.get_last_lr()[0])
            bar.set_postfix(loss=f"{value:.3f}")

    def save(self, write: Callable[[dict], None]) -> None:
        """Gather the weights (every rank takes part: FSDP2), refuse non-finite ones (NonFiniteError naming the
        last good checkpoint), and let rank 0 ``write(weights)``."""
        weights = self.parallel.model_state()
        bad = self.parallel.broadcast([n for n, t in weights.items() if t.is_floating_point()
                                       and not bool(torch.isfinite(t).all())] if self.parallel.is_main else None)
        if bad:
            raise NonFiniteError(f"step {self.step}: the weights hold non-finite values ({', '.join(bad[:3])}); not "
                                 f"saved; last good checkpoint: {self.guard.last_good()}")
        if self.parallel.is_main:
            write(weights)
        self.parallel.barrier()
        self.saved_step = self.step


def optimizing(cfg, module: nn.Module, model: nn.Module, schedule, parallel: Parallel, out: Path) -> Optimizing:
    """The :class:`Optimizing` of a run of ``cfg`` (a FinetuneConfig) on ``schedule`` (the resolved lr, warmup and
    steps): AdamW over ``module``'s parameters, the schedule, a GradScaler for fp16, ``out/metrics.jsonl`` (rank 0;
    TensorBoard with ``cfg.tensorboard``) and the ``--skip-nonfinite`` guard."""
    device = parallel.device
    optim_cfg = OptimConfig(**{**asdict(cfg.optim), "lr": schedule.lr, "warmup_steps": schedule.warmup_steps})
    opt = build_optimizer(module, optim_cfg)
    sched = build_scheduler(opt, optim_cfg, schedule.total_steps)
    scaler = speed.grad_scaler(device, amp_dtype(device, cfg.amp), 2.0 ** 16)
    log = MetricsLog(out / "metrics.jsonl", tensorboard=cfg.tensorboard) if parallel.is_main else NullLog()
    state: dict = {}
    guard = NonFiniteGuard(cfg.skip_nonfinite, lambda: (f"{out / 'checkpoint'} (step {state['o'].saved_step})"
                                                        if state["o"].saved_step is not None
                                                        else "none saved by this run"))
    run = Optimizing(opt, sched, scaler, log, guard, parallel, cfg.log_every, out)
    run.take = OptimizerStep(model, opt, sched, optim_cfg.clip_grad, guard, log, scaler)
    state["o"] = run
    return run
