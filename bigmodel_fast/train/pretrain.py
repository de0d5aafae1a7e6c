"""Pretraining loop: BERT (MLM + NSP) or GPT (causal LM) over the token shards ``bmf prepare`` wrote.

Thin on purpose: the model computes its loss, the loader is a pure function of the batch index, and everything
needed to continue a run (weights, optimizer, scheduler, step, RNG states, loader position) is in the checkpoint,
so ``--resume`` reproduces an uninterrupted run.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..data.loader import CausalLoader, MLMLoader, SpecialIds, TokenLoader
from ..data.data_dir import PreparedData
from ..data.tokenizer import Tokenizer
from ..models import build_pretraining_model, check_inputs
from ..models.config import ModelConfig
from ..models.presets import load_preset
from . import checkpoint as ckpt
from .. import fsio
from .runtime import (MetricsLog, NonFiniteGuard, autocast_for, check_finite_weights, grad_norm, pick_device,
                     seed_everything, to_device)
from .optim import OptimConfig, build_optimizer, build_scheduler


@dataclass
class PretrainConfig:
    """Everything a pretraining run depends on (saved in the checkpoint's meta.json)."""

    data: str  # a directory written by `bmf prepare`
    out: str  # run directory: checkpoint/, metrics.jsonl
    arch: str = "bert"  # bert | gpt | lstm
    preset: str = "tiny"  # model size preset name or JSON path
    model_overrides: dict = field(default_factory=dict)
    seq_len: int = 128
    batch_size: int = 32
    grad_accum: int = 1
    max_steps: int = 1000
    optim: OptimConfig = field(default_factory=OptimConfig)
    mlm_probability: float = 0.15
    nsp: bool = True
    eval_every: int = 100
    eval_batches: int = 8
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    resume: bool = False
    stop_at: int = 0  # > 0: save and stop after this step, as if interrupted (the schedule still spans max_steps)
    progress: bool = True
    loader: str = "native"  # native (C++ TokenLoader) | python (the reference loaders: same batches, slower)
    pack: bool = True  # gpt: document-aware packing (position_ids + cu_seqlens: no attention across documents)
    loader_threads: int = 2  # native loader worker threads (the batches do not depend on it)
    skip_nonfinite: int = 0  # skip up to this many steps with a non-finite loss/grad norm instead of stopping
    allow_config_change: bool = False  # --resume: accept (and log) a change of the settings in RESUME_FIXED

    def __post_init__(self):
        if isinstance(self.optim, dict):
            self.optim = OptimConfig(**self.optim)
        for name in ("seq_len", "batch_size", "grad_accum", "max_steps", "eval_every", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.arch not in ("bert", "gpt", "lstm"):
            raise ValueError(f"arch must be 'bert', 'gpt' or 'lstm', got {self.arch!r}")
        if self.loader not in ("native", "python"):
            raise ValueError(f"loader must be 'native' or 'python', got {self.loader!r}")
        if self.loader_threads < 1:
            raise ValueError(f"loader_threads must be >= 1, got {self.loader_threads}")
        if self.skip_nonfinite < 0:
            raise ValueError(f"skip_nonfinite must be >= 0, got {self.skip_nonfinite}")


# Settings a resumed run must share with the run that wrote the checkpoint (else --allow-config-change).
RESUME_FIXED = ("data", "arch", "preset", "model_overrides", "seq_len", "batch_size", "grad_accum", "mlm_probability",
                "nsp", "pack")


def make_loader(cfg: PretrainConfig, shards, tok: Tokenizer, seed: int):
    """The batch maker for ``cfg.arch``: MLM + NSP pairs for bert, causal windows for gpt and lstm.

    ``cfg.loader`` picks the native :class:`TokenLoader` (default) or the Python reference; both produce the same
    batches bit for bit, so a run may even switch between them on resume. GPT batches are packed when ``cfg.pack``
    (the model gets ``position_ids``, ``cu_seqlens`` and ``max_seqlen``); BERT rows hold one pair each and use the
    dense attention mask (per-row ``cu_seqlens`` only pay off with a varlen kernel); lstm windows are not packed.
    """
    pack = cfg.pack and cfg.arch == "gpt"
    vocab = tok.vocab_size  # the model's vocabulary: every loader checks shard headers and ids against it at open
    if cfg.loader == "native":
        return TokenLoader(shards, seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                           mode="mlm" if cfg.arch == "bert" else "causal", seed=seed,
                           mlm_probability=cfg.mlm_probability, nsp=cfg.nsp, pack=pack, tokenizer=tok,
                           num_threads=cfg.loader_threads, vocab_size=vocab)
    if cfg.arch == "bert":
        return MLMLoader(shards, SpecialIds.from_tokenizer(tok), seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                         mlm_probability=cfg.mlm_probability, nsp=cfg.nsp, seed=seed, pack=pack, vocab_size=vocab)
    return CausalLoader(shards, seq_len=cfg.seq_len, batch_size=cfg.batch_size, pad_id=tok.pad_id, seed=seed,
                        pack=pack, vocab_size=vocab)


def build_model_config(cfg: PretrainConfig, tok: Tokenizer) -> ModelConfig:
    fields = {**load_preset(cfg.preset), **cfg.model_overrides}
    fields.update(arch=cfg.arch, vocab_size=tok.vocab_size, pad_id=tok.pad_id)
    fields["max_position"] = max(int(fields.get("max_position", cfg.seq_len)), cfg.seq_len)
    return ModelConfig.from_dict(fields)


@torch.no_grad()
def evaluate_loss(model, loader, n_batches: int, device, amp: str) -> float:
    """Mean loss over batches ``0 .. n_batches-1`` of a fixed held-out loader (same batches every call)."""
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(n_batches):
        with autocast_for(device, amp):
            total += float(model(**to_device(loader.batch(i), device))["loss"])
    model.train(was_training)
    return total / n_batches


def config_changes(cfg: PretrainConfig, meta: dict) -> dict:
    """``{setting: [saved, now]}`` for the :data:`RESUME_FIXED` settings that differ from the checkpoint's run."""
    saved = meta.get("train_config")
    if not isinstance(saved, dict):
        return {}  # a checkpoint without its settings: nothing to compare
    now = asdict(cfg)
    changes = {}
    for key in RESUME_FIXED:
        old, new = saved.get(key), now[key]
        if key == "data":  # compared as resolved paths (checkpoints before data_path: resolved from here)
            old = meta.get("data_path") or (str(Path(old).resolve()) if isinstance(old, str) else old)
            new = str(Path(new).resolve())
        if key in saved and old != new:
            changes[key] = [old, new]
    return changes


def check_resume_config(cfg: PretrainConfig, ckpt_dir: Path, meta: dict) -> dict:
    changes = config_changes(cfg, meta)
    if changes and not cfg.allow_config_change:
        listed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
        raise ValueError(f"{ckpt_dir / ckpt.META}: --resume with changed settings ({listed}); resume with the "
                         f"checkpoint's settings, or pass --allow-config-change to accept the change")
    if changes:
        print(f"bmf pretrain: note: resuming with changed settings: {changes}", file=sys.stderr)
    return changes


def restore(cfg: PretrainConfig, ckpt_dir: Path, model, opt, sched, loader) -> dict:
    """Load weights, optimizer, scheduler, loader position and RNG states from ``ckpt_dir``; returns the trainer
    state (its ``step``, ``skipped_nonfinite``) plus ``config_changes``."""
    if not (ckpt_dir / ckpt.TRAINER).is_file() and not (ckpt_dir / ckpt.LEGACY_TRAINER).is_file():
        raise FileNotFoundError(f"--resume: no resumable checkpoint at {ckpt_dir} (expected {ckpt.TRAINER})")
    _, meta = ckpt.read_meta(ckpt_dir)
    changes = check_resume_config(cfg, ckpt_dir, meta)
    ckpt.load_weights(ckpt_dir, model)
    state = ckpt.load_trainer_state(ckpt_dir)
    try:
        opt.load_state_dict(state["optimizer"])
        sched.last_epoch = int(state["step"])
        sched._last_lr = [g["lr"] for g in opt.param_groups]
        loader.load_state_dict(state["loader"])
        ckpt.set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise ckpt.CheckpointError(f"{ckpt_dir / ckpt.TRAINER}: trainer state does not fit this run "
                                   f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return {**state, "config_changes": changes}


def pretrain(cfg: PretrainConfig) -> dict:
    """Run (or resume) pretraining, holding the run directory's lock. Returns a summary: steps, final train/eval
    loss, tokens/s, checkpoint path, non-finite steps skipped."""
    data = PreparedData(cfg.data)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with fsio.DirLock(out / ".lock", "run directory"):
        ckpt_dir = out / "checkpoint"
        fsio.recover_dir(ckpt_dir)
        fsio.clean_stale(ckpt_dir)
        return _train(cfg, data, out, ckpt_dir)


def _train(cfg: PretrainConfig, data: PreparedData, out: Path, ckpt_dir: Path) -> dict:
    tok = Tokenizer(data.tokenizer_file)
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)

    model_cfg = build_model_config(cfg, tok)
    model = build_pretraining_model(model_cfg).to(device)
    opt = build_optimizer(model, cfg.optim)
    sched = build_scheduler(opt, cfg.optim, cfg.max_steps)
    loader = make_loader(cfg, data.train_shards(), tok, seed=cfg.seed)
    valid_shards = data.valid_shards()
    eval_loader = make_loader(cfg, valid_shards, tok, seed=cfg.seed + 1) if valid_shards else None

    step, skipped, changes = 0, 0, {}
    if cfg.resume:
        state = restore(cfg, ckpt_dir, model, opt, sched, loader)
        step, skipped, changes = int(state["step"]), int(state.get("skipped_nonfinite", 0)), state["config_changes"]

    log = MetricsLog(out / "metrics.jsonl")
    if changes:
        log.write(step=step, config_change=changes)
    tokens_per_step = cfg.batch_size * cfg.seq_len * cfg.grad_accum
    summary: dict = {"start_step": step}
    saved = {"step": step if cfg.resume else None}

    def last_good() -> str:
        return (f"{ckpt_dir} (step {saved['step']})" if saved["step"] is not None
                else "none (no checkpoint was saved by this run)")

    guard = NonFiniteGuard(cfg.skip_nonfinite, last_good, skipped)

    def save() -> None:
        check_finite_weights(model, step, last_good)
        trainer_state = {"step": step, "optimizer": opt.state_dict(), "loader": loader.state_dict(),
                         "rng": ckpt.rng_state(), "skipped_nonfinite": guard.skipped}
        meta = {"kind": "pretrain", "step": step, "train_config": asdict(cfg),
                "data_path": str(Path(cfg.data).resolve())}
        ckpt.save_checkpoint(ckpt_dir, model, model_cfg.to_dict(), tok.model_file, meta, trainer_state)
        saved["step"] = step

    model.train()
    it = iter(loader)
    bar = tqdm(total=cfg.max_steps, initial=step, desc=f"pretrain {cfg.arch}", disable=not cfg.progress,
               dynamic_ncols=True)
    loss_sum = torch.zeros((), device=device)
    window_start, window_steps, window_good, data_time = time.perf_counter(), 0, 0, 0.0
    end = min(cfg.max_steps, cfg.stop_at) if cfg.stop_at > 0 else cfg.max_steps
    checked = False
    while step < end:
        step_loss = torch.zeros((), device=device)
        for _ in range(cfg.grad_accum):
            t = time.perf_counter()
            batch = to_device(next(it), device)
            data_time += time.perf_counter() - t
            if not checked:  # id ranges and shapes, once: it syncs the device
                check_inputs(model_cfg, batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"))
                checked = True
            with autocast_for(device, cfg.amp):
                loss = model(**batch)["loss"] / cfg.grad_accum
            loss.backward()
            step_loss += loss.detach()
        norm = grad_norm(model, cfg.optim.clip_grad)
        if guard.step_ok(step + 1, step_loss, norm):
            opt.step()
            loss_sum += step_loss
            window_good += 1
        else:
            log.write(step=step + 1, skipped_nonfinite=guard.skipped, loss=float(step_loss), grad_norm=float(norm))
            bar.write(f"step {step + 1}: non-finite loss or gradient norm, step skipped "
                      f"({guard.skipped} of --skip-nonfinite {cfg.skip_nonfinite})")
        sched.step()  # a skipped step still advances the schedule (the lr stays a function of the step number)
        opt.zero_grad(set_to_none=True)
        step += 1
        window_steps += 1

        if step % cfg.log_every == 0 or step == cfg.max_steps:
            elapsed = time.perf_counter() - window_start
            train_loss = float(loss_sum) / window_good if window_good else None
            tps = tokens_per_step * window_steps / elapsed
            log.write(step=step, loss=train_loss, lr=sched.get_last_lr()[0], tokens_per_s=round(tps, 1),
                      data_wait_fraction=round(data_time / elapsed, 4))
            bar.set_postfix(loss=f"{train_loss:.3f}" if train_loss is not None else "skipped", tok_s=f"{tps:,.0f}")
            summary.update(train_loss=train_loss, tokens_per_s=tps)
            loss_sum.zero_()
            window_start, window_steps, window_good, data_time = time.perf_counter(), 0, 0, 0.0
        paused = time.perf_counter()
        if eval_loader is not None and (step % cfg.eval_every == 0 or step == cfg.max_steps):
            eval_loss = evaluate_loss(model, eval_loader, cfg.eval_batches, device, cfg.amp)
            log.write(step=step, eval_loss=eval_loss)
            summary.setdefault("eval_losses", []).append((step, eval_loss))
            bar.write(f"step {step}: held-out loss {eval_loss:.4f}")
        if step % cfg.save_every == 0 or step == end:
            save()
        window_start += time.perf_counter() - paused  # eval and saving do not count against throughput
        bar.update(1)
    bar.close()
    log.close()
    for ld in (loader, eval_loader):
        if isinstance(ld, TokenLoader):
            ld.close()  # join the worker threads now rather than at garbage collection
    summary.update(steps=step, checkpoint=str(ckpt_dir), metrics=str(log.path), skipped_nonfinite=guard.skipped)
    return summary
