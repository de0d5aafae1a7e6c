"""``bmf finetune``'s auto defaults: learning rate, epochs and warmup from the backbone and the data size.

The rule (README, "Fine-tuning defaults"):

==================  ===========================================================  =======  ==========================
backbone kind       which checkpoints                                            lr       epochs
==================  ===========================================================  =======  ==========================
``large``           imported (``bmf import-hf``) or ``hidden_size >= 384``       3e-5     ceil(300 / steps per epoch)
``small``           bmf-pretrained bert / gpt with ``hidden_size < 384``         5e-4     ceil(600 / steps per epoch)
``lstm``            arch ``lstm``                                                1e-3     ceil(600 / steps per epoch)
==================  ===========================================================  =======  ==========================

Epochs are clamped to [3, 10] (large) or [3, 20] (small, lstm): a small data set gets more passes, so that every
run takes a few hundred optimizer steps; early stopping (``--patience``) ends a run once validation stops
improving. Warmup is 6% of the run's steps; a given ``--warmup-steps`` longer than half the run is clamped to half
with a note. Values given on the command line are kept as they are.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..config_cli import auto_or
from ..models.config import ModelConfig
from .optim import clamp_warmup

LARGE_HIDDEN = 384  # hidden_size from which a backbone counts as large (MiniLM: 384, BERT-base: 768)


@dataclass(frozen=True)
class Recipe:
    """Auto values of one backbone kind: ``lr``, and epochs = ``ceil(target_steps / steps_per_epoch)`` clamped to
    ``[min_epochs, max_epochs]``."""

    lr: float
    target_steps: int
    min_epochs: int
    max_epochs: int


RECIPES = {
    "large": Recipe(lr=3e-5, target_steps=300, min_epochs=3, max_epochs=10),
    "small": Recipe(lr=5e-4, target_steps=600, min_epochs=3, max_epochs=20),
    "lstm": Recipe(lr=1e-3, target_steps=600, min_epochs=3, max_epochs=20),
}


def backbone_kind(model_cfg: ModelConfig, source_meta: dict) -> str:
    """``"lstm"`` for arch lstm, ``"large"`` for an imported checkpoint (meta.json ``hf_model_type``, also kept by
    classifiers fine-tuned from one) or ``hidden_size >= 384``, else ``"small"``."""
    if model_cfg.arch == "lstm":
        return "lstm"
    if source_meta.get("hf_model_type") or source_meta.get("backbone_kind") == "large":
        return "large"
    return "large" if model_cfg.hidden_size >= LARGE_HIDDEN else "small"


@dataclass
class Schedule:
    """The resolved schedule of a run; ``auto`` names the values that came from the rule, ``notes`` the one-line
    remarks to print (a clamped warmup)."""

    backbone_kind: str
    lr: float
    epochs: int
    warmup_steps: int
    steps_per_epoch: int
    total_steps: int
    auto: list[str]
    notes: list[str]

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self, train_examples: int, batch_size: int) -> str:
        """One line: the values and which were auto."""
        def tag(name):
            return " (auto)" if name in self.auto else ""

        return (f"{self.backbone_kind} backbone, {train_examples} training examples, batch {batch_size}: "
                f"lr {self.lr:g}{tag('lr')}, epochs {self.epochs}{tag('epochs')}, warmup {self.warmup_steps} steps"
                f"{tag('warmup_steps')}, {self.total_steps} steps in all ({self.steps_per_epoch} per epoch)")


def resolve_schedule(kind: str, train_examples: int, batch_size: int, lr: float | None, epochs: int | None,
                     warmup_steps: int | None, max_steps: int = 0) -> Schedule:
    """The run's lr, epochs and warmup: each None takes the :data:`RECIPES` rule of backbone ``kind``; ``max_steps``
    > 0 caps the run's steps. The warmup is clamped to half the run (:func:`~.optim.clamp_warmup`)."""
    recipe = RECIPES[kind]
    steps_per_epoch = max(1, math.ceil(train_examples / batch_size))
    auto = [name for name, value in (("lr", lr), ("epochs", epochs), ("warmup_steps", warmup_steps)) if value is None]
    if lr is None:
        lr = recipe.lr
    if epochs is None:
        epochs = min(max(math.ceil(recipe.target_steps / steps_per_epoch), recipe.min_epochs), recipe.max_epochs)
    total = steps_per_epoch * epochs if max_steps <= 0 else min(max_steps, steps_per_epoch * epochs)
    warmup, note = clamp_warmup(warmup_steps, total)
    return Schedule(kind, lr, epochs, warmup, steps_per_epoch, total, auto, [note] if note else [])


auto_epochs = auto_or(int, lambda v: v >= 1, "an integer >= 1")  # --epochs
