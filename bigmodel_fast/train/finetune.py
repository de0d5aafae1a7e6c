"""Fine-tuning a pretrained backbone for sequence classification.

Reads a pretraining checkpoint (``bmf pretrain``), puts a classification head on its backbone, trains on a
CSV/JSONL of ``text`` / ``label`` rows, keeps the checkpoint with the best validation accuracy, and records the
label names in the model config so every later stage (evaluate, export, predict) speaks in labels.

A classifier checkpoint (``bmf finetune`` output, or an imported fine-tuned model) is accepted too: its head is
kept when its labels are the training data's (the head's label order is kept), else the run stops with both label
sets named, unless ``--new-head`` asks for a fresh head on its backbone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import checkpoint as ckpt
from .. import fsio
from ..config_cli import check_fields, setting
from ..data.classification import encode_for_classifier, pad_batch, read_labelled
from ..data.tokenizer_base import load_tokenizer
from ..inference import predict_logits
from ..models import build_classifier
from ..models.config import ModelConfig
from ..runtime import autocast_for, pick_device, seed_everything
from .config_fields import amp_field, arch_choices, device_field, progress_field, seed_field, skip_nonfinite_field
from .metrics_log import MetricsLog
from .optim import OptimConfig, build_optimizer, build_scheduler
from .step import NonFiniteGuard, OptimizerStep, check_finite_weights


def _finetune_optim() -> OptimConfig:
    return OptimConfig(lr=1e-4, warmup_steps=-1, weight_decay=0.01)


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run (saved in the checkpoint's meta.json).

    Each field's metadata is also its ``bmf finetune`` flag (:mod:`bigmodel_fast.config_cli`).
    """

    checkpoint: str = setting(help="pretraining or classifier checkpoint directory")
    train: str = setting(help="CSV/JSONL with text and label")
    out: str = setting()
    valid: str | None = setting(None, help="CSV/JSONL for model selection")
    arch: str | None = setting(None, choices=arch_choices,
                               help="optional check: must equal the checkpoint's arch (which is always used)")
    text_field: str = setting("text")
    label_field: str = setting("label")
    max_len: int = setting(128, min=1)
    batch_size: int = setting(32, min=1)
    epochs: int = setting(3, min=1)
    max_steps: int = setting(0, help="> 0: stop after this many steps")
    classifier_dropout: float = setting(0.1, cli=False)
    optim: OptimConfig = setting(default_factory=_finetune_optim, group="optimizer")
    seed: int = seed_field()
    device: str = device_field()
    amp: str = amp_field()
    progress: bool = progress_field()
    skip_nonfinite: int = skip_nonfinite_field()
    log_every: int = setting(20, min=1, help="optimizer steps between training-loss records in metrics.jsonl")
    new_head: bool = setting(False, help="a classifier --checkpoint: put a fresh head on its backbone instead of "
                                         "keeping its head (needed when its labels are not the training data's)")

    def __post_init__(self):
        if isinstance(self.optim, dict):
            self.optim = OptimConfig(**self.optim)
        check_fields(self)


def load_source(path: str | Path) -> tuple[str, ModelConfig, dict[str, torch.Tensor]]:
    """``(kind, model config, state dict)`` of the checkpoint a fine-tuning run starts from (verified and loaded
    into its model first): a pretraining checkpoint (kind ``"pretrain"``: ``backbone.*`` tensors and the
    pretraining heads', which :meth:`load_backbone` of the classifier ignores) or a classifier (kind
    ``"classifier"``, its ``classifier.*`` head included). Anything else is a CheckpointError naming both kinds."""
    _, meta = ckpt.read_meta(path)
    kind = meta.get("kind")
    if kind not in ("pretrain", "classifier"):
        raise ckpt.CheckpointError(f"{path}: expected a pretraining or classifier checkpoint (meta.json kind "
                                   f"'pretrain' or 'classifier'), got kind {kind!r}")
    model, cfg, _ = ckpt.load_model(path, kind)
    return kind, cfg, model.state_dict()


def head_labels(cfg: FinetuneConfig, source_kind: str, source_cfg: ModelConfig, train_labels: list[str]) -> tuple:
    """``(label names in logit order, keep the source's head)`` for a run on data with ``train_labels``.

    A classifier's head is kept when its label names are the data's label set (in the head's order); with
    ``--new-head``, or from a pretraining checkpoint, the labels are the data's, sorted, on a fresh head.
    ValueError (one line, both label sets) when a classifier's labels differ and ``--new-head`` is not given."""
    names = sorted(set(train_labels))
    if source_kind != "classifier" or cfg.new_head:
        return names, False
    have = list(source_cfg.label_names) or [str(i) for i in range(source_cfg.num_labels)]
    if sorted(have) != names or len(set(have)) != len(have):
        raise ValueError(f"{cfg.checkpoint}: the classifier's labels {have} are not the training data's {names} "
                         f"({cfg.train}); pass --new-head to put a fresh head on its backbone")
    return have, True


def finetune(cfg: FinetuneConfig) -> dict:
    """Train the classifier, holding the lock of ``cfg.out``; returns a summary (best validation accuracy, steps,
    checkpoint path, non-finite steps skipped)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with fsio.DirLock(out / ".lock", "fine-tuning output directory"):
        fsio.recover_dir(out / "checkpoint")
        fsio.clean_stale(out / "checkpoint")
        return _finetune(cfg, out)


def _finetune(cfg: FinetuneConfig, out: Path) -> dict:
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    source_kind, base_cfg, pretrained = load_source(cfg.checkpoint)
    if cfg.arch is not None and cfg.arch != base_cfg.arch:
        raise ValueError(f"{cfg.checkpoint}: the checkpoint is arch {base_cfg.arch!r} but arch {cfg.arch!r} was asked "
                         f"for; the classifier always takes the pretraining checkpoint's arch (drop --arch)")
    tok = load_tokenizer(ckpt.tokenizer_path(cfg.checkpoint))

    train = read_labelled(cfg.train, cfg.text_field, cfg.label_field)
    if len(set(train.labels)) < 2:
        raise ValueError(f"{cfg.train}: need at least two distinct labels, found {sorted(set(train.labels))}")
    label_names, keep_head = head_labels(cfg, source_kind, base_cfg, train.labels)
    label_id = {name: i for i, name in enumerate(label_names)}
    valid = read_labelled(cfg.valid, cfg.text_field, cfg.label_field) if cfg.valid else None
    if valid is not None:
        unknown = sorted(set(valid.labels) - set(label_names))
        if unknown:
            raise ValueError(f"{cfg.valid}: labels {unknown} do not occur in the training file {cfg.train}")

    model_cfg = ModelConfig.from_dict({**base_cfg.to_dict(), "num_labels": len(label_names),
                                       "label_names": label_names, "dropout": cfg.classifier_dropout})
    model = build_classifier(model_cfg)
    if keep_head:  # the whole classifier, head included: same tensors, same logits before the first step
        model.load_state_dict(pretrained)
    else:
        missing, unexpected = model.load_backbone(pretrained)
        if missing:
            raise ckpt.CheckpointError(f"{cfg.checkpoint}: backbone weights missing for {sorted(missing)[:5]}")
    model.to(device)
    head = f"kept from {cfg.checkpoint}" if keep_head else "new"

    seqs = encode_for_classifier(tok, train.texts, cfg.max_len)
    y = torch.tensor([label_id[l] for l in train.labels])
    valid_seqs = encode_for_classifier(tok, valid.texts, cfg.max_len) if valid else None
    valid_y = torch.tensor([label_id[l] for l in valid.labels]) if valid else None

    steps_per_epoch = (len(seqs) + cfg.batch_size - 1) // cfg.batch_size
    total = steps_per_epoch * cfg.epochs if cfg.max_steps <= 0 else min(cfg.max_steps, steps_per_epoch * cfg.epochs)
    optim_cfg = cfg.optim
    opt = build_optimizer(model, optim_cfg)
    sched = build_scheduler(opt, optim_cfg, total)

    log = MetricsLog(out / "metrics.jsonl")
    rng = np.random.default_rng(cfg.seed)
    best_acc, step = -1.0, 0
    saved: dict = {"step": None}
    guard = NonFiniteGuard(cfg.skip_nonfinite, lambda: (f"{out / 'checkpoint'} (step {saved['step']})"
                                                        if saved["step"] is not None else "none saved by this run"))
    optimizer_step = OptimizerStep(model, opt, sched, optim_cfg.clip_grad, guard, log)
    bar = tqdm(total=total, desc="finetune", disable=not cfg.progress, dynamic_ncols=True)
    model.train()
    for epoch in range(cfg.epochs):
        perm = rng.permutation(len(seqs))
        for start in range(0, len(perm), cfg.batch_size):
            if step >= total:
                break
            idx = perm[start : start + cfg.batch_size]
            ids, mask = pad_batch([seqs[i] for i in idx], tok.pad_id)
            with autocast_for(device, cfg.amp):
                logits = model(ids.to(device), mask.to(device))
            loss = F.cross_entropy(logits.float(), y[idx].to(device))
            loss.backward()
            optimizer_step(step + 1, loss)
            step += 1
            bar.update(1)
            if step % cfg.log_every == 0:
                value = loss.item()
                log.write(step=step, epoch=epoch, loss=value, lr=sched.get_last_lr()[0])
                bar.set_postfix(loss=f"{value:.3f}")
        # model selection: on the validation set when given, else every epoch replaces the last
        acc = None
        if valid_seqs is not None:
            pred = predict_logits(model, valid_seqs, tok.pad_id, 2 * cfg.batch_size, device, cfg.amp).argmax(-1)
            acc = float((pred == valid_y).float().mean())
            log.write(step=step, epoch=epoch, valid_accuracy=acc)
            bar.write(f"epoch {epoch + 1}: validation accuracy {acc:.4f}")
        if acc is None or acc > best_acc:
            best_acc = acc if acc is not None else best_acc
            meta = {"kind": "classifier", "step": step, "epoch": epoch + 1, "valid_accuracy": acc,
                    "max_len": cfg.max_len, "head": head, "finetune_config": asdict(cfg)}
            check_finite_weights(model, step, guard.last_good)
            ckpt.save_checkpoint(out / "checkpoint", model, model_cfg.to_dict(), tok.model_file, meta)
            saved["step"] = step
        if step >= total:
            break
    bar.close()
    log.close()
    return {"steps": step, "best_valid_accuracy": best_acc if valid_seqs is not None else None,
            "labels": label_names, "head": head, "checkpoint": str(out / "checkpoint"), "train_examples": len(seqs),
            "skipped_nonfinite": guard.skipped}
