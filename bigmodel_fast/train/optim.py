"""AdamW with decoupled weight decay groups and the warmup + decay learning-rate schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "cosine", "constant")


@dataclass
class OptimConfig:
    """Optimizer and schedule settings shared by pretraining and fine-tuning."""

    lr: float = 5e-4
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    warmup_steps: int = 100  # -1: 6% of the run
    schedule: str = "linear"  # linear | cosine | constant (after warmup)
    min_lr_ratio: float = 0.1  # the decay ends at lr * min_lr_ratio
    clip_grad: float = 1.0  # max global grad norm; <= 0 disables clipping

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < -1:
            raise ValueError(f"warmup_steps must be >= 0 (or -1 for 6% of the run), got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW where matrices decay and biases, norms and 1-d parameters do not. Tied weights appear once."""
    decay, no_decay, seen = [], [], set()
    for _, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, foreach=True)


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


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(opt, WarmupDecay(cfg, total_steps))
