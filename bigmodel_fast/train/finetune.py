"""Fine-tuning a pretrained backbone for sequence classification or regression.

Reads a pretraining checkpoint (``bmf pretrain``), puts a head on its backbone, trains on a CSV/JSONL of
``text`` / ``label`` rows, and keeps the checkpoint with the best validation score: macro-F1 for single-label and
multi-label classification, MSE for regression (never accuracy, which a collapsed model can win). The label names,
the problem type and (multi-label) the per-label thresholds are recorded in the checkpoint, so every later stage
(evaluate, export, predict) speaks in labels.

Defaults that train: ``--lr``, ``--epochs`` and ``--warmup-steps`` are ``auto`` (:mod:`.finetune_defaults`: by
backbone kind and data size); without ``--valid`` a seeded ``--valid-fraction`` of the training rows is held out
for selection; ``--patience`` stops early; after training the model is checked against a majority and a TF-IDF
baseline (:mod:`.baselines`), with a warning when it is not better. The per-task pieces (targets, loss,
predictions, selection score) are :mod:`.objectives`.

A classifier checkpoint (``bmf finetune`` output, or an imported fine-tuned model) is accepted too: its head is
kept when its labels are the training data's (the head's label order is kept), else the run stops with both label
sets named, unless ``--new-head`` asks for a fresh head on its backbone.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import checkpoint as ckpt
from .. import fsio
from ..config_cli import check_fields, setting
from ..data.classification import DEFAULT_LABEL_SEP, TASKS, pad_batch, read_labelled
from ..data.long_text import LONG_TEXT_MODES, check_max_len, encode_long, format_report
from ..data.token_inputs import DEFAULT_OVERLAP
from ..data.token_tags import SCHEMES as TAG_SCHEMES
from ..data.token_tags import VIOLATION_POLICIES
from ..data.tokenizer_base import load_tokenizer
from ..inference import predict_logits_long
from ..models import build_classifier
from ..models.config import ModelConfig
from ..runtime import autocast_for, pick_device, seed_everything
from .baselines import majority_score, run_checks
from .config_fields import (
    activation_checkpointing_field,
    amp_field,
    arch_choices,
    compile_field,
    device_field,
    parallel_field,
    progress_field,
    seed_field,
    skip_nonfinite_field,
    tensorboard_field,
    tf32_field,
)
from .finetune_defaults import auto_epochs, backbone_kind, resolve_schedule
from .finetune_parts import attach_model, optimizing
from .objectives import CLASS_WEIGHTS, PROBLEM_OF_TASK, TASK_OF_PROBLEM, make_objective
from .optim import FinetuneOptimConfig
from .parallel import Parallel
from .selection import EarlyStopping, hold_out

FINETUNE_TASKS = (*TASKS, "token")


def _finetune_optim() -> FinetuneOptimConfig:
    return FinetuneOptimConfig(weight_decay=0.01)


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run (saved in the checkpoint's meta.json).

    Each field's metadata is also its ``bmf finetune`` flag (:mod:`bigmodel_fast.config_cli`). ``epochs`` and
    ``optim.lr`` / ``optim.warmup_steps`` None mean auto (:mod:`.finetune_defaults`).
    """

    checkpoint: str = setting(help="pretraining or classifier checkpoint directory")
    train: str = setting(help="CSV/JSONL with text and label")
    out: str = setting()
    valid: str | None = setting(None, help="CSV/JSONL for model selection (default: --valid-fraction of --train)")
    arch: str | None = setting(None, choices=arch_choices,
                               help="optional check: must equal the checkpoint's arch (which is always used)")
    text_field: str = setting("text")
    label_field: str = setting("label")
    task: str = setting("auto", choices=FINETUNE_TASKS,
                        help="auto: multi-label when a label is a JSON list, else single-label (a classifier "
                             "--checkpoint: its own problem type); regression: the label is a number; token: "
                             "token classification (NER) on CoNLL / JSONL tagged sentences")
    label_sep: str = setting(DEFAULT_LABEL_SEP, help="multi-label CSV: the separator of the labels in one field "
                                                     "(a JSON list such as [\"a\", \"b\"] works too)")
    tag_scheme: str = setting("auto", choices=TAG_SCHEMES,
                              help="--task token: the tag scheme of the files (auto: BIOES when an E- or S- tag "
                                   "occurs); held as BIO either way")
    on_violation: str = setting("repair", choices=VIOLATION_POLICIES,
                                help="--task token: an I- tag that starts an entity is repaired to B- (seqeval's "
                                     "default reading) or its sentence is skipped")
    window_overlap: int = setting(DEFAULT_OVERLAP, min=0,
                                  help="--task token: sub-tokens shared by consecutive windows of a sentence longer "
                                       "than --max-len (at most half a window)")
    max_len: int = setting(128, min=1)
    long_text: str = setting("truncate", choices=LONG_TEXT_MODES,
                             help="texts over --max-len: truncate (keep the head), head-tail (first quarter + last "
                                  "three quarters of the budget), chunks (overlapping windows, each trained with the "
                                  "text's label; logits pooled by mean at validation/inference)")
    long_text_stride: int = setting(0, min=0, help="--long-text chunks: tokens between window starts (0 = half a "
                                                  "window)")
    batch_size: int = setting(32, min=1)
    epochs: int | None = setting(None, type=auto_epochs, min=1, metavar="N|auto",
                                 help="default auto: ceil(600 / steps per epoch) in [3, 20] (imported or hidden >= "
                                      "384: ceil(300 / steps per epoch) in [3, 10])")
    max_steps: int = setting(0, help="> 0: stop after this many steps")
    patience: int = setting(3, min=0, metavar="N",
                            help="stop after N epochs without a better validation score, not before a third of the "
                                 "epochs (0 = off)")
    class_weights: str = setting("none", choices=CLASS_WEIGHTS,
                                 help="auto: weight the loss by inverse label frequency (mean weight 1 per example; "
                                      "multi-label: positives by negatives/positives), for imbalanced labels")
    valid_fraction: float = setting(0.1, help="without --valid: the share of --train held out (seeded; stratified "
                                              "by label) for model selection and the baseline checks; 0 = none")
    classifier_dropout: float = setting(0.1, cli=False)
    optim: FinetuneOptimConfig = setting(default_factory=_finetune_optim, group="optimizer")
    seed: int = seed_field()
    device: str = device_field()
    amp: str = amp_field()
    progress: bool = progress_field()
    skip_nonfinite: int = skip_nonfinite_field()
    log_every: int = setting(20, min=1, help="optimizer steps between training-loss records in metrics.jsonl")
    new_head: bool = setting(False, help="a classifier --checkpoint: put a fresh head on its backbone instead of "
                                         "keeping its head (needed when its labels are not the training data's)")
    parallel: str = parallel_field()
    compile: str = compile_field()
    activation_checkpointing: bool = activation_checkpointing_field()
    tf32: bool = tf32_field()
    tensorboard: bool = tensorboard_field()

    def __post_init__(self):
        if isinstance(self.optim, dict):
            self.optim = FinetuneOptimConfig(**self.optim)
        check_fields(self)
        if not (isinstance(self.valid_fraction, (int, float)) and 0.0 <= self.valid_fraction <= 0.5):
            raise ValueError(f"valid_fraction must be in [0, 0.5], got {self.valid_fraction}")
        if self.tensorboard:
            from ..optional import require

            require("tensorboard", "plots", "--tensorboard")
        if not self.label_sep:
            raise ValueError("label_sep must be a non-empty string, got ''")
        if self.amp == "fp16" and self.parallel == "fsdp":
            raise ValueError("amp fp16 with parallel fsdp is not supported (sharded gradients would need a sharded "
                             "GradScaler); use --amp bf16, which needs no loss scaling")


SOURCE_NAMES = {"pretrain": "pretraining", "classifier": "classifier", "token_classifier": "token-classifier"}


def load_source(path: str | Path, kinds: tuple[str, ...] = ("pretrain", "classifier"),
                ) -> tuple[str, ModelConfig, dict[str, torch.Tensor]]:
    """``(kind, model config, state dict)`` of the checkpoint a fine-tuning run starts from (verified and loaded
    into its model first): a pretraining checkpoint (kind ``"pretrain"``: ``backbone.*`` tensors and the
    pretraining heads', which :meth:`load_backbone` of the classifier ignores) or a classifier (kind
    ``"classifier"``, its ``classifier.*`` head included); ``kinds`` are the accepted meta.json kinds (the token
    trainer adds ``"token_classifier"``). Anything else is a CheckpointError naming the accepted kinds."""
    _, meta = ckpt.read_meta(path)
    kind = meta.get("kind")
    if kind not in kinds:
        names = " or ".join(", ".join(SOURCE_NAMES[k] for k in kinds).rsplit(", ", 1))
        quoted = " or ".join(", ".join(repr(k) for k in kinds).rsplit(", ", 1))
        raise ckpt.CheckpointError(f"{path}: expected a {names} checkpoint (meta.json kind {quoted}), got kind "
                                   f"{kind!r}")
    model, cfg, _ = ckpt.load_model(path, kind)
    return kind, cfg, model.state_dict()


def head_labels(cfg: FinetuneConfig, source_kind: str, source_cfg: ModelConfig, names: list[str]) -> tuple:
    """``(label names in logit order, keep the source's head)`` for a run on data with the (sorted) label ``names``.

    A classifier's head is kept when its label names are the data's label set (in the head's order); with
    ``--new-head``, or from a pretraining checkpoint, the labels are the data's, sorted, on a fresh head.
    ValueError (one line, both label sets) when a classifier's labels differ and ``--new-head`` is not given."""
    if source_kind != "classifier" or cfg.new_head:
        return names, False
    have = list(source_cfg.label_names) or [str(i) for i in range(source_cfg.num_labels)]
    if sorted(have) != names or len(set(have)) != len(have):
        raise ValueError(f"{cfg.checkpoint}: the classifier's labels {have} are not the training data's {names} "
                         f"({cfg.train}); pass --new-head to put a fresh head on its backbone")
    return have, True


def data_labels(task: str, data, cfg: FinetuneConfig) -> list[str]:
    """The sorted label names of the training data (regression: ``[label_field]``); ValueError when a classification
    set has too few."""
    if task == "regression":
        return [cfg.label_field]
    names = sorted({x for labels in data.labels for x in labels}) if task == "multi-label" else sorted(set(data.labels))
    if task == "single-label" and len(names) < 2:
        raise ValueError(f"{cfg.train}: need at least two distinct labels, found {names}")
    if not names:
        raise ValueError(f"{cfg.train}: no labels found (every row's label list is empty)")
    return names


def finetune(cfg: FinetuneConfig) -> dict:
    """Train the model, holding the lock of ``cfg.out``; returns a summary (the best validation scores, the
    resolved schedule, steps, checkpoint path, the baseline checks and their warnings, non-finite steps skipped).

    Under torchrun each optimizer step takes ``world_size x --batch-size`` rows of the epoch's permutation, rank r
    the r-th share of them (as even as the rows allow), data-parallel (DDP or FSDP2, :class:`~.parallel.Parallel`);
    validation scores are rank 0's (every rank runs the forward passes), and rank 0 alone logs and writes."""
    out = Path(cfg.out)
    parallel = Parallel(cfg.parallel, pick_device(cfg.device))
    try:
        if parallel.is_main:
            out.mkdir(parents=True, exist_ok=True)
        lock = (fsio.DirLock(out / ".lock", "fine-tuning output directory") if parallel.is_main
                else contextlib.nullcontext())
        with lock:
            if parallel.is_main:
                fsio.recover_dir(out / "checkpoint")
                fsio.clean_stale(out / "checkpoint")
            parallel.barrier()
            if cfg.task == "token":
                from .finetune_token import finetune_token

                return finetune_token(cfg, out, parallel)
            return _finetune(cfg, out, parallel)
    finally:
        parallel.close()


def _say(text: str) -> None:
    if os.environ.get("RANK", "0") in ("", "0"):  # under torchrun: rank 0 speaks for all
        print(f"bmf finetune: {text}", file=sys.stderr, flush=True)


def _read_data(cfg: FinetuneConfig, source_kind: str, base_cfg: ModelConfig):
    """``(task, train, valid, where)``: the data, the resolved task and what the validation set is."""
    task = cfg.task
    if task == "auto" and source_kind == "classifier" and not cfg.new_head:
        task = TASK_OF_PROBLEM[base_cfg.problem_type]
    train = read_labelled(cfg.train, cfg.text_field, cfg.label_field, task, cfg.label_sep)
    task = train.task
    if source_kind == "classifier" and not cfg.new_head and PROBLEM_OF_TASK[task] != base_cfg.problem_type:
        raise ValueError(f"{cfg.checkpoint}: the classifier is {base_cfg.problem_type!r} but the run is --task "
                         f"{task}; pass --new-head to put a fresh head on its backbone")
    valid = read_labelled(cfg.valid, cfg.text_field, cfg.label_field, task, cfg.label_sep) if cfg.valid else None
    return task, train, valid


def _rank_rows(idx: np.ndarray, parallel: Parallel) -> np.ndarray | None:
    """This rank's rows of one global batch ``idx`` (None when the batch has fewer rows than ranks: skipped by
    all ranks alike)."""
    if len(idx) < parallel.world_size:
        return None
    return np.array_split(idx, parallel.world_size)[parallel.rank]


def _finetune(cfg: FinetuneConfig, out: Path, parallel: Parallel) -> dict:
    device = parallel.device
    seed_everything(cfg.seed)
    source_kind, base_cfg, pretrained = load_source(cfg.checkpoint)
    _, source_meta = ckpt.read_meta(cfg.checkpoint)
    if cfg.arch is not None and cfg.arch != base_cfg.arch:
        raise ValueError(f"{cfg.checkpoint}: the checkpoint is arch {base_cfg.arch!r} but arch {cfg.arch!r} was asked "
                         f"for; the classifier always takes the pretraining checkpoint's arch (drop --arch)")
    tok = load_tokenizer(ckpt.tokenizer_path(cfg.checkpoint))

    task, train, valid = _read_data(cfg, source_kind, base_cfg)
    label_names, keep_head = head_labels(cfg, source_kind, base_cfg, data_labels(task, train, cfg))
    if valid is not None and task != "regression":
        seen = {x for labels in valid.labels for x in labels} if task == "multi-label" else set(valid.labels)
        unknown = sorted(seen - set(label_names))
        if unknown:
            raise ValueError(f"{cfg.valid}: labels {unknown} do not occur in the training file {cfg.train}")
    if valid is None:
        train, valid = hold_out(train, cfg.valid_fraction, cfg.seed)
        where = (f"the {len(valid)} rows held out of {cfg.train} (--valid-fraction {cfg.valid_fraction}, seed "
                 f"{cfg.seed})" if valid is not None else None)
        _say(f"no --valid: selecting by {where}" if where else
             "no --valid and no rows held out (--valid-fraction): every epoch's model replaces the last; no checks")
    else:
        where = f"--valid {cfg.valid}"

    model_cfg = ModelConfig.from_dict({**base_cfg.to_dict(), "num_labels": len(label_names),
                                       "label_names": label_names, "dropout": cfg.classifier_dropout,
                                       "problem_type": PROBLEM_OF_TASK[task]})
    module, model = attach_model(build_classifier(model_cfg), pretrained, keep_head, cfg, parallel)
    head = f"kept from {cfg.checkpoint}" if keep_head else "new"
    world = parallel.world_size

    check_max_len(cfg.max_len, model_cfg)
    train_enc = encode_long(tok, train.texts, cfg.max_len, cfg.long_text, cfg.long_text_stride)
    _say(format_report(train_enc.report, cfg.max_len, cfg.long_text))
    seqs = train_enc.seqs  # chunks: one training example per window, with its text's label
    objective = make_objective(task, label_names, train.labels, cfg.class_weights, cfg.label_field)
    train_y = objective.targets(train.labels)  # per text
    y = train_y[torch.as_tensor(train_enc.owner, dtype=torch.long)]  # per window
    valid_enc = encode_long(tok, valid.texts, cfg.max_len, cfg.long_text, cfg.long_text_stride) if valid else None
    valid_seqs = valid_enc.seqs if valid else None
    valid_y = objective.targets(valid.labels) if valid else None

    kind = backbone_kind(base_cfg, source_meta)
    global_batch = cfg.batch_size * world
    schedule = resolve_schedule(kind, len(seqs), global_batch, cfg.optim.lr, cfg.epochs, cfg.optim.warmup_steps,
                                cfg.max_steps)
    _say(schedule.describe(len(seqs), global_batch) + f"; patience {cfg.patience}, class weights "
         f"{cfg.class_weights}, task {task}")
    if parallel.enabled:
        _say(f"{parallel.describe()}; global batch {world} x {cfg.batch_size} = {global_batch}")
    for note in schedule.notes:
        _say(f"note: {note}")
    if objective.weights is not None:
        _say("class weights (auto): " + ", ".join(f"{n} {w:.3g}" for n, w in zip(label_names, objective.weights)))
    total = schedule.total_steps
    run = optimizing(cfg, module, model, schedule, parallel, out)
    rng = np.random.default_rng(cfg.seed)
    floor = majority_score(objective, train_y, valid_y) if valid_y is not None else None
    stopper = EarlyStopping(cfg.patience, objective.higher_is_better, math.ceil(schedule.epochs / 3), floor)
    best = {"scores": None, "logits": None, "state": None, "epoch": None, "step": None}
    base_meta = {"kind": "classifier", "max_len": cfg.max_len,
                 "long_text": {"mode": cfg.long_text, "stride": cfg.long_text_stride}, "head": head,
                 "backbone_kind": kind, "schedule": schedule.to_dict(), "finetune_config": asdict(cfg)}

    def save(meta: dict) -> None:
        """Every rank takes part (FSDP2 gathers the weights); rank 0 writes. Regression: the saved head outputs
        values on the data's scale."""
        run.save(lambda weights: ckpt.save_checkpoint(out / "checkpoint", objective.fold_state(weights),
                                                      model_cfg.to_dict(), tok.model_file,
                                                      {**base_meta, **meta, **objective.meta()}))

    bar = tqdm(total=total, desc="finetune", disable=not (cfg.progress and parallel.is_main), dynamic_ncols=True)
    model.train()
    epoch = 0
    for epoch in range(schedule.epochs):
        perm = rng.permutation(len(seqs))
        for start in range(0, len(perm), global_batch):
            if run.step >= total:
                break
            rows = perm[start : start + global_batch]
            idx = _rank_rows(rows, parallel)
            if idx is None:
                continue
            ids, mask = pad_batch([seqs[i] for i in idx], tok.pad_id)
            with autocast_for(device, cfg.amp):
                logits = model(ids.to(device), mask.to(device))
            loss = objective.loss(logits, y[idx].to(device))
            if parallel.enabled:  # this rank's share of the global batch's mean; gradients average over ranks
                loss = loss * (len(idx) / len(rows))
            run.backward(loss, epoch, bar)
        # model selection: on the validation set when there is one, else every epoch replaces the last
        if valid_seqs is None:
            save({"step": run.step, "epoch": epoch + 1, "valid_accuracy": None})
        else:
            logits = predict_logits_long(module, valid_seqs, valid_enc.owner, len(valid), tok.pad_id,
                                         2 * cfg.batch_size, device, cfg.amp)
            logits = parallel.broadcast(logits.cpu() if parallel.is_main else None)  # one decision for all ranks
            scores = objective.evaluate(logits, valid_y)
            run.log.write(step=run.step, epoch=epoch, **{f"valid_{k}": v for k, v in scores.items()})
            shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float))
            bar.write(f"epoch {epoch + 1}: validation {shown}", file=sys.stderr)
            if stopper.update(epoch + 1, scores[objective.metric]) or best["scores"] is None:
                best.update(scores=scores, logits=logits, epoch=epoch + 1, step=run.step,
                            state={k: v.clone() for k, v in parallel.model_state(every_rank=True).items()})
                save({"step": run.step, "epoch": epoch + 1, "valid_accuracy": scores.get("accuracy"),
                      "valid_scores": scores})
            if stopper.stop:
                _say(f"early stop after epoch {epoch + 1}: no better validation {objective.metric} for "
                     f"{cfg.patience} epochs (best {stopper.best:.4f} at epoch {stopper.best_epoch})")
                break
        if run.step >= total:
            break
    bar.close()
    run.log.close()

    summary = {"steps": run.step, "epochs_run": epoch + 1, "task": task, "labels": label_names, "head": head,
               "checkpoint": str(out / "checkpoint"), "train_examples": len(train), "train_windows": len(seqs),
               "schedule": schedule.to_dict(),
               "class_weights": objective.meta().get("class_weights", objective.meta().get("pos_weights")),
               "stopped_early": stopper.stop, "skipped_nonfinite": run.guard.skipped, "warnings": []}
    if best["scores"] is not None:
        summary.update(_finish(cfg, parallel, objective, best, save, valid_y, train, train_y, valid, where))
    else:
        summary.update(best_valid_accuracy=None, selection=None)
    return summary


def _finish(cfg, parallel, objective, best, save, valid_y, train, train_y, valid, where) -> dict:
    """After the loop: the best state back in the model, thresholds tuned (multi-label), the baseline checks, the
    warnings printed, and the checkpoint rewritten with them in its meta.json. Returns the summary's part."""
    parallel.load_model_state(best["state"])
    tuned = objective.tune(best["logits"], valid_y)
    scores = objective.evaluate(best["logits"], valid_y) if tuned else best["scores"]
    checks = parallel.broadcast(run_checks(objective, best["logits"], valid_y, train.texts, train_y, valid.texts, where)
                                if parallel.is_main else None)  # the baselines are fitted once, on rank 0
    if checks["tfidf_note"]:
        _say(f"note: {checks['tfidf_note']}")
    for warning in checks["warnings"]:
        _say(f"warning: {warning}")
    selection = {"metric": objective.metric, "value": scores[objective.metric], "on": where,
                 "examples": len(valid), "epoch": best["epoch"]}
    save({"step": best["step"], "epoch": best["epoch"], "valid_accuracy": scores.get("accuracy"),
          "valid_scores": scores, "selection": selection, "checks": checks, "warnings": checks["warnings"]})
    return {"best_valid_accuracy": scores.get("accuracy"), "best_valid_macro_f1": scores.get("macro_f1"),
            "best_valid": scores, "best_epoch": best["epoch"], "selection": selection, "checks": checks,
            "warnings": checks["warnings"], **tuned}
