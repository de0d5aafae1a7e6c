"""The architecture/task registry: which model class, loader and export target an (arch, task) pair uses.

Every model module registers what it implements when it is imported (``bigmodel_fast.models`` imports them all)::

    register("gpt", "pretrain", GPTForCausalLM, loader_mode="causal", pack=True, export_target="lm")
    register("gpt", "classify", SequenceClassifier, backbone=GPTModel, export_target="classify")

Pretraining (loader mode, packing), fine-tuning, checkpoint loading, export, predict and the CLI's ``--arch``
choices all read this table, so a new architecture is one module plus its ``register`` calls, and a new task is
one name in :data:`TASKS` plus a registration per architecture that implements it.

Tasks: ``"pretrain"`` (the self-supervised objective of the arch), ``"classify"`` (sequence classification) and
``"token_classify"`` (token classification, :class:`~bigmodel_fast.models.token_classifier.TokenClassifier`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from torch import nn

from bigmodel_fast.models.config import ConfigError

if TYPE_CHECKING:  # type names only; config.py imports this module lazily, inside validation
    from bigmodel_fast.models.config import ModelConfig

__all__ = ["LOADER_MODES", "TASKS", "TaskSpec", "arch_names", "build_model", "entries", "expect_arch", "find", "get",
           "register", "task_of_kind", "tasks_of", "unregister"]

# task name -> the ``kind`` written in the meta.json of checkpoints that hold a model of that task
TASKS: dict[str, str] = {"pretrain": "pretrain", "classify": "classifier", "token_classify": "token_classifier"}
LOADER_MODES = ("mlm", "causal")  # the pretraining batch makers (bigmodel_fast.data.loader)


@dataclass(frozen=True)
class TaskSpec:
    """One registered (arch, task) pair.

    Attributes:
        arch: architecture name, the value of ``ModelConfig.arch``.
        task: a key of :data:`TASKS`.
        model_cls: ``model_cls(cfg: ModelConfig) -> nn.Module``, the model of this task.
        loader_mode: pretraining batches, ``"mlm"`` (masked LM + NSP pairs) or ``"causal"`` (next-token
            windows); None for tasks that train on labelled examples.
        pack: the pretraining loader packs several documents per row (position_ids + cu_seqlens) when
            ``PretrainConfig.pack`` is on; only for models whose forward takes ``cu_seqlens``.
        export_target: the :mod:`bigmodel_fast.export.targets` builder that exports a checkpoint of this pair
            (``"classify"``, ``"lm"``), or None: not exportable.
        backbone: ``backbone(cfg) -> nn.Module`` for task heads that are generic over the backbone
            (:class:`~bigmodel_fast.models.classifier.SequenceClassifier` builds ``cfg.arch``'s from here); the
            backbone's ``forward(input_ids, attention_mask, token_type_ids) -> (B, S, E)`` and
            ``pool(hidden, attention_mask) -> (B, E)`` are what such heads use.
    """

    arch: str
    task: str
    model_cls: Callable[["ModelConfig"], nn.Module]
    loader_mode: Optional[str] = None
    pack: bool = False
    export_target: Optional[str] = None
    backbone: Optional[Callable[["ModelConfig"], nn.Module]] = None


_REGISTRY: dict[tuple[str, str], TaskSpec] = {}


def register(arch: str, task: str, model_cls: Callable[["ModelConfig"], nn.Module], *,
             loader_mode: Optional[str] = None, pack: bool = False, export_target: Optional[str] = None,
             backbone: Optional[Callable[["ModelConfig"], nn.Module]] = None) -> TaskSpec:
    """Register ``model_cls`` as the model of ``task`` for ``arch`` and return its :class:`TaskSpec`.

    Raises:
        ValueError: unknown task or loader mode, a pretrain task without a loader mode, or the pair is already
            registered to another class.
    """
    if task not in TASKS:
        raise ValueError(f"register({arch!r}, {task!r}): unknown task; expected one of {', '.join(TASKS)}")
    if loader_mode is not None and loader_mode not in LOADER_MODES:
        raise ValueError(f"register({arch!r}, {task!r}): loader_mode must be one of {', '.join(LOADER_MODES)} "
                         f"or None, got {loader_mode!r}")
    if task == "pretrain" and loader_mode is None:
        raise ValueError(f"register({arch!r}, 'pretrain'): a pretrain task needs a loader_mode "
                         f"({', '.join(LOADER_MODES)})")
    spec = TaskSpec(arch, task, model_cls, loader_mode, pack, export_target, backbone)
    old = _REGISTRY.get((arch, task))
    if old is not None and old != spec:
        raise ValueError(f"register({arch!r}, {task!r}): already registered to {old.model_cls.__name__}")
    _REGISTRY[(arch, task)] = spec
    return spec


def unregister(arch: str, task: str) -> None:
    """Remove a registration (tests that register a toy architecture); a missing pair is ignored."""
    _REGISTRY.pop((arch, task), None)


def arch_names() -> tuple[str, ...]:
    """Registered architectures, in registration order (``("bert", "gpt", "lstm")`` today)."""
    return tuple(dict.fromkeys(arch for arch, _ in _REGISTRY))


def entries() -> tuple[TaskSpec, ...]:
    """Every registration, in registration order."""
    return tuple(_REGISTRY.values())


def tasks_of(arch: str) -> tuple[str, ...]:
    """The tasks registered for ``arch``, in :data:`TASKS` order (empty for an unknown arch)."""
    return tuple(t for t in TASKS if (arch, t) in _REGISTRY)


def find(arch: str, task: str) -> Optional[TaskSpec]:
    """The spec of ``(arch, task)``, or None when it is not registered."""
    return _REGISTRY.get((arch, task))


def get(arch: str, task: str) -> TaskSpec:
    """The spec of ``(arch, task)``.

    Raises:
        ConfigError: unknown arch (naming the registered ones) or a task the arch does not implement (naming the
            tasks it has).
    """
    spec = _REGISTRY.get((arch, task))
    if spec is not None:
        return spec
    if arch not in arch_names():
        raise ConfigError(f"model config field 'arch': expected one of {', '.join(arch_names())}, got {arch!r}")
    raise ConfigError(f"arch {arch!r} has no task {task!r}; its tasks: {', '.join(tasks_of(arch))}")


def task_of_kind(kind: str) -> str:
    """The task whose checkpoints have meta.json ``kind`` (``"classifier"`` -> ``"classify"``); ValueError if none."""
    for task, k in TASKS.items():
        if k == kind:
            return task
    raise ValueError(f"unknown checkpoint kind {kind!r}; expected one of {', '.join(TASKS.values())}")


def expect_arch(cfg: "ModelConfig", arch: str, who: str) -> None:
    """ValueError unless ``cfg.arch == arch``: the first check of every arch-specific model class ``who``."""
    if cfg.arch != arch:
        raise ValueError(f"{who} needs a config with arch={arch!r}, got arch={cfg.arch!r}")


def build_model(cfg: "ModelConfig", task: str) -> nn.Module:
    """A freshly initialised model of ``task`` for ``cfg.arch`` (ConfigError when the pair is not registered)."""
    return get(cfg.arch, task).model_cls(cfg)
