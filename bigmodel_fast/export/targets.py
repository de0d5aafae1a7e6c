"""What a checkpoint exports as: the builders behind ``bmf export``, one per export target.

A checkpoint becomes an :class:`ExportTarget`: an eval-mode module with the one bundle signature
``forward(input_ids (B, S) long, attention_mask (B, S) bool) -> logits``, a task and what the runner needs to
know. Both formats (TorchScript and AOTInductor) and the C++ runner only see that signature.

Which target a checkpoint has comes from the model registry (:mod:`bigmodel_fast.models.registry`): the
``export_target`` of the entry for the checkpoint's arch and task (its meta.json ``kind``); None there means the
checkpoint does not export. A new architecture therefore exports with no code here when its registration names an
existing target; the builders are keyed by ``(export target, arch)``, ``"*"`` serving every arch without a more
specific builder:

* ``("classify", "*")``: any fine-tuned sequence classifier (BERT, GPT and LSTM backbones today), exported as it
  is: its module keeps the ``(input_ids, attention_mask) -> (B, C)`` forward and is scriptable / exportable
  (register a ``("classify", "<arch>")`` builder if an arch needs a wrapper).
* ``("token", "*")``: any fine-tuned token classifier, exported as it is (``(B, S, num_labels)`` tag logits); the
  bundle says how raw text becomes windows (:mod:`bigmodel_fast.data.token_inputs`).
* ``("lm", "*")``: a causal language model laid out like :class:`~bigmodel_fast.models.GPTForCausalLM`
  (``backbone`` with ``embeddings.word_embeddings``, ``lm_head``), as :class:`~bigmodel_fast.export.gpt.LMForExport`;
  only gpt's pretrain entry names it today.

Export always runs the reference (non-Triton) ops: see :func:`reference_ops`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager

from torch import nn

from bigmodel_fast.models import registry
from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.ops.backend import use_backends

__all__ = ["REFERENCE_BACKENDS", "ExportTarget", "TASKS", "load_export_target", "reference_ops", "register_target"]

TASKS = {"classify": "logits (B, num_labels)", "lm": "next-token logits (B, S, vocab_size)",
         "token": "tag logits (B, S, num_labels)"}


@dataclass
class ExportTarget:
    module: nn.Module  # eval mode; forward(input_ids (B, S) long, attention_mask (B, S) bool) -> logits
    cfg: ModelConfig
    task: str  # a key of TASKS
    max_len: int  # classify: longest input incl. [CLS]/[SEP]; lm: context window (max_position)
    labels: list[str] = field(default_factory=list)
    # classify: what the logits mean and how long texts are fed, written to bundle.json as they are:
    # {"problem_type", "long_text": {"mode", "stride"}, "thresholds" (multi_label only)}
    inference: dict = field(default_factory=dict)


WORDS_RULE = "bmf-words-1"  # bigmodel_fast.data.words: the text -> words rule the runner implements
Builder = Callable[[nn.Module, ModelConfig, dict], ExportTarget]
_BUILDERS: dict[tuple[str, str], Builder] = {}


def register_target(target: str, arch: str = "*") -> Callable[[Builder], Builder]:
    """Decorator: ``builder(model, cfg, meta) -> ExportTarget`` for checkpoints whose registry entry has
    ``export_target == target`` (a key of :data:`TASKS`), of ``arch`` (``"*"``: any arch without a more specific
    builder)."""
    if target not in TASKS:
        raise ValueError(f"register_target: unknown export target {target!r}; expected one of {', '.join(TASKS)}")

    def deco(fn: Builder) -> Builder:
        _BUILDERS[(target, arch)] = fn
        return fn

    return deco


@register_target("classify")
def _classifier(model: nn.Module, cfg: ModelConfig, meta: dict) -> ExportTarget:
    from ..data.long_text import long_text_settings
    from ..eval.outputs import OutputSpec

    labels = list(cfg.label_names) or [str(i) for i in range(cfg.num_labels)]
    spec = OutputSpec.from_meta(cfg.problem_type, labels, meta)
    mode, stride = long_text_settings(meta)
    inference = {"problem_type": spec.problem_type, "long_text": {"mode": mode, "stride": stride}}
    if spec.problem_type == "multi_label":
        inference["thresholds"] = spec.thresholds
    return ExportTarget(model.eval(), cfg, "classify", int(meta.get("max_len", 128)), labels, inference)


@register_target("token")
def _token_classifier(model: nn.Module, cfg: ModelConfig, meta: dict) -> ExportTarget:
    from ..data.token_inputs import window_overlap_of

    labels = list(cfg.label_names) or [str(i) for i in range(cfg.num_labels)]
    inference = {"problem_type": "token", "token": {"overlap": window_overlap_of(meta), "scheme": "bio",
                                                    "words": WORDS_RULE}}
    return ExportTarget(model.eval(), cfg, "token", int(meta.get("max_len", 128)), labels, inference)


@register_target("lm")
def _causal_lm(model: nn.Module, cfg: ModelConfig, meta: dict) -> ExportTarget:
    from .gpt import LMForExport

    return ExportTarget(LMForExport(model).eval(), cfg, "lm", cfg.max_position)


def load_export_target(checkpoint: str | Path) -> ExportTarget:
    """Build the export target of a checkpoint directory.

    Raises:
        ValueError: the checkpoint's (arch, kind) has no export target in the model registry, or no builder for
            it here (e.g. a BERT pretraining checkpoint).
    """
    from .. import checkpoint as ckpt

    cfg_dict, meta = ckpt.read_meta(checkpoint)
    kind, arch = meta.get("kind"), cfg_dict.get("arch")
    builder = _builder_for(arch, kind)
    if builder is None:
        known = ", ".join(f"{s.arch} {registry.TASKS[s.task]}" for s in registry.entries() if s.export_target)
        raise ValueError(f"{checkpoint}: a {kind} checkpoint of arch {arch!r} has no export; exportable are "
                         f"fine-tuned classifier checkpoints and GPT pretraining checkpoints [{known}] "
                         f"(fine-tune a BERT checkpoint with `bmf finetune` first)")
    model, cfg, meta = ckpt.load_model(checkpoint, kind)
    return builder(model, cfg, meta)


def _builder_for(arch: object, kind: object) -> Builder | None:
    """The builder of the export target that the registry entry of ``(arch, task of kind)`` names, or None."""
    tasks = [t for t, k in registry.TASKS.items() if k == kind]
    spec = registry.find(arch, tasks[0]) if tasks and isinstance(arch, str) else None
    if spec is None or spec.export_target is None:
        return None
    return _BUILDERS.get((spec.export_target, arch)) or _BUILDERS.get((spec.export_target, "*"))


# The backend of every op with a backend switch (bigmodel_fast.ops.backend.OPS) on the export path: the plain
# PyTorch reference, as keyword arguments of bigmodel_fast.ops.backend.use_backends.
REFERENCE_BACKENDS = {"attention": "reference", "lstm": "reference"}


def reference_ops() -> ContextManager[None]:
    """A block that runs the plain-PyTorch reference ops (:data:`REFERENCE_BACKENDS`), whatever ``BMF_ATTENTION`` /
    ``BMF_LSTM`` say: what gets traced into an exported model must not depend on Triton kernels or the machine's
    SDPA choice. A context-local override (:func:`bigmodel_fast.ops.backend.use_backends`); the environment is not
    touched. (Under TorchScript the dispatchers pick the reference path themselves.)"""
    return use_backends(**REFERENCE_BACKENDS)
