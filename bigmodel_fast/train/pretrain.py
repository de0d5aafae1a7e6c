"""Pretraining loop: BERT (MLM + NSP) or GPT (causal LM) over the token shards ``bmf prepare`` wrote.

Thin on purpose: the model computes its loss, the loader is a pure function of the batch index, and everything
needed to continue a run (weights, optimizer, scheduler, step, RNG states, loader position) is in the checkpoint,
so ``--resume`` reproduces an uninterrupted run.

``--init CKPT`` starts from another pretraining checkpoint instead of random weights (:mod:`.init_from`): its
model config and weights, a fresh optimizer, schedule and step count, the same loaders and attention dispatch as
any other run. On ``--resume`` the run's own checkpoint wins; the ``--init`` one is not read again.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import checkpoint as ckpt
from .. import fsio
from ..config_cli import check_fields, setting
from ..data.data_dir import PreparedData
from ..data.loader import CausalLoader, MLMLoader, SpecialIds, TokenLoader
from ..data.tokenizer_base import BaseTokenizer as Tokenizer
from ..data.tokenizer_base import load_tokenizer
from ..models import build_pretraining_model, check_inputs, registry
from ..models.config import ModelConfig
from ..models.presets import load_preset
from ..runtime import autocast_for, pick_device, seed_everything, to_device
from .config_fields import amp_field, arch_choices, device_field, progress_field, seed_field, skip_nonfinite_field
from .init_from import InitSource, check_data_tokenizer, check_run_fits, init_record, read_init
from .loop_state import LoopState
from .metrics_log import MetricsLog
from .optim import OptimConfig, build_optimizer, build_scheduler
from .pretrain_stats import HeldOut, TrainWindow, heldout_line, step_parts, unigram_log_probs
from .step import NonFiniteGuard, OptimizerStep, check_finite_weights

LOADERS = ("native", "python")  # the C++ TokenLoader, or the Python reference loaders (same batches, slower)


@dataclass
class PretrainConfig:
    """Everything a pretraining run depends on (saved in the checkpoint's meta.json).

    Each field's metadata is also its ``bmf pretrain`` flag (:mod:`bigmodel_fast.config_cli`).
    """

    data: str = setting(help="directory written by `bmf prepare`")
    out: str = setting(help="run directory (checkpoint/, metrics.jsonl)")
    arch: str | None = setting(None, choices=arch_choices, help="default bert; with --init the checkpoint's")
    preset: str | None = setting(None, help="model size: tiny (default) | small | base | path to JSON; with --init "
                                 "the model is the checkpoint's")
    model_overrides: dict = setting(default_factory=dict, cli=False)  # ModelConfig fields over the preset's
    seq_len: int = setting(128, min=1)
    batch_size: int = setting(32, min=1)
    grad_accum: int = setting(1, min=1)
    max_steps: int = setting(1000, min=1)
    optim: OptimConfig = setting(default_factory=OptimConfig, group="optimizer")
    mlm_probability: float = setting(0.15)
    nsp: bool = setting(True, cli=False)  # bert: next-sentence prediction (flag: the hand-written --no-nsp)
    eval_every: int = setting(100, min=1)
    eval_batches: int = setting(8)
    save_every: int = setting(500, min=1)
    log_every: int = setting(10, min=1)
    seed: int = seed_field()
    device: str = device_field()
    amp: str = amp_field()
    resume: bool = setting(False, help="continue from <out>/checkpoint")
    init: str | None = setting(None, metavar="CKPT", help="start from this pretraining checkpoint's model and "
                               "weights (fresh optimizer and schedule); the data must be prepared with its "
                               "tokenizer (`bmf prepare --tokenizer CKPT`)")
    stop_at: int = setting(0, help="save and stop after this step (schedule keeps max-steps)")
    progress: bool = progress_field()
    loader: str = setting("native", choices=LOADERS, help="native C++ TokenLoader (default) or the Python "
                          "reference loader (same batches, slower)")
    pack: bool = setting(True, cli=False)  # gpt: document-aware packing (position_ids + cu_seqlens)
    loader_threads: int = setting(2, min=1, cli=False)  # native loader worker threads (batches do not depend on it)
    skip_nonfinite: int = skip_nonfinite_field()
    allow_config_change: bool = setting(False, help="--resume even if data/arch/preset/seq-len/batch-size/"
                                        "grad-accum differ (logged)")  # the settings in RESUME_FIXED

    def __post_init__(self):
        if isinstance(self.optim, dict):
            self.optim = OptimConfig(**self.optim)
        if self.init is None:  # with --init both come from the checkpoint (resolve_init)
            self.arch = "bert" if self.arch is None else self.arch
            self.preset = "tiny" if self.preset is None else self.preset
        check_fields(self)


# Settings a resumed run must share with the run that wrote the checkpoint (else --allow-config-change).
RESUME_FIXED = ("data", "arch", "preset", "model_overrides", "seq_len", "batch_size", "grad_accum", "mlm_probability",
                "nsp", "pack", "init")


def make_loader(cfg: PretrainConfig, shards, tok: Tokenizer, seed: int):
    """The batch maker for ``cfg.arch``: its ``"pretrain"`` registration's ``loader_mode`` (MLM + NSP pairs for
    bert, causal windows for gpt and lstm) and ``pack`` (:mod:`bigmodel_fast.models.registry`).

    ``cfg.loader`` picks the native :class:`TokenLoader` (default) or the Python reference; both produce the same
    batches bit for bit, so a run may even switch between them on resume. GPT batches are packed when ``cfg.pack``
    (the model gets ``position_ids``, ``cu_seqlens`` and ``max_seqlen``); BERT rows hold one pair each and use the
    dense attention mask (per-row ``cu_seqlens`` only pay off with a varlen kernel); lstm windows are not packed.
    """
    spec = registry.get(cfg.arch, "pretrain")
    pack = cfg.pack and spec.pack
    vocab = tok.vocab_size  # the model's vocabulary: every loader checks shard headers and ids against it at open
    if cfg.loader == "native":
        return TokenLoader(shards, seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                           mode=spec.loader_mode, seed=seed,
                           mlm_probability=cfg.mlm_probability, nsp=cfg.nsp, pack=pack, tokenizer=tok,
                           num_threads=cfg.loader_threads, vocab_size=vocab)
    if spec.loader_mode == "mlm":
        return MLMLoader(shards, SpecialIds.from_tokenizer(tok), seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                         mlm_probability=cfg.mlm_probability, nsp=cfg.nsp, seed=seed, pack=pack, vocab_size=vocab)
    return CausalLoader(shards, seq_len=cfg.seq_len, batch_size=cfg.batch_size, pad_id=tok.pad_id, seed=seed,
                        pack=pack, vocab_size=vocab)


def build_model_config(cfg: PretrainConfig, tok: Tokenizer, init: InitSource | None = None) -> ModelConfig:
    """The run's model: the ``--init`` checkpoint's when given, else the preset with the model overrides, the
    tokenizer's vocabulary and ``max_position`` at least ``seq_len``."""
    if init is not None:
        return init.model_config
    fields = {**load_preset(cfg.preset), **cfg.model_overrides}
    fields.update(arch=cfg.arch, vocab_size=tok.vocab_size, pad_id=tok.pad_id)
    fields["max_position"] = max(int(fields.get("max_position", cfg.seq_len)), cfg.seq_len)
    return ModelConfig.from_dict(fields)


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
        if key == "init":  # resolved paths too (meta.json records the resolved one)
            old = (meta.get("init") or {}).get("checkpoint") or (str(Path(old).resolve()) if old else old)
            new = str(Path(new).resolve()) if new else new
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


def require_resumable(ckpt_dir: Path) -> None:
    if not (ckpt_dir / ckpt.TRAINER).is_file() and not (ckpt_dir / ckpt.LEGACY_TRAINER).is_file():
        raise FileNotFoundError(f"--resume: no resumable checkpoint at {ckpt_dir} (expected {ckpt.TRAINER})")


def resolve_init(cfg: PretrainConfig, ckpt_dir: Path) -> tuple[PretrainConfig, InitSource | None]:
    """``cfg`` with the arch of the checkpoint the model comes from, and that checkpoint: ``cfg.init``, or on
    ``--resume`` the run's own ``ckpt_dir`` (resume wins over --init). ``(cfg, None)`` without ``--init``.

    Raises ValueError / CheckpointError (one line) when the checkpoint is unusable or the run's settings conflict
    with its model (:func:`~.init_from.check_run_fits`)."""
    if cfg.init is None:
        return cfg, None
    if cfg.resume:
        require_resumable(ckpt_dir)
        source = read_init(ckpt_dir, "--resume")
    else:
        source = read_init(cfg.init)
    check_run_fits(source, cfg.arch, cfg.preset, cfg.model_overrides, cfg.seq_len)
    return replace(cfg, arch=source.model_config.arch), source


def restore(cfg: PretrainConfig, ckpt_dir: Path, model, opt, sched, loader) -> tuple[LoopState, dict]:
    """Load weights, optimizer, scheduler, loader position and RNG states from ``ckpt_dir``; returns where the run
    stands and the accepted setting changes (``{setting: [saved, now]}``, see :func:`config_changes`)."""
    require_resumable(ckpt_dir)
    _, meta = ckpt.read_meta(ckpt_dir)
    changes = check_resume_config(cfg, ckpt_dir, meta)
    ckpt.load_weights(ckpt_dir, model)
    state = ckpt.load_trainer_state(ckpt_dir)
    try:
        opt.load_state_dict(state["optimizer"])
        loop = LoopState.from_state_dict(state)
        sched.load_state_dict(state.get("scheduler", {"step": loop.step}))  # older trainer states: the step is all
        loader.load_state_dict(state["loader"])
        ckpt.set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise ckpt.CheckpointError(f"{ckpt_dir / ckpt.TRAINER}: trainer state does not fit this run "
                                   f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    return loop, changes


def pretrain(cfg: PretrainConfig) -> dict:
    """Run (or resume) pretraining, holding the run directory's lock. Returns the summary (also the last record of
    ``metrics.jsonl``, under ``"summary"``; :func:`~.pretrain_stats.format_summary` prints it):

    - ``arch``, ``target_kind`` ("mlm" or "lm": the held-out fields' prefix), ``start_step``, ``steps``,
      ``checkpoint``, ``metrics``, ``skipped_nonfinite`` (and ``init``);
    - ``tokens`` processed by this invocation's steps (batch_size * seq_len * grad_accum per step),
      ``train_seconds`` they took (evaluation and saving excluded), ``tokens_per_s`` = tokens / train_seconds;
    - the last log window's ``train_loss`` and, for BERT, ``mlm_loss``, ``nsp_loss`` (with NSP; the two sum to
      ``train_loss``), ``mlm_ppl`` = exp(mlm_loss), ``mlm_accuracy`` (argmax = original id at masked positions);
    - with a validation split: ``eval_losses`` [(step, eval_loss)], ``heldout_step`` and ``heldout`` (the fields of
      :class:`~.pretrain_stats.HeldOut`: held-out loss on the target tokens vs the unigram baseline); without
      one, ``no_heldout`` says why."""
    data = PreparedData(cfg.data)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    with fsio.DirLock(out / ".lock", "run directory"):
        ckpt_dir = out / "checkpoint"
        fsio.recover_dir(ckpt_dir)
        fsio.clean_stale(ckpt_dir)
        return _Run(cfg, data, out, ckpt_dir).train()


class _Run:
    """One pretraining run: the model, optimizer, schedule and loaders built from ``cfg`` (restored from
    ``ckpt_dir`` with ``cfg.resume``); :meth:`train` runs the loop to ``max_steps`` (or ``stop_at``)."""

    def __init__(self, cfg: PretrainConfig, data: PreparedData, out: Path, ckpt_dir: Path):
        cfg, init = resolve_init(cfg, ckpt_dir)
        self.cfg, self.ckpt_dir = cfg, ckpt_dir
        self.tok = load_tokenizer(data.tokenizer_file)
        self.device = pick_device(cfg.device)
        seed_everything(cfg.seed)
        self.init_record = None
        if init is not None and not cfg.resume:
            check_data_tokenizer(init, cfg.data, data.tokenizer_file, self.tok.vocab_size,
                                 lambda f: load_tokenizer(f).vocab_size)
            self.init_record = init_record(init)
        elif init is not None:
            self.init_record = init.meta.get("init")

        self.model_cfg = build_model_config(cfg, self.tok, init)
        self.model = build_pretraining_model(self.model_cfg)
        if init is not None and not cfg.resume:
            ckpt.load_weights(init.path, self.model)  # strict: every tensor of the pretraining model, no more
        self.model.to(self.device)
        self.opt = build_optimizer(self.model, cfg.optim)
        self.sched = build_scheduler(self.opt, cfg.optim, cfg.max_steps)
        train_shards = data.train_shards()
        self.loader = make_loader(cfg, train_shards, self.tok, seed=cfg.seed)
        valid_shards = data.valid_shards()
        self.eval_loader = make_loader(cfg, valid_shards, self.tok, seed=cfg.seed + 1) if valid_shards else None
        self.target_kind = "mlm" if registry.get(cfg.arch, "pretrain").loader_mode == "mlm" else "lm"
        self.heldout = None
        if self.eval_loader is not None and cfg.eval_batches > 0:  # unigram baseline: one bincount over the shards
            self.heldout = HeldOut(self.eval_loader, cfg.eval_batches,
                                   unigram_log_probs(train_shards, self.tok.vocab_size, progress=cfg.progress),
                                   self.target_kind)

        loop, changes = LoopState(), {}
        if cfg.resume:
            loop, changes = restore(cfg, ckpt_dir, self.model, self.opt, self.sched, self.loader)
        self.step = loop.step
        self.saved_step = loop.step if cfg.resume else None
        self.log = MetricsLog(out / "metrics.jsonl")
        if changes:
            self.log.write(step=self.step, config_change=changes)
        self.guard = NonFiniteGuard(cfg.skip_nonfinite, self.last_good, loop.skipped_nonfinite)
        self.optimizer_step = OptimizerStep(self.model, self.opt, self.sched, cfg.optim.clip_grad, self.guard,
                                            self.log)
        self.tokens_per_step = cfg.batch_size * cfg.seq_len * cfg.grad_accum
        self.inputs_checked = False

    def last_good(self) -> str:
        return (f"{self.ckpt_dir} (step {self.saved_step})" if self.saved_step is not None
                else "none (no checkpoint was saved by this run)")

    def save(self) -> None:
        check_finite_weights(self.model, self.step, self.last_good)
        trainer_state = {**LoopState(self.step, self.guard.skipped).state_dict(), "optimizer": self.opt.state_dict(),
                         "scheduler": self.sched.state_dict(), "loader": self.loader.state_dict(),
                         "rng": ckpt.rng_state()}
        meta = {"kind": "pretrain", "step": self.step, "train_config": asdict(self.cfg),
                "data_path": str(Path(self.cfg.data).resolve())}
        if self.init_record is not None:
            meta["init"] = self.init_record
        ckpt.save_checkpoint(self.ckpt_dir, self.model, self.model_cfg.to_dict(), self.tok.model_file, meta,
                             trainer_state)
        self.saved_step = self.step

    def accumulate(self, it, window: TrainWindow) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward over ``grad_accum`` batches of ``it``; returns the step's loss (0-d, detached) and
        its :func:`~.pretrain_stats.step_parts` (5,) summed over the batches."""
        cfg, device = self.cfg, self.device
        step_loss = torch.zeros((), device=device)
        parts = torch.zeros(5, dtype=torch.float64, device=device)
        for _ in range(cfg.grad_accum):
            t = time.perf_counter()
            batch = to_device(next(it), device)
            window.data_time += time.perf_counter() - t
            if not self.inputs_checked:  # id ranges and shapes, once: it syncs the device
                check_inputs(self.model_cfg, batch["input_ids"], batch.get("attention_mask"),
                             batch.get("token_type_ids"))
                self.inputs_checked = True
            with autocast_for(device, cfg.amp):
                out = self.model(**batch)
                loss = out["loss"] / cfg.grad_accum
            loss.backward()
            step_loss += loss.detach()
            parts += step_parts(out, 1.0 / cfg.grad_accum)
        return step_loss, parts

    def log_window(self, window: TrainWindow, bar, summary: dict) -> None:
        rec = window.close()
        self.log.write(step=self.step, **rec, lr=self.sched.get_last_lr()[0])
        loss, tps = rec["loss"], rec["window_tokens_per_s"]
        bar.set_postfix(loss=f"{loss:.3f}" if loss is not None else "skipped", tok_s=f"{tps or 0:,.0f}")
        summary.update(train_loss=loss, **{k: rec[k] for k in ("mlm_loss", "nsp_loss", "mlm_ppl", "mlm_accuracy")
                                           if k in rec})

    def evaluate(self, bar, summary: dict) -> None:
        rec = self.heldout(self.model, self.device, self.cfg.amp)
        self.log.write(step=self.step, **rec)
        summary.setdefault("eval_losses", []).append((self.step, rec["eval_loss"]))
        summary.update(heldout_step=self.step, heldout=rec)
        bar.write(f"step {self.step}: {heldout_line(rec, self.target_kind)}")

    def train(self) -> dict:
        cfg = self.cfg
        summary: dict = {"arch": cfg.arch, "target_kind": self.target_kind, "start_step": self.step}
        if self.heldout is None:
            summary["no_heldout"] = ("no validation shards in the data directory" if self.eval_loader is None
                                     else "--eval-batches 0")
        if self.init_record is not None:
            summary["init"] = self.init_record["checkpoint"]
        self.model.train()
        it = iter(self.loader)
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc=f"pretrain {cfg.arch}", disable=not cfg.progress,
                   dynamic_ncols=True)
        window = TrainWindow(self.device, self.tokens_per_step, mlm=self.target_kind == "mlm",
                             nsp=self.target_kind == "mlm" and cfg.nsp)
        end = min(cfg.max_steps, cfg.stop_at) if cfg.stop_at > 0 else cfg.max_steps
        while self.step < end:
            step_loss, parts = self.accumulate(it, window)
            if self.optimizer_step(self.step + 1, step_loss).applied:
                window.sums += parts
                window.good += 1
            else:
                bar.write(f"step {self.step + 1}: non-finite loss or gradient norm, step skipped "
                          f"({self.guard.skipped} of --skip-nonfinite {cfg.skip_nonfinite})")
            self.step += 1
            window.steps += 1

            if self.step % cfg.log_every == 0 or self.step == end:  # the last window is logged at --stop-at too
                self.log_window(window, bar, summary)
            paused = time.perf_counter()
            if self.heldout is not None and (self.step % cfg.eval_every == 0 or self.step == cfg.max_steps):
                self.evaluate(bar, summary)
            if self.step % cfg.save_every == 0 or self.step == end:
                self.save()
            window.pause(time.perf_counter() - paused)  # eval and saving do not count as training time
            bar.update(1)
        bar.close()
        for ld in (self.loader, self.eval_loader):
            if isinstance(ld, TokenLoader):
                ld.close()  # join the worker threads now rather than at garbage collection
        summary.update(steps=self.step, **window.totals(), checkpoint=str(self.ckpt_dir), metrics=str(self.log.path),
                       skipped_nonfinite=self.guard.skipped)
        self.log.write(step=self.step, summary=summary)
        self.log.close()
        return summary
