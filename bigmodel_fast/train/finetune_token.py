"""``bmf finetune --task token``: token classification (NER) on any backbone, selected by entity micro-F1.

Data: a CoNLL-style or JSONL file of tagged sentences (:func:`bigmodel_fast.data.token_tags.read_tagged`, BIO or
BIOES, held as BIO; bad sentences reported ``file:line`` and skipped). Labels are ``O`` and ``B-``/``I-`` of every
entity type of the training file, in the model config's ``label_names``. Words become sub-tokens with the word's
label on the first and -100 on the rest; sentences longer than ``--max-len`` become overlapping windows
(``--window-overlap``), never truncated (:mod:`bigmodel_fast.data.token_inputs`). The loss is the mean
cross-entropy over every labelled sub-token of the global batch. After each epoch the validation sentences are
tagged (each word once, from the window where it has the most context) and scored at entity level with
``seqeval``'s default semantics (:func:`bigmodel_fast.eval.entity_metrics.entity_scores`); the best micro-F1 is
kept. The finished model is compared with the most-frequent-tag baseline, with a warning when it is not better.

The schedule, optimizer, speed switches, torchrun data parallelism and the checkpoint layout are the sequence
classifier's (:mod:`.finetune`); the checkpoint's meta.json kind is ``token_classifier``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import checkpoint as ckpt
from ..data.classification import pad_batch
from ..data.long_text import check_max_len
from ..data.token_inputs import TokenWindows, effective_overlap, encode_sentences, window_width, word_logits
from ..data.token_tags import TaggedSentences, read_tagged, split_tag
from ..data.token_windows import IGNORE_INDEX
from ..data.tokenizer_base import load_tokenizer
from ..eval.entity_metrics import entity_scores
from ..inference import predict_token_logits
from ..models import registry
from ..models.config import ModelConfig
from ..runtime import autocast_for, seed_everything
from .finetune_defaults import backbone_kind, resolve_schedule
from .finetune_parts import attach_model, optimizing
from .parallel import Parallel
from .selection import EarlyStopping

KIND = registry.TASKS["token_classify"]  # "token_classifier"
SOURCE_KINDS = ("pretrain", "classifier", KIND)


def _say(parallel: Parallel, text: str) -> None:
    if parallel.is_main:
        print(f"bmf finetune: {text}", file=sys.stderr, flush=True)


def tag_labels(types: list[str]) -> list[str]:
    """``["O", "B-T1", "I-T1", "B-T2", ...]`` for the sorted entity ``types``."""
    return ["O", *[f"{p}-{t}" for t in sorted(types) for p in "BI"]]


def entity_types(data: TaggedSentences) -> list[str]:
    return sorted({split_tag(t)[1] for sent in data.tags for t in sent if t != "O"})


def hold_out_sentences(data: TaggedSentences, fraction: float, seed: int):
    """``(train, held out or None)``: ``floor(fraction * N)`` sentences held out at random (seeded)."""
    want = math.floor(fraction * len(data))
    if fraction <= 0 or want < 1 or want >= len(data):
        return data, None
    held = set(np.random.default_rng(seed).permutation(len(data))[:want].tolist())

    def pick(keep: bool, source: str) -> TaggedSentences:
        idx = [i for i in range(len(data)) if (i in held) != keep]
        return TaggedSentences([data.tokens[i] for i in idx], [data.tags[i] for i in idx], source,
                               [data.lines[i] for i in idx], data.scheme, data.stats)

    return pick(True, data.source), pick(False, f"{data.source} (held out)")


def _read(path: str, cfg, parallel: Parallel) -> TaggedSentences:
    data = read_tagged(path, cfg.tag_scheme, cfg.on_violation)
    st = data.stats
    _say(parallel, f"{path}: {st.sentences} sentences, {st.tokens} tokens ({data.scheme.upper()}), {st.skipped} "
                   f"skipped, {st.repaired} I- tags repaired")
    for problem in st.problems[:5]:
        _say(parallel, f"skipped: {problem}")
    if len(st.problems) > 5:
        _say(parallel, f"... and {len(st.problems) - 5} more skipped sentences")
    return data


def _source(cfg, label_names: list[str]):
    """``(source kind, base config, state dict, keep head)``."""
    from .finetune import load_source

    kind, base, state = load_source(cfg.checkpoint, SOURCE_KINDS)
    _, meta = ckpt.read_meta(cfg.checkpoint)
    keep = kind == KIND and not cfg.new_head
    if keep and list(base.label_names) != label_names:
        raise ValueError(f"{cfg.checkpoint}: the token classifier's tags {list(base.label_names)} are not the "
                         f"training data's {label_names} ({cfg.train}); pass --new-head to put a fresh head on its "
                         f"backbone")
    return kind, base, state, keep, meta


def _batch_loss(model, windows: TokenWindows, idx, count: int, device, amp: str, pad_id: int) -> torch.Tensor:
    """Sum of the cross-entropy over the labelled positions of windows ``idx``, divided by ``count`` (the labelled
    positions of the whole global batch)."""
    ids, mask = pad_batch([windows.seqs[i] for i in idx], pad_id)
    targets = torch.full(ids.shape, IGNORE_INDEX, dtype=torch.long)
    for row, i in enumerate(idx):
        targets[row, : len(windows.targets[i])] = torch.as_tensor(windows.targets[i])
    with autocast_for(device, amp):
        logits = model(ids.to(device), mask.to(device))  # (B, S, C)
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.to(device).flatten(), ignore_index=IGNORE_INDEX,
                           reduction="sum")
    return loss / max(count, 1)


def tag_sentences(model, tok, sentences, label_names, max_len: int, overlap: int, batch_size: int, device,
                  amp: str = "off") -> list[list[str]]:
    """Per sentence (a list of words), the predicted tag of each word."""
    windows = encode_sentences(tok, sentences, max_len, overlap)
    logits = predict_token_logits(model, windows.seqs, tok.pad_id, batch_size, device, amp) if windows.seqs else []
    return [[label_names[i] for i in z.argmax(-1).tolist()] if z.numel() else []
            for z in word_logits(windows, logits)]


def finetune_token(cfg, out: Path, parallel: Parallel) -> dict:
    """Train a token classifier (module docstring); returns the run's summary."""
    from ..eval.baseline import most_frequent_tag_baseline

    device = parallel.device
    seed_everything(cfg.seed)
    if cfg.class_weights != "none":
        raise ValueError("--class-weights is for sequence classification; --task token takes --class-weights none")
    train = _read(cfg.train, cfg, parallel)
    valid = _read(cfg.valid, cfg, parallel) if cfg.valid else None
    types = entity_types(train)
    if not types:
        raise ValueError(f"{cfg.train}: no entity tags (every tag is O); nothing to learn")
    label_names = tag_labels(types)
    if valid is not None:
        unknown = sorted(set(entity_types(valid)) - set(types))
        if unknown:
            raise ValueError(f"{cfg.valid}: entity types {unknown} do not occur in the training file {cfg.train}")
        where = f"--valid {cfg.valid}"
    else:
        train, valid = hold_out_sentences(train, cfg.valid_fraction, cfg.seed)
        where = (f"the {len(valid)} sentences held out of {cfg.train} (--valid-fraction {cfg.valid_fraction}, seed "
                 f"{cfg.seed})" if valid is not None else None)
    source_kind, base_cfg, pretrained, keep_head, source_meta = _source(cfg, label_names)
    if cfg.arch is not None and cfg.arch != base_cfg.arch:
        raise ValueError(f"{cfg.checkpoint}: the checkpoint is arch {base_cfg.arch!r} but arch {cfg.arch!r} was asked "
                         f"for; the token classifier always takes the checkpoint's arch (drop --arch)")
    tok = load_tokenizer(ckpt.tokenizer_path(cfg.checkpoint))
    model_cfg = ModelConfig.from_dict({**base_cfg.to_dict(), "num_labels": len(label_names),
                                       "label_names": label_names, "dropout": cfg.classifier_dropout,
                                       "problem_type": "single_label"})
    check_max_len(cfg.max_len, model_cfg)
    overlap = effective_overlap(window_width(tok, cfg.max_len), cfg.window_overlap)
    module, model = attach_model(registry.build_model(model_cfg, "token_classify"), pretrained, keep_head, cfg,
                                 parallel)
    world = parallel.world_size

    index = {name: i for i, name in enumerate(label_names)}
    windows = encode_sentences(tok, train.tokens, cfg.max_len, overlap, [[index[t] for t in s] for s in train.tags])
    split = len(windows.seqs) - len(train)
    _say(parallel, f"{len(train)} training sentences -> {len(windows.seqs)} windows of at most {cfg.max_len} ids "
                   f"(overlap {overlap}; {split} extra windows from long sentences, nothing truncated)")
    kind = backbone_kind(base_cfg, source_meta)
    global_batch = cfg.batch_size * world
    schedule = resolve_schedule(kind, len(windows.seqs), global_batch, cfg.optim.lr, cfg.epochs,
                                cfg.optim.warmup_steps, cfg.max_steps)
    _say(parallel, schedule.describe(len(windows.seqs), global_batch) + f"; patience {cfg.patience}, task token, "
                   f"{len(label_names)} tags")
    if parallel.enabled:
        _say(parallel, f"{parallel.describe()}; global batch {world} x {cfg.batch_size} = {global_batch}")
    for note in schedule.notes:
        _say(parallel, f"note: {note}")
    run = optimizing(cfg, module, model, schedule, parallel, out)
    rng = np.random.default_rng(cfg.seed)
    # labelled sub-tokens per window, counted once (each step's loss divides by its global batch's sum)
    labelled = np.array([sum(t != IGNORE_INDEX for t in tgt) for tgt in windows.targets], dtype=np.int64)
    baseline = None
    if valid is not None:
        base_tags = most_frequent_tag_baseline(train.tokens, train.tags, valid.tokens)
        baseline = entity_scores(valid.tags, base_tags)
        _say(parallel, f"most-frequent-tag baseline on {where}: entity micro-F1 {baseline['micro']['f1']:.4f}, "
                       f"token accuracy {baseline['token_accuracy']:.4f}")
    stopper = EarlyStopping(cfg.patience, True, math.ceil(schedule.epochs / 3),
                            baseline["micro"]["f1"] if baseline else None)
    best: dict = {"scores": None, "epoch": None, "step": None, "state": None}
    base_meta = {"kind": KIND, "max_len": cfg.max_len, "token": {"overlap": overlap, "scheme": "bio"},
                 "head": f"kept from {cfg.checkpoint}" if keep_head else "new", "backbone_kind": kind,
                 "schedule": schedule.to_dict(), "finetune_config": asdict(cfg), "source_scheme": train.scheme}

    def save(meta: dict) -> None:
        run.save(lambda weights: ckpt.save_checkpoint(out / "checkpoint", weights, model_cfg.to_dict(),
                                                      tok.model_file, {**base_meta, **meta}))

    def validate() -> dict:
        tags = tag_sentences(module, tok, valid.tokens, label_names, cfg.max_len, overlap, 2 * cfg.batch_size,
                             device, cfg.amp)
        tags = parallel.broadcast(tags if parallel.is_main else None)
        rep = entity_scores(valid.tags, tags)
        return {"micro_f1": rep["micro"]["f1"], "macro_f1": rep["macro"]["f1"],
                "precision": rep["micro"]["precision"], "recall": rep["micro"]["recall"],
                "token_accuracy": rep["token_accuracy"]}

    bar = tqdm(total=schedule.total_steps, desc="finetune", disable=not (cfg.progress and parallel.is_main),
               dynamic_ncols=True)
    model.train()
    epoch = 0
    for epoch in range(schedule.epochs):
        perm = rng.permutation(len(windows.seqs))
        for start in range(0, len(perm), global_batch):
            if run.step >= schedule.total_steps:
                break
            rows = perm[start : start + global_batch]
            if len(rows) < world:
                continue
            idx = np.array_split(rows, world)[parallel.rank]
            count = int(labelled[rows].sum())
            run.backward(_batch_loss(model, windows, idx, count, device, cfg.amp, tok.pad_id), epoch, bar)
        if valid is None:
            save({"step": run.step, "epoch": epoch + 1})
        else:
            scores = validate()
            run.log.write(step=run.step, epoch=epoch, **{f"valid_{k}": v for k, v in scores.items()})
            bar.write(f"epoch {epoch + 1}: validation entity micro-F1 {scores['micro_f1']:.4f}, token accuracy "
                      f"{scores['token_accuracy']:.4f}", file=sys.stderr)
            if stopper.update(epoch + 1, scores["micro_f1"]) or best["scores"] is None:
                best.update(scores=scores, epoch=epoch + 1, step=run.step,
                            state={k: v.clone() for k, v in parallel.model_state(every_rank=True).items()})
                save({"step": run.step, "epoch": epoch + 1, "valid_scores": scores})
            if stopper.stop:
                _say(parallel, f"early stop after epoch {epoch + 1}: no better validation micro-F1 for "
                               f"{cfg.patience} epochs (best {stopper.best:.4f} at epoch {stopper.best_epoch})")
                break
        if run.step >= schedule.total_steps:
            break
    bar.close()
    run.log.close()
    summary = {"steps": run.step, "epochs_run": epoch + 1, "task": "token", "labels": label_names,
               "checkpoint": str(out / "checkpoint"), "train_examples": len(train), "train_windows": len(windows.seqs),
               "window_overlap": overlap, "schedule": schedule.to_dict(), "stopped_early": stopper.stop,
               "skipped_nonfinite": run.guard.skipped, "skipped_sentences": train.stats.skipped,
               "repaired_tags": train.stats.repaired, "warnings": [], "baseline": None, "best_valid": None,
               "selection": None}
    if best["scores"] is not None:
        parallel.load_model_state(best["state"])
        warnings = []
        if best["scores"]["micro_f1"] <= baseline["micro"]["f1"]:
            warnings.append(f"the model's validation entity micro-F1 {best['scores']['micro_f1']:.4f} is no better "
                            f"than the most-frequent-tag baseline's {baseline['micro']['f1']:.4f} on {where}")
        for w in warnings:
            _say(parallel, f"warning: {w}")
        selection = {"metric": "entity_micro_f1", "value": best["scores"]["micro_f1"], "on": where,
                     "examples": len(valid), "epoch": best["epoch"]}
        checks = {"baseline": "most_frequent_tag", "baseline_micro_f1": baseline["micro"]["f1"],
                  "baseline_token_accuracy": baseline["token_accuracy"]}
        save({"step": best["step"], "epoch": best["epoch"], "valid_scores": best["scores"], "selection": selection,
              "checks": checks, "warnings": warnings})
        summary.update(best_valid=best["scores"], best_epoch=best["epoch"], selection=selection, checks=checks,
                       warnings=warnings, baseline=checks, best_valid_micro_f1=best["scores"]["micro_f1"])
    return summary
