"""Checkpoint directories, written atomically.

A checkpoint is a directory::

    config.json          model config (ModelConfig.to_dict())
    model.safetensors    weights (tied tensors stored once)
    tokenizer.model      the SentencePiece model the ids come from
    meta.json            kind ("pretrain" | "classifier"), step, bmf version, the run's settings
    trainer_state.pt     optimizer, scheduler, step, RNG states, loader position (only for resumable runs)

It is written into ``<dir>.tmp-<pid>`` and renamed into place, so a crash mid-save never leaves a half-written
checkpoint where a resume would read it.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model as load_safetensors, save_model as save_safetensors

from .. import __version__
from ..jsonio import read_json, write_json

CONFIG, WEIGHTS, TOKENIZER, META, TRAINER = (
    "config.json", "model.safetensors", "tokenizer.model", "meta.json", "trainer_state.pt")


class CheckpointError(ValueError):
    """A checkpoint directory is missing a file or holds something unexpected."""


def save_checkpoint(path: str | Path, model: torch.nn.Module, model_config: dict, tokenizer_file: str | Path,
                    meta: dict, trainer_state: dict | None = None) -> Path:
    """Write a checkpoint directory atomically; an existing one at ``path`` is replaced."""
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write_json(tmp / CONFIG, model_config)
    save_safetensors(model, str(tmp / WEIGHTS))
    shutil.copyfile(tokenizer_file, tmp / TOKENIZER)
    write_json(tmp / META, {"bmf_version": __version__, **meta})
    if trainer_state is not None:
        torch.save(trainer_state, tmp / TRAINER)
    old = path.with_name(path.name + f".old-{os.getpid()}")
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    if old.exists():
        shutil.rmtree(old)
    return path


def _require(path: Path, name: str) -> Path:
    f = path / name
    if not f.is_file():
        raise CheckpointError(f"{path}: missing {name}; expected a checkpoint directory written by bmf "
                              f"(config.json, model.safetensors, tokenizer.model, meta.json)")
    return f


def read_meta(path: str | Path) -> tuple[dict, dict]:
    """``(model_config_dict, meta)`` of a checkpoint directory."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a directory; expected a checkpoint directory written by bmf")
    return (read_json(_require(path, CONFIG), "model config"), read_json(_require(path, META), "checkpoint meta"))


def load_weights(path: str | Path, model: torch.nn.Module) -> None:
    """Load ``model.safetensors`` into ``model`` (strict: every key must match)."""
    f = _require(Path(path), WEIGHTS)
    missing, unexpected = load_safetensors(model, str(f), strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{f}: weights do not fit the model in config.json "
                              f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")


def load_model(path: str | Path, kind: str):
    """Build the model a checkpoint of ``kind`` ("pretrain" | "classifier") holds and load its weights.

    Returns ``(model, ModelConfig, meta)``; a checkpoint of another kind is a :class:`CheckpointError`.
    """
    from ..models import build_classifier, build_pretraining_model
    from ..models.config import ModelConfig

    builders = {"pretrain": build_pretraining_model, "classifier": build_classifier}
    cfg_dict, meta = read_meta(path)
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path}: expected a {kind} checkpoint (meta.json kind {kind!r}), "
                              f"got kind {meta.get('kind')!r}")
    cfg = ModelConfig.from_dict(cfg_dict)
    model = builders[kind](cfg)
    load_weights(path, model)
    return model, cfg, meta


def load_trainer_state(path: str | Path) -> dict:
    f = _require(Path(path), TRAINER)
    return torch.load(f, map_location="cpu", weights_only=False)


def rng_state() -> dict:
    """Every RNG a training step draws from."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
