"""``bmf pretrain --init CKPT``: the checkpoint a run starts from, and the checks that the run fits it.

The model of such a run is the checkpoint's own (its ``config.json`` and ``model.safetensors``: a bmf
pretraining checkpoint, or one ``bmf import-hf`` wrote); the optimizer, schedule and step start fresh. The run's
``--arch`` / ``--preset`` / model overrides, when given, must describe that same model, and the data must have been
tokenized by the checkpoint's tokenizer (``bmf prepare --tokenizer CKPT``), byte for byte: a different tokenizer
with the same vocabulary size would silently feed the model other words.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import checkpoint as ckpt
from ..models.config import ModelConfig
from ..models.presets import load_preset


@dataclass(frozen=True)
class InitSource:
    """A pretraining checkpoint a run takes its model from: its directory, model config and meta.json."""

    path: Path
    model_config: ModelConfig
    meta: dict


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_init(path: str | Path, flag: str = "--init") -> InitSource:
    """The pretraining checkpoint at ``path``, checked against its manifest (hashes included).

    Raises:
        CheckpointError: not a checkpoint directory, a damaged one, one of another kind (a classifier: fine-tune
            it with ``bmf finetune`` instead), or a config.json that is not a valid model config.
    """
    path = ckpt.open_checkpoint(path, hashes=True)
    cfg_dict, meta = ckpt.read_meta(path)
    if meta.get("kind") != "pretrain":
        raise ckpt.CheckpointError(f"{flag} {path}: expected a pretraining checkpoint (meta.json kind 'pretrain'), "
                                   f"got kind {meta.get('kind')!r}; a classifier is fine-tuned with `bmf finetune`")
    try:
        model_config = ModelConfig.from_dict(cfg_dict, source=str(path / ckpt.CONFIG))
    except ValueError as e:
        raise ckpt.CheckpointError(str(e)) from None
    return InitSource(path, model_config, meta)


def setting_conflicts(arch: str | None, preset: str | None, model_overrides: dict, model: ModelConfig) -> dict:
    """``{field: [given, checkpoint's]}`` for the model fields that ``--arch``, ``--preset`` (its JSON's fields)
    and the model overrides set to something other than the checkpoint's model config holds."""
    given: dict = {}
    if preset is not None:
        given.update(load_preset(preset))
    given.update(model_overrides)
    if arch is not None:
        given["arch"] = arch
    have = model.to_dict()
    missing = object()
    return {k: [v, have.get(k)] for k, v in given.items() if have.get(k, missing) != v}


def check_run_fits(source: InitSource, arch: str | None, preset: str | None, model_overrides: dict,
                   seq_len: int) -> None:
    """ValueError (one line, naming the checkpoint) when the run's model settings or ``seq_len`` do not fit the
    checkpoint's model."""
    conflicts = setting_conflicts(arch, preset, model_overrides, source.model_config)
    if conflicts:
        listed = ", ".join(f"{k} {a!r} (checkpoint: {b!r})" for k, (a, b) in conflicts.items())
        raise ValueError(f"--init {source.path}: the model is the checkpoint's ({source.path / ckpt.CONFIG}), but "
                         f"the run's settings differ from it: {listed}; drop --arch/--preset/model overrides or "
                         f"make them match")
    if seq_len > source.model_config.max_position:
        raise ValueError(f"--init {source.path}: seq_len {seq_len} is longer than the checkpoint's max_position "
                         f"{source.model_config.max_position} ({source.path / ckpt.CONFIG}); use --seq-len "
                         f"{source.model_config.max_position} or less")


def check_data_tokenizer(source: InitSource, data_dir: str | Path, data_tokenizer: Path, data_vocab: int,
                         vocab_of: Callable[[Path], int]) -> None:
    """ValueError (one line) unless the prepared data at ``data_dir`` was tokenized by the checkpoint's tokenizer:
    the same tokenizer file bytes (SHA-256), hence the same vocabulary size, and ids that fit the model's
    embeddings. ``vocab_of(file)`` loads a tokenizer file and returns its vocabulary size (for the message)."""
    ckpt_tok = ckpt.tokenizer_path(source.path)
    ours, theirs = file_sha256(data_tokenizer), file_sha256(ckpt_tok)
    if ours != theirs:
        ckpt_vocab = vocab_of(ckpt_tok)
        what = (f"sha256 {ours[:12]} vs {theirs[:12]}, both vocab {data_vocab}" if ckpt_vocab == data_vocab
                else f"vocab {data_vocab} vs {ckpt_vocab}")
        raise ValueError(f"{data_dir}: the data's tokenizer ({data_tokenizer.name}) is not the --init checkpoint's "
                         f"({ckpt_tok}; {what}); prepare the data with the checkpoint's tokenizer: "
                         f"`bmf prepare --tokenizer {source.path} ...`")
    if data_vocab > source.model_config.vocab_size:
        raise ValueError(f"--init {source.path}: its tokenizer has {data_vocab} ids but the model's vocab_size is "
                         f"{source.model_config.vocab_size} ({source.path / ckpt.CONFIG})")


def init_record(source: InitSource) -> dict:
    """What a run's meta.json says about where its weights came from."""
    return {"checkpoint": str(source.path.resolve()), "step": source.meta.get("step"),
            "bmf_version": source.meta.get("bmf_version")}
