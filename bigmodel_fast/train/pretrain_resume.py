"""What ``bmf pretrain --resume`` checks and restores, on any number of ranks.

A checkpoint holds the one-process layout whatever wrote it (rank 0 gathers the model and optimizer states), plus
``world_size`` and, for data-parallel runs, every rank's RNG state. Resuming on the SAME number of ranks (and batch
size) is bit-exact: each rank gets its own RNG state back and its loader continues at the saved batch.

Resuming on a DIFFERENT number of ranks is allowed and changes only this (documented in README, "Many devices"):

* the data continues at the same global sample: the saved run had consumed ``next_batch x world_size x batch_size``
  samples of the loader's stream, and the new ranks start at that sample (the stream itself, and each sample's MLM
  mask, does not depend on the world size). When that count is not a multiple of the new global batch, the start is
  rounded down to one (a few samples are seen twice) and a note says so;
* the global batch is the new ``world_size x batch_size`` (the lr schedule stays a function of the step number);
* dropout RNG states: each rank is re-seeded from (seed, rank, step) instead of continuing the saved states.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import torch

from .. import checkpoint as ckpt
from ..runtime import seed_everything
from .loop_state import LoopState

# Settings a resumed run must share with the run that wrote the checkpoint (else --allow-config-change).
RESUME_FIXED = ("data", "arch", "preset", "model_overrides", "seq_len", "batch_size", "grad_accum", "mlm_probability",
                "nsp", "pack", "init")


def config_changes(cfg, meta: dict) -> dict:
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


def check_resume_config(cfg, ckpt_dir: Path, meta: dict, say=None) -> dict:
    changes = config_changes(cfg, meta)
    if changes and not cfg.allow_config_change:
        listed = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
        raise ValueError(f"{ckpt_dir / ckpt.META}: --resume with changed settings ({listed}); resume with the "
                         f"checkpoint's settings, or pass --allow-config-change to accept the change")
    if changes and say is not None:
        say(f"note: resuming with changed settings: {changes}")
    return changes


def require_resumable(ckpt_dir: Path) -> None:
    if not (ckpt_dir / ckpt.TRAINER).is_file() and not (ckpt_dir / ckpt.LEGACY_TRAINER).is_file():
        raise FileNotFoundError(f"--resume: no resumable checkpoint at {ckpt_dir} (expected {ckpt.TRAINER})")


def loader_position(state: dict, saved_world: int, saved_batch: int, world: int, batch: int) -> tuple[int, str | None]:
    """``(next_batch, note)`` for a loader of ``world`` ranks x ``batch`` rows continuing a run of ``saved_world`` x
    ``saved_batch`` whose loader state is ``state``: the same global sample (rounded down to a whole new global
    batch, with a note saying how many samples repeat)."""
    next_batch = state.get("next_batch")
    if not isinstance(next_batch, int) or next_batch < 0:
        raise ValueError(f"loader state field 'next_batch' must be an int >= 0, got {next_batch!r}")
    if (saved_world, saved_batch) == (world, batch):
        return next_batch, None
    consumed = next_batch * saved_world * saved_batch
    new_next, rest = divmod(consumed, world * batch)
    note = (f"the checkpoint was written by {saved_world} rank(s) x batch {saved_batch}; continuing at global sample "
            f"{new_next * world * batch} on {world} rank(s) x batch {batch}")
    if rest:
        note += f" ({rest} samples before it are seen again: {consumed} is not a multiple of {world * batch})"
    return new_next, note


def restore_rank_rng(state: dict, saved_world: int, rank: int, world: int, seed: int, step: int) -> str | None:
    """Set this rank's RNG state from the checkpoint (same world size), else re-seed it from (seed, rank, step);
    returns a note in the second case."""
    if saved_world == world:
        states = [state["rng"], *state.get("rank_rng", [])]
        if len(states) != world:
            raise ValueError(f"trainer state holds {len(states)} RNG state(s) for a run of {world} ranks")
        ckpt.set_rng_state(states[rank])
        return None
    seed_everything(seed + 1_000_003 * rank + 7919 * step)
    return f"dropout RNG re-seeded from (seed, rank, step): the checkpoint was written by {saved_world} rank(s)"


def restore(cfg, ckpt_dir: Path, parallel, opt, sched, loader, scaler=None, say=None) -> tuple[LoopState, dict]:
    """Load optimizer, scheduler, loader position, GradScaler and RNG states from ``ckpt_dir`` (the weights are
    loaded before the model is wrapped: :func:`~bigmodel_fast.checkpoint.load_weights`); returns where the run
    stands and the accepted setting changes (``{setting: [saved, now]}``, see :func:`config_changes`)."""
    require_resumable(ckpt_dir)
    _, meta = ckpt.read_meta(ckpt_dir)
    changes = check_resume_config(cfg, ckpt_dir, meta, say)
    state = ckpt.load_trainer_state(ckpt_dir)
    try:
        parallel.load_optimizer_state(opt, state["optimizer"])
        loop = LoopState.from_state_dict(state)
        sched.load_state_dict(state.get("scheduler", {"step": loop.step}))  # older trainer states: the step is all
        saved_world = int(state.get("world_size", 1))
        saved_batch = int((meta.get("train_config") or {}).get("batch_size", cfg.batch_size))
        next_batch, note = loader_position(state["loader"], saved_world, saved_batch, parallel.world_size,
                                           cfg.batch_size)
        loader.load_state_dict({**state["loader"], "next_batch": next_batch, "rank": parallel.rank,
                                "world_size": parallel.world_size})
        rng_note = restore_rank_rng(state, saved_world, parallel.rank, parallel.world_size, cfg.seed, loop.step)
        if scaler is not None and isinstance(state.get("grad_scaler"), dict):
            scaler.load_state_dict(state["grad_scaler"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise ckpt.CheckpointError(f"{ckpt_dir / ckpt.TRAINER}: trainer state does not fit this run "
                                   f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    for line in (note, rng_note):
        if line and say is not None:
            say(f"note: {line}")
    if saved_world != parallel.world_size:
        changes = {**changes, "world_size": [saved_world, parallel.world_size]}
    return loop, changes


def say_stderr(text: str) -> None:
    print(f"bmf pretrain: {text}", file=sys.stderr, flush=True)


def scaler_state(scaler: torch.amp.GradScaler | None) -> dict:
    """The GradScaler's part of the trainer state (``{}`` without one): its plain-number state dict."""
    return {} if scaler is None else {"grad_scaler": scaler.state_dict()}
