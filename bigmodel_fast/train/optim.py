"""AdamW with decoupled weight decay groups and the warmup + decay learning-rate schedule.

:class:`OptimConfig` is pretraining's (fixed defaults); :class:`FinetuneOptimConfig` is fine-tuning's, whose
``lr`` and ``warmup_steps`` default to ``None`` = auto (``--lr auto``), resolved per backbone and data size by
:mod:`bigmodel_fast.train.finetune_defaults`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..config_cli import auto_or, check_fields, setting

SCHEDULES = ("linear", "cosine", "constant")


@dataclass
class OptimConfig:
    """Optimizer and schedule settings shared by pretraining and fine-tuning (the flags of the ``optimizer`` group)."""

    lr: float = setting(5e-4)
    weight_decay: float = setting(0.01)
    beta1: float = setting(0.9, cli=False)
    beta2: float = setting(0.98, cli=False)
    eps: float = setting(1e-6, cli=False)
    warmup_steps: int = setting(100, help="-1: 6% of the run")
    schedule: str = setting("linear", choices=SCHEDULES)  # the shape after warmup
    min_lr_ratio: float = setting(0.1)  # the decay ends at lr * min_lr_ratio
    clip_grad: float = setting(1.0, help="max grad norm; <= 0 disables")

    def __post_init__(self):
        check_fields(self)
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps is not None and self.warmup_steps < -1:
            raise ValueError(f"warmup_steps must be >= 0 (or -1 for 6% of the run), got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


auto_lr = auto_or(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")  # --lr
auto_steps = auto_or(int, lambda v: v >= -1, "an integer >= -1 (-1: 6% of the run)")  # --warmup-steps


@dataclass
class FinetuneOptimConfig(OptimConfig):
    """:class:`OptimConfig` with ``lr`` and ``warmup_steps`` defaulting to auto (None), for ``bmf finetune``."""

    lr: float | None = setting(None, type=auto_lr, metavar="LR|auto",
                               help="default auto: by backbone (imported or hidden >= 384: 3e-5; smaller bert/gpt: "
                                    "5e-4; lstm: 1e-3)")
    warmup_steps: int | None = setting(None, type=auto_steps, metavar="N|auto",
                                       help="default auto: 6% of the run (-1 too); never more than half the run "
                                            "(clamped, with a note)")


def clamp_warmup(warmup_steps: int | None, total_steps: int) -> tuple[int, str | None]:
    """``(warmup, note)``: the warmup of a run of ``total_steps`` steps: 6% of it (at least 1) for None / -1, else
    ``warmup_steps``; at most half the run (``total_steps // 2``), with a one-line note when that clamp applied
    (None otherwise)."""
    total = max(total_steps, 1)
    if warmup_steps is None or warmup_steps < 0:
        return max(1, int(0.06 * total)) if total > 1 else 0, None
    if warmup_steps > total // 2:
        return total // 2, (f"warmup_steps {warmup_steps} is more than half of the run's {total} steps; "
                            f"clamped to {total // 2}")
    return warmup_steps, None


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW where matrices decay and biases, norms and 1-d parameters do not. Tied weights appear once."""
    decay, no_decay, seen = [], [], set()
    for _, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # the fused kernel: one pass over each tensor (MiniLM-sized step alone, 2-core CPU under load: 0.2-0.4 s vs
    # 1.3-2.1 s foreach; within a whole fine-tuning step the gain was ~1%, benchmarks/results/finetune_step_cpu.md);
    # foreach elsewhere (other devices, non-float parameters)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                             **({"fused": True} if fused else {"foreach": True}))


class WarmupDecay:
    """``lr_factor(step)``: linear warmup to 1, then linear or cosine decay to ``min_lr_ratio`` at ``total_steps``."""

    def __init__(self, cfg: OptimConfig, total_steps: int):
        self.cfg, self.total = cfg, max(total_steps, 1)
        self.warmup = cfg.warmup_steps if cfg.warmup_steps >= 0 else max(1, int(0.06 * self.total))

    def __call__(self, step: int) -> float:
        c, warmup = self.cfg, self.warmup
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if c.schedule == "constant":
            return 1.0
        progress = min((step - warmup) / max(self.total - warmup, 1), 1.0)
        if c.schedule == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return c.min_lr_ratio + (1.0 - c.min_lr_ratio) * shape


class LRSchedule:
    """Sets the learning rate of every parameter group to ``base_lr * factor(step)``; :meth:`step` advances the step.

    The base rates are the groups' rates at construction (the configured ``lr``). Its only state is the step number:
    :meth:`state_dict` / :meth:`load_state_dict` save and restore it (``{"step": int}``)."""

    def __init__(self, opt: torch.optim.Optimizer, factor: Callable[[int], float]):
        self.opt, self.factor = opt, factor
        self.base_lrs = [group["lr"] for group in opt.param_groups]
        self.step_num = 0
        self._apply()

    def _apply(self) -> None:
        for group, base in zip(self.opt.param_groups, self.base_lrs):
            group["lr"] = base * self.factor(self.step_num)

    def step(self) -> None:
        """Advance one optimizer step and set the rates for the next one."""
        self.step_num += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """The rate of each parameter group (what the next optimizer step uses)."""
        return [group["lr"] for group in self.opt.param_groups]

    def state_dict(self) -> dict:
        return {"step": self.step_num}

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state["step"]``. The rates stay as the optimizer's restored state holds them (load the
        optimizer first): the first step after a resume uses the rate the interrupted run would have used."""
        step = state["step"]
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"scheduler step must be an int >= 0, got {step!r}")
        self.step_num = step


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int) -> LRSchedule:
    """The warmup + decay schedule of ``cfg`` over ``total_steps`` optimizer steps."""
    return LRSchedule(opt, WarmupDecay(cfg, total_steps))
