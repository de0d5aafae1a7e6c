"""What a checkpoint exports as: the registry that lets a model architecture plug into ``bmf export``.

A checkpoint becomes an :class:`ExportTarget`: an eval-mode module with the one bundle signature
``forward(input_ids (B, S) long, attention_mask (B, S) bool) -> logits``, a task and what the runner needs to
know. Both formats (TorchScript and AOTInductor) and the C++ runner only see that signature, so a new architecture
needs exactly one thing: a builder registered here for its ``(checkpoint kind, arch)``.

* ``("classifier", "*")``: any fine-tuned sequence classifier that :func:`bigmodel_fast.models.build_classifier`
  builds (BERT and GPT backbones today; the LSTM classifier of its own issue plugs in here with no change as long
  as its module keeps the ``(input_ids, attention_mask) -> (B, C)`` forward and is scriptable / exportable; register
  a specific ``("classifier", "lstm")`` builder if it needs a wrapper).
* ``("pretrain", "gpt")``: the GPT language model, as :class:`~bigmodel_fast.export.gpt.LMForExport`.

Export always runs the reference (non-Triton) ops: see :func:`reference_ops`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from torch import nn

from bigmodel_fast.models.config import ModelConfig

__all__ = ["REFERENCE_BACKENDS", "ExportTarget", "TASKS", "load_export_target", "reference_ops", "register_target"]

TASKS = {"classify": "logits (B, num_labels)", "lm": "next-token logits (B, S, vocab_size)"}


@dataclass
class ExportTarget:
    module: nn.Module  # eval mode; forward(input_ids (B, S) long, attention_mask (B, S) bool) -> logits
    cfg: ModelConfig
    task: str  # a key of TASKS
    max_len: int  # classify: longest input incl. [CLS]/[SEP]; lm: context window (max_position)
    labels: list[str] = field(default_factory=list)


Builder = Callable[[nn.Module, ModelConfig, dict], ExportTarget]
_BUILDERS: dict[tuple[str, str], Builder] = {}


def register_target(kind: str, arch: str = "*") -> Callable[[Builder], Builder]:
    """Decorator: ``builder(model, cfg, meta) -> ExportTarget`` for checkpoints of ``kind`` and ``arch``
    (``"*"``: any arch of that kind without a more specific builder)."""

    def deco(fn: Builder) -> Builder:
        _BUILDERS[(kind, arch)] = fn
        return fn

    return deco


@register_target("classifier")
def _classifier(model: nn.Module, cfg: ModelConfig, meta: dict) -> ExportTarget:
    labels = list(cfg.label_names) or [str(i) for i in range(cfg.num_labels)]
    return ExportTarget(model.eval(), cfg, "classify", int(meta.get("max_len", 128)), labels)


@register_target("pretrain", "gpt")
def _gpt_lm(model: nn.Module, cfg: ModelConfig, meta: dict) -> ExportTarget:
    from .gpt import LMForExport

    return ExportTarget(LMForExport(model).eval(), cfg, "lm", cfg.max_position)


def load_export_target(checkpoint: str | Path) -> ExportTarget:
    """Build the export target of a checkpoint directory.

    Raises:
        ValueError: no builder for this checkpoint's kind and arch (e.g. a BERT pretraining checkpoint).
    """
    from ..train import checkpoint as ckpt

    cfg_dict, meta = ckpt.read_meta(checkpoint)
    kind, arch = meta.get("kind"), cfg_dict.get("arch")
    builder = _BUILDERS.get((kind, arch)) or _BUILDERS.get((kind, "*"))
    if builder is None:
        known = ", ".join(f"{k} ({a if a != '*' else 'any arch'})" for k, a in sorted(_BUILDERS))
        raise ValueError(f"{checkpoint}: a {kind} checkpoint of arch {arch!r} has no export; exportable are "
                         f"fine-tuned classifier checkpoints and GPT pretraining checkpoints [{known}] "
                         f"(fine-tune a BERT checkpoint with `bmf finetune` first)")
    model, cfg, meta = ckpt.load_model(checkpoint, kind)
    return builder(model, cfg, meta)


# Backend switches of the ops dispatchers (bigmodel_fast.ops.*) and the value that selects the plain-PyTorch path.
REFERENCE_BACKENDS = {"BMF_ATTENTION": "reference", "BMF_LSTM": "reference"}


@contextmanager
def reference_ops() -> Iterator[None]:
    """Run the plain-PyTorch reference ops inside the block (every switch in :data:`REFERENCE_BACKENDS`): what gets
    traced into an exported model must not depend on Triton kernels or the machine's SDPA choice. (Under
    TorchScript the dispatchers pick the reference path themselves.)"""
    old = {k: os.environ.get(k) for k in REFERENCE_BACKENDS}
    os.environ.update(REFERENCE_BACKENDS)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
