"""Pretraining loop: BERT (MLM + NSP) or GPT (causal LM) over the token shards ``bmf prepare`` wrote.

Thin on purpose: the model computes its loss, the loader is a pure function of the batch index, and everything
needed to continue a run (weights, optimizer, scheduler, step, RNG states, loader position) is in the checkpoint,
so ``--resume`` reproduces an uninterrupted run.

Many devices: under ``torchrun`` every rank runs this loop on its disjoint share of each global batch (the loader's
``rank`` / ``world_size``), data-parallel through :class:`~.parallel.Parallel` (DDP, or FSDP2 with ``--parallel
fsdp``); ``--batch-size`` is per rank. Each step's loss is the mean over all its target tokens on all ranks
(:mod:`.loss_parts`), so N ranks x B rows take the same steps as one process with N x B rows. Rank 0 alone logs,
shows the bar and writes checkpoints (:mod:`.pretrain_resume` says what a resume on another rank count changes).

``--init CKPT`` starts from another pretraining checkpoint instead of random weights (:mod:`.init_from`): its
model config and weights, a fresh optimizer, schedule and step count, the same loaders and attention dispatch as
any other run. On ``--resume`` the run's own checkpoint wins; the ``--init`` one is not read again.
"""

from __future__ import annotations

import contextlib
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
from ..optional import require
from ..runtime import amp_dtype, autocast_for, pick_device, seed_everything, to_device
from . import speed
from .config_fields import (
    activation_checkpointing_field,
    amp_field,
    arch_choices,
    compile_field,
    device_field,
    parallel_field,
    peak_tflops_field,
    progress_field,
    seed_field,
    skip_nonfinite_field,
    tensorboard_field,
    tf32_field,
)
from .errors import NonFiniteError
from .flops import peak_tflops, training_flops_per_token
from .init_from import InitSource, check_data_tokenizer, check_run_fits, init_record, read_init
from .loop_state import LoopState
from .loss_parts import batch_parts, step_weights, weighted_loss
from .metrics_log import MetricsLog, NullLog
from .optim import OptimConfig, build_optimizer, build_scheduler
from .parallel import Parallel
from .pretrain_resume import RESUME_FIXED, config_changes, require_resumable, restore, say_stderr, scaler_state
from .pretrain_stats import HeldOut, TrainWindow, heldout_line, step_parts, unigram_log_probs
from .step import NonFiniteGuard, OptimizerStep

__all__ = ["LOADERS", "PretrainConfig", "RESUME_FIXED", "build_model_config", "config_changes", "make_loader",
           "pretrain"]

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
    parallel: str = parallel_field()
    compile: str = compile_field()
    activation_checkpointing: bool = activation_checkpointing_field()
    tf32: bool = tf32_field()
    peak_tflops: float | None = peak_tflops_field()
    tensorboard: bool = tensorboard_field()
    grad_scaler_init: float = setting(2.0 ** 16, cli=False)  # --amp fp16: the GradScaler's first scale

    def __post_init__(self):
        if isinstance(self.optim, dict):
            self.optim = OptimConfig(**self.optim)
        if self.init is None:  # with --init both come from the checkpoint (resolve_init)
            self.arch = "bert" if self.arch is None else self.arch
            self.preset = "tiny" if self.preset is None else self.preset
        check_fields(self)
        if self.tensorboard:
            require("tensorboard", "plots", "--tensorboard")  # at the start, not when the log opens
        if self.peak_tflops is not None and not self.peak_tflops > 0:
            raise ValueError(f"peak_tflops must be > 0 (TFLOP/s), got {self.peak_tflops}")
        if self.amp == "fp16" and self.parallel == "fsdp":
            raise ValueError("amp fp16 with parallel fsdp is not supported (sharded gradients would need a sharded "
                             "GradScaler); use --amp bf16, which needs no loss scaling")


def make_loader(cfg: PretrainConfig, shards, tok: Tokenizer, seed: int, rank: int = 0, world_size: int = 1):
    """The batch maker for ``cfg.arch``: its ``"pretrain"`` registration's ``loader_mode`` (MLM + NSP pairs for
    bert, causal windows for gpt and lstm) and ``pack`` (:mod:`bigmodel_fast.models.registry`).

    ``rank`` of ``world_size`` reads its share of each global batch (rows ``rank * batch_size`` on of it).
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
                           mode=spec.loader_mode, seed=seed, rank=rank, world_size=world_size,
                           mlm_probability=cfg.mlm_probability, nsp=cfg.nsp, pack=pack, tokenizer=tok,
                           num_threads=cfg.loader_threads, vocab_size=vocab)
    if spec.loader_mode == "mlm":
        return MLMLoader(shards, SpecialIds.from_tokenizer(tok), seq_len=cfg.seq_len, batch_size=cfg.batch_size,
                         mlm_probability=cfg.mlm_probability, nsp=cfg.nsp, seed=seed, pack=pack, vocab_size=vocab,
                         rank=rank, world_size=world_size)
    return CausalLoader(shards, seq_len=cfg.seq_len, batch_size=cfg.batch_size, pad_id=tok.pad_id, seed=seed,
                        pack=pack, vocab_size=vocab, rank=rank, world_size=world_size)


def build_model_config(cfg: PretrainConfig, tok: Tokenizer, init: InitSource | None = None) -> ModelConfig:
    """The run's model: the ``--init`` checkpoint's when given, else the preset with the model overrides, the
    tokenizer's vocabulary and ``max_position`` at least ``seq_len``."""
    if init is not None:
        return init.model_config
    fields = {**load_preset(cfg.preset), **cfg.model_overrides}
    fields.update(arch=cfg.arch, vocab_size=tok.vocab_size, pad_id=tok.pad_id)
    fields["max_position"] = max(int(fields.get("max_position", cfg.seq_len)), cfg.seq_len)
    return ModelConfig.from_dict(fields)


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


def pretrain(cfg: PretrainConfig) -> dict:
    """Run (or resume) pretraining, rank 0 holding the run directory's lock. Returns the summary (also the last
    record of ``metrics.jsonl``, under ``"summary"``; :func:`~.pretrain_stats.format_summary` prints it):

    - ``arch``, ``target_kind`` ("mlm" or "lm": the held-out fields' prefix), ``start_step``, ``steps``,
      ``checkpoint``, ``metrics``, ``skipped_nonfinite``, ``grad_scaler_skipped`` (fp16), ``world_size``,
      ``global_batch`` (and ``init``);
    - ``tokens`` processed by this invocation's steps on all ranks (world_size * batch_size * seq_len * grad_accum
      per step), ``train_seconds`` they took (evaluation and saving excluded), ``tokens_per_s`` = tokens /
      train_seconds, ``flops_per_token`` (:func:`~.flops.training_flops_per_token`), ``tflops`` achieved and
      ``mfu`` (None without a known peak; ``peak_tflops`` says which one was used);
    - the last log window's ``train_loss`` and, for BERT, ``mlm_loss``, ``nsp_loss`` (with NSP; the two sum to
      ``train_loss``), ``mlm_ppl`` = exp(mlm_loss), ``mlm_accuracy`` (argmax = original id at masked positions);
    - with a validation split: ``eval_losses`` [(step, eval_loss)], ``heldout_step`` and ``heldout`` (the fields of
      :class:`~.pretrain_stats.HeldOut`: held-out loss on the target tokens vs the unigram baseline, over every
      rank's share); without one, ``no_heldout`` says why."""
    data = PreparedData(cfg.data)
    out = Path(cfg.out)
    parallel = Parallel(cfg.parallel, pick_device(cfg.device))
    try:
        if parallel.is_main:
            out.mkdir(parents=True, exist_ok=True)
        lock = fsio.DirLock(out / ".lock", "run directory") if parallel.is_main else contextlib.nullcontext()
        with lock:
            ckpt_dir = out / "checkpoint"
            if parallel.is_main:
                fsio.recover_dir(ckpt_dir)
                fsio.clean_stale(ckpt_dir)
            parallel.barrier()  # the other ranks read the checkpoint only once rank 0 has repaired it
            return _Run(cfg, data, out, ckpt_dir, parallel).train()
    finally:
        parallel.close()


class _Run:
    """One pretraining run: the model, optimizer, schedule and loaders built from ``cfg`` (restored from
    ``ckpt_dir`` with ``cfg.resume``); :meth:`train` runs the loop to ``max_steps`` (or ``stop_at``)."""

    def __init__(self, cfg: PretrainConfig, data: PreparedData, out: Path, ckpt_dir: Path, parallel: Parallel):
        cfg, init = resolve_init(cfg, ckpt_dir)
        self.cfg, self.ckpt_dir, self.parallel = cfg, ckpt_dir, parallel
        self.tok = load_tokenizer(data.tokenizer_file)
        self.device = device = parallel.device
        seed_everything(cfg.seed)  # the same on every rank: the same initial weights everywhere
        self.init_record = None
        if init is not None and not cfg.resume:
            check_data_tokenizer(init, cfg.data, data.tokenizer_file, self.tok.vocab_size,
                                 lambda f: load_tokenizer(f).vocab_size)
            self.init_record = init_record(init)
        elif init is not None:
            self.init_record = init.meta.get("init")

        self.model_cfg = build_model_config(cfg, self.tok, init)
        module = build_pretraining_model(self.model_cfg)
        if cfg.resume:
            require_resumable(ckpt_dir)
            ckpt.load_weights(ckpt_dir, module)  # before wrapping: FSDP2 shards the loaded weights
        elif init is not None:
            ckpt.load_weights(init.path, module)  # strict: every tensor of the pretraining model, no more
        module.to(device)
        if parallel.world_size > 1:
            seed_everything(cfg.seed + 1_000_003 * parallel.rank)  # each rank its own dropout masks
        self.speed = self.apply_speed(module)
        self.module = module
        self.model = parallel.wrap(module, self.amp if parallel.mode == "fsdp" else None)
        self.opt = build_optimizer(module, cfg.optim)
        self.sched = build_scheduler(self.opt, cfg.optim, cfg.max_steps)
        self.scaler = speed.grad_scaler(device, self.amp, cfg.grad_scaler_init)
        train_shards = data.train_shards()
        rank, world = parallel.rank, parallel.world_size
        self.loader = make_loader(cfg, train_shards, self.tok, seed=cfg.seed, rank=rank, world_size=world)
        valid_shards = data.valid_shards()
        self.eval_loader = (make_loader(cfg, valid_shards, self.tok, seed=cfg.seed + 1, rank=rank, world_size=world)
                            if valid_shards else None)
        self.target_kind = "mlm" if registry.get(cfg.arch, "pretrain").loader_mode == "mlm" else "lm"
        self.heldout = None
        if self.eval_loader is not None and cfg.eval_batches > 0:  # unigram baseline: one bincount over the shards
            self.heldout = HeldOut(self.eval_loader, cfg.eval_batches,
                                   unigram_log_probs(train_shards, self.tok.vocab_size,
                                                     progress=cfg.progress and parallel.is_main),
                                   self.target_kind, reduce=parallel.all_reduce_sum, world_size=world)

        say = say_stderr if parallel.is_main else None
        loop, changes = LoopState(), {}
        if cfg.resume:
            loop, changes = restore(cfg, ckpt_dir, parallel, self.opt, self.sched, self.loader, self.scaler, say)
        self.step = loop.step
        self.saved_step = loop.step if cfg.resume else None
        self.log = MetricsLog(out / "metrics.jsonl", tensorboard=cfg.tensorboard) if parallel.is_main else NullLog()
        if changes:
            self.log.write(step=self.step, config_change=changes)
        self.guard = NonFiniteGuard(cfg.skip_nonfinite, self.last_good, loop.skipped_nonfinite)
        self.optimizer_step = OptimizerStep(self.model, self.opt, self.sched, cfg.optim.clip_grad, self.guard,
                                            self.log, self.scaler, loop.grad_scaler_skipped)
        self.tokens_per_step = world * cfg.batch_size * cfg.seq_len * cfg.grad_accum
        self.flops_per_token = training_flops_per_token(
            self.model_cfg, cfg.seq_len, cfg.mlm_probability if self.target_kind == "mlm" else None, cfg.nsp)
        peak, self.peak_source = peak_tflops(device, cfg.amp, cfg.peak_tflops)
        self.peak = peak * world if peak else None  # the job's peak: every rank's device
        self.inputs_checked = False
        if parallel.enabled and say is not None:
            say(f"{parallel.describe()}; global batch {world} x {cfg.batch_size} x {cfg.grad_accum} (ranks x "
                f"--batch-size x --grad-accum) = {world * cfg.batch_size * cfg.grad_accum} sequences of {cfg.seq_len}")

    @property
    def amp(self) -> torch.dtype | None:
        return amp_dtype(self.device, self.cfg.amp)

    def apply_speed(self, module) -> dict:
        """TF32, activation checkpointing and compilation of ``module`` as the config asks; what was applied."""
        cfg, device = self.cfg, self.device
        speed.set_tf32(device, cfg.tf32)
        blocks = speed.apply_activation_checkpointing(module) if cfg.activation_checkpointing else 0
        compiled = speed.compile_enabled(cfg.compile, device)
        if compiled:
            speed.compile_model(module, per_block=self.parallel.enabled and self.parallel.mode == "fsdp")
        return {"compile": compiled, "activation_checkpointing": blocks,
                "tf32": bool(cfg.tf32 and device.type == "cuda")}

    def last_good(self) -> str:
        return (f"{self.ckpt_dir} (step {self.saved_step})" if self.saved_step is not None
                else "none (no checkpoint was saved by this run)")

    def save(self) -> None:
        """Every rank takes part (the states are gathered to rank 0); rank 0 writes the checkpoint."""
        parallel = self.parallel
        weights = parallel.model_state()
        optimizer = parallel.optimizer_state(self.opt)
        rngs = parallel.gather(ckpt.rng_state())
        bad = parallel.broadcast([n for n, t in weights.items() if t.is_floating_point()
                                  and not bool(torch.isfinite(t).all())] if parallel.is_main else None)
        if bad:
            raise NonFiniteError(f"step {self.step}: the weights hold non-finite values ({', '.join(bad[:3])}); not "
                                 f"saved; last good checkpoint: {self.last_good()}")
        if parallel.is_main:
            loop = LoopState(self.step, self.guard.skipped, self.optimizer_step.scaler_skipped)
            trainer_state = {**loop.state_dict(), "optimizer": optimizer, "scheduler": self.sched.state_dict(),
                             "loader": self.loader.state_dict(), "rng": rngs[0], "world_size": parallel.world_size,
                             **scaler_state(self.scaler)}
            if parallel.world_size > 1:
                trainer_state["rank_rng"] = rngs[1:]
            meta = {"kind": "pretrain", "step": self.step, "train_config": asdict(self.cfg),
                    "data_path": str(Path(self.cfg.data).resolve()),
                    "parallel": {"mode": parallel.mode if parallel.enabled else None,
                                 "world_size": parallel.world_size}}
            if self.init_record is not None:
                meta["init"] = self.init_record
            ckpt.save_checkpoint(self.ckpt_dir, weights, self.model_cfg.to_dict(), self.tok.model_file, meta,
                                 trainer_state)
        parallel.barrier()
        self.saved_step = self.step

    def accumulate(self, it, window: TrainWindow) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward and backward over ``grad_accum`` batches of ``it``; returns the step's loss (0-d, detached: this
        rank's share of the global mean, see :mod:`.loss_parts`) and its :func:`~.pretrain_stats.step_parts` (5,)."""
        cfg, device, parallel = self.cfg, self.device, self.parallel
        t = time.perf_counter()
        batches = [to_device(next(it), device) for _ in range(cfg.grad_accum)]
        window.data_time += time.perf_counter() - t
        if not self.inputs_checked:  # id ranges and shapes, once: it syncs the device
            b = batches[0]
            check_inputs(self.model_cfg, b["input_ids"], b.get("attention_mask"), b.get("token_type_ids"))
            self.inputs_checked = True
        parts = batch_parts(batches[0])
        weights = step_weights(batches, parts, parallel.all_reduce_sum)  # (A, P): one all-reduce per step
        step_loss = torch.zeros((), device=device)
        sums = torch.zeros(5, dtype=torch.float64, device=device)
        for i, batch in enumerate(batches):
            with parallel.sync_gradients(final=i == len(batches) - 1):
                with autocast_for(device, cfg.amp):
                    out = self.model(**batch)
                    loss = weighted_loss(out, parts, weights[i])
                scaled = loss * parallel.world_size if parallel.world_size > 1 else loss  # ranks' gradients average
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            step_loss += loss.detach()
            sums += step_parts(out, loss, parts, weights[i])
        return step_loss, sums

    def log_window(self, window: TrainWindow, bar, summary: dict) -> None:
        self.parallel.all_reduce_sum(window.sums)  # every rank's share of the window's losses
        rec = window.close(self.flops_per_token, self.peak)
        self.log.write(step=self.step, **rec, lr=self.sched.get_last_lr()[0])
        loss, tps = rec["loss"], rec["window_tokens_per_s"]
        shown = {"loss": f"{loss:.3f}" if loss is not None else "skipped", "tok_s": f"{tps or 0:,.0f}"}
        if rec.get("mfu") is not None:
            shown["mfu"] = f"{100 * rec['mfu']:.1f}%"
        elif rec.get("tflops") is not None:
            shown["tflops"] = f"{rec['tflops']:.3g}"
        bar.set_postfix(**shown)
        summary.update(train_loss=loss, **{k: rec[k] for k in ("mlm_loss", "nsp_loss", "mlm_ppl", "mlm_accuracy")
                                           if k in rec})

    def evaluate(self, bar, summary: dict) -> None:
        rec = self.heldout(self.model, self.device, self.cfg.amp)
        self.log.write(step=self.step, **rec)
        summary.setdefault("eval_losses", []).append((self.step, rec["eval_loss"]))
        summary.update(heldout_step=self.step, heldout=rec)
        if self.parallel.is_main:
            bar.write(f"step {self.step}: {heldout_line(rec, self.target_kind)}")

    def train(self) -> dict:
        cfg, parallel = self.cfg, self.parallel
        summary: dict = {"arch": cfg.arch, "target_kind": self.target_kind, "start_step": self.step,
                         "world_size": parallel.world_size, "parallel": parallel.mode if parallel.enabled else None,
                         "global_batch": parallel.world_size * cfg.batch_size * cfg.grad_accum, **self.speed}
        if self.heldout is None:
            summary["no_heldout"] = ("no validation shards in the data directory" if self.eval_loader is None
                                     else "--eval-batches 0")
        if self.init_record is not None:
            summary["init"] = self.init_record["checkpoint"]
        self.model.train()
        it = iter(self.loader)
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc=f"pretrain {cfg.arch}",
                   disable=not (cfg.progress and parallel.is_main), dynamic_ncols=True)
        window = TrainWindow(self.device, self.tokens_per_step, mlm=self.target_kind == "mlm",
                             nsp=self.target_kind == "mlm" and cfg.nsp)
        end = min(cfg.max_steps, cfg.stop_at) if cfg.stop_at > 0 else cfg.max_steps
        while self.step < end:
            step_loss, parts = self.accumulate(it, window)
            outcome = self.optimizer_step(self.step + 1, parallel.all_reduce_sum(step_loss))
            if outcome.applied or outcome.overflow:  # an fp16 overflow skip still measured a finite loss
                window.sums += parts
                window.good += 1
            elif parallel.is_main:
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
        summary.update(steps=self.step, **window.totals(self.flops_per_token, self.peak),
                       flops_per_token=self.flops_per_token, peak_tflops=self.peak, peak_source=self.peak_source,
                       checkpoint=str(self.ckpt_dir), metrics=str(self.log.path), skipped_nonfinite=self.guard.skipped,
                       grad_scaler_skipped=self.optimizer_step.scaler_skipped)
        self.log.write(step=self.step, summary=summary)
        self.log.close()
        return summary
