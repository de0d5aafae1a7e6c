"""Checkpoint directories: written durably and atomically, verified on load, never unpickled.

A checkpoint is a directory::

    config.json                model config (ModelConfig.to_dict())
    model.safetensors          weights (tied tensors stored once)
    tokenizer.model | .json    the tokenizer the ids come from (SentencePiece, or HF tokenizers), under its own name
    meta.json                  kind ("pretrain" | "classifier"), step, bmf version, the run's settings
    trainer_state.json         step, scheduler, optimizer groups, Python/NumPy RNG, loader position (resumable runs)
    trainer_state.safetensors  the trainer state's tensors: optimizer state, torch/CUDA RNG states
    manifest.json              size + SHA-256 of every file, written last

It is written through :mod:`bigmodel_fast.fsio` (staging directory, fsync, manifest, publish), so a kill at any
point leaves a complete checkpoint where every reader looks (readers call :func:`fsio.recover_dir` first).
Nothing here uses pickle: :func:`safe_torch_load` (``weights_only=True``) is the package's only ``torch.load``,
kept for trainer states written before this format.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from safetensors.torch import load_model as load_safetensors
from safetensors.torch import save_model as save_safetensors

from . import __version__, fsio
from .jsonio import read_json, write_json

CONFIG, WEIGHTS, TOKENIZER, META = "config.json", "model.safetensors", "tokenizer.model", "meta.json"
TRAINER, TRAINER_TENSORS, LEGACY_TRAINER = "trainer_state.json", "trainer_state.safetensors", "trainer_state.pt"
TRAINER_FORMAT = "bmf-trainer-state"


class CheckpointError(ValueError):
    """A checkpoint directory is missing a file or holds something unexpected."""


def tokenizer_name(tokenizer_file: str | Path) -> str:
    """The name a tokenizer file keeps in a checkpoint: ``tokenizer.json`` for a ``*.json`` (HF tokenizers),
    else ``tokenizer.model`` (SentencePiece)."""
    return "tokenizer.json" if Path(tokenizer_file).suffix == ".json" else TOKENIZER


def tokenizer_path(path: str | Path) -> Path:
    """The tokenizer file of checkpoint ``path`` (``tokenizer.model`` or ``tokenizer.json``); CheckpointError
    naming the directory when it has neither."""
    from .data.tokenizer_base import TOKENIZER_FILES

    for name in TOKENIZER_FILES:
        if (Path(path) / name).is_file():
            return Path(path) / name
    raise CheckpointError(f"{path}: missing the tokenizer; expected a checkpoint directory written by bmf holding "
                          f"one of {', '.join(TOKENIZER_FILES)}")


# ------------------------------------------------------------------------------------------------------- writing
def save_checkpoint(path: str | Path, model: torch.nn.Module | dict, model_config: dict, tokenizer_file: str | Path,
                    meta: dict, trainer_state: dict | None = None) -> Path:
    """Write a checkpoint directory durably; an existing one at ``path`` is replaced. Call it holding the run's lock:
    it first repairs an interrupted earlier save and removes temporaries of dead processes.

    ``model`` is the module, or its full state dict (what data-parallel runs gather to rank 0; its tensors must
    not share memory with each other)."""
    path = Path(path)
    fsio.recover_dir(path)
    fsio.clean_stale(path)
    tmp = fsio.staging_dir(path)
    write_json(tmp / CONFIG, model_config)
    if isinstance(model, dict):
        save_file({k: v.detach().cpu().contiguous() for k, v in model.items()}, str(tmp / WEIGHTS))
    else:
        save_safetensors(model, str(tmp / WEIGHTS))
    shutil.copyfile(tokenizer_file, tmp / tokenizer_name(tokenizer_file))
    write_json(tmp / META, {"bmf_version": __version__, **meta})
    if trainer_state is not None:
        scalars, tensors = split_trainer_state(trainer_state)
        save_file(tensors, str(tmp / TRAINER_TENSORS))
        write_json(tmp / TRAINER, scalars)
    fsio.write_manifest(tmp)
    return fsio.publish_dir(tmp, path)


def split_trainer_state(state: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """``state`` (step, optimizer, loader, rng, extra JSON fields) -> (JSON document, flat tensor dict)."""
    tensors: dict[str, torch.Tensor] = {}
    opt = state["optimizer"]
    opt_state = {}
    for pid, entries in opt["state"].items():
        plain = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{pid}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                plain[name] = value
        opt_state[str(pid)] = plain
    doc = {k: v for k, v in state.items() if k not in ("optimizer", "rng", "rank_rng")}
    doc.update(format=TRAINER_FORMAT, version=1,
               optimizer={"param_groups": opt["param_groups"], "state": opt_state},
               rng=_split_rng(state["rng"], "rng", tensors))
    if "rank_rng" in state:  # data-parallel runs: the RNG states of ranks 1, 2, ... (rank 0's is "rng")
        doc["rank_rng"] = [_split_rng(r, f"rank_rng.{i}", tensors) for i, r in enumerate(state["rank_rng"])]
    return doc, tensors


def _split_rng(rng: dict, prefix: str, tensors: dict[str, torch.Tensor]) -> dict:
    """One process's :func:`rng_state` -> its JSON part; the torch/CUDA states go into ``tensors`` under ``prefix``."""
    rng = dict(rng)
    tensors[f"{prefix}.torch"] = rng.pop("torch").clone()
    for i, s in enumerate(rng.pop("cuda", [])):
        tensors[f"{prefix}.cuda.{i}"] = s.clone()
    kind, keys, pos, has_gauss, gauss = rng.pop("numpy")
    return {"python": rng["python"], "numpy": [kind, [int(k) for k in keys], pos, has_gauss, gauss]}


def _join_rng(doc: dict, prefix: str, tensors: dict[str, torch.Tensor]) -> dict:
    """The inverse of :func:`_split_rng`."""
    version, internal, gauss = doc["python"]
    kind, keys, pos, has_gauss, cached = doc["numpy"]
    rng = {"python": (int(version), tuple(int(x) for x in internal), gauss),
           "numpy": (str(kind), np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), float(cached)),
           "torch": tensors[f"{prefix}.torch"]}
    head = f"{prefix}.cuda."
    cuda = sorted((k for k in tensors if k.startswith(head)), key=lambda k: int(k[len(head):]))
    if cuda:
        rng["cuda"] = [tensors[k] for k in cuda]
    return rng


def join_trainer_state(doc: dict, tensors: dict[str, torch.Tensor]) -> dict:
    """The inverse of :func:`split_trainer_state` (raises KeyError/TypeError/ValueError on a malformed document)."""
    opt_state = {int(pid): dict(entries) for pid, entries in doc["optimizer"]["state"].items()}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = value
    rest = {k: v for k, v in doc.items() if k not in ("optimizer", "rng", "rank_rng", "format", "version")}
    out = {**rest, "optimizer": {"state": opt_state, "param_groups": doc["optimizer"]["param_groups"]},
           "rng": _join_rng(doc["rng"], "rng", tensors)}
    if "rank_rng" in doc:
        out["rank_rng"] = [_join_rng(r, f"rank_rng.{i}", tensors) for i, r in enumerate(doc["rank_rng"])]
    return out


# ------------------------------------------------------------------------------------------------------- reading
def _require(path: Path, name: str) -> Path:
    f = path / name
    if not f.is_file():
        raise CheckpointError(f"{path}: missing {name}; expected a checkpoint directory written by bmf "
                              f"(config.json, model.safetensors, tokenizer.model or .json, meta.json)")
    return f


def open_checkpoint(path: str | Path, hashes: bool = True) -> Path:
    """``path`` after repairing an interrupted save and checking it against its manifest (a checkpoint written
    before manifests existed has none and is accepted as it is)."""
    path = Path(path)
    fsio.recover_dir(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a directory; expected a checkpoint directory written by bmf")
    try:
        fsio.verify_manifest(path, hashes=hashes)
    except fsio.ManifestError as e:
        raise CheckpointError(str(e)) from None
    return path


def _json_object(path: Path, name: str, what: str) -> dict:
    f = _require(path, name)
    obj = read_json(f, what)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{f}: expected a JSON object ({what}), got {type(obj).__name__}")
    return obj


def read_meta(path: str | Path) -> tuple[dict, dict]:
    """``(model_config_dict, meta)`` of a checkpoint directory."""
    path = open_checkpoint(path, hashes=False)
    return _json_object(path, CONFIG, "model config"), _json_object(path, META, "checkpoint meta")


def _check_shapes(f: Path, model: torch.nn.Module) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        with safe_open(str(f), framework="pt") as st:
            shapes = {k: tuple(st.get_slice(k).get_shape()) for k in st.keys()}
    except Exception as e:  # safetensors raises its own SafetensorError (and OSError) on a damaged file
        raise CheckpointError(f"{f}: not a readable safetensors file ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'damaged'})") from None
    for name, shape in shapes.items():
        if name in expected and expected[name] != shape:
            raise CheckpointError(f"{f}: tensor {name!r} has shape {list(shape)} but the model in config.json needs "
                                  f"{list(expected[name])}")


def load_weights(path: str | Path, model: torch.nn.Module) -> None:
    """Load ``model.safetensors`` into ``model`` (strict: every key and shape must match)."""
    f = _require(Path(path), WEIGHTS)
    _check_shapes(f, model)
    try:
        missing, unexpected = load_safetensors(model, str(f), strict=False)
    except Exception as e:
        raise CheckpointError(f"{f}: weights could not be loaded ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else 'damaged'})") from None
    if missing or unexpected:
        raise CheckpointError(f"{f}: weights do not fit the model in config.json "
                              f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")


def load_model(path: str | Path, kind: str):
    """Build the model a checkpoint of ``kind`` ("pretrain" | "classifier") holds and load its weights.

    The model class is the model registry's entry for the config's arch and the task of ``kind``
    (:func:`bigmodel_fast.models.registry.task_of_kind`). Returns ``(model, ModelConfig, meta)``; a checkpoint of
    another kind is a :class:`CheckpointError`.
    """
    from .models import registry
    from .models.config import ModelConfig

    path = open_checkpoint(path, hashes=True)
    cfg_dict, meta = read_meta(path)
    if meta.get("kind") != kind:
        raise CheckpointError(f"{path}: expected a {kind} checkpoint (meta.json kind {kind!r}), "
                              f"got kind {meta.get('kind')!r}")
    try:
        cfg = ModelConfig.from_dict(cfg_dict, source=str(path / CONFIG))
        model = registry.build_model(cfg, registry.task_of_kind(kind))
    except (TypeError, ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{path / CONFIG}: not a buildable model config ({e})") from None
    load_weights(path, model)
    return model, cfg, meta


def safe_torch_load(f: str | Path, allow: tuple = ()):
    """The package's only ``torch.load``: ``weights_only=True`` (no arbitrary code), plus the globals in ``allow``.
    A file that needs anything else is a :class:`CheckpointError`, and nothing in it runs."""
    try:
        with torch.serialization.safe_globals(list(allow)):
            return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{f}: refused to load ({first[:200]}); only plain tensors and containers are "
                              f"accepted, never pickled code") from None


def _legacy_numpy_globals() -> tuple:
    """What a pre-JSON trainer_state.pt needs for its NumPy RNG state (an ndarray of uint32)."""
    import numpy.dtypes

    reconstruct = getattr(np, "_core", np.core).multiarray._reconstruct
    return (reconstruct, np.ndarray, np.dtype, numpy.dtypes.UInt32DType)


def load_trainer_state(path: str | Path) -> dict:
    """The trainer state of a checkpoint (CheckpointError naming the file when it is missing or malformed)."""
    path = open_checkpoint(path, hashes=True)
    if not (path / TRAINER).is_file() and (path / LEGACY_TRAINER).is_file():
        return safe_torch_load(path / LEGACY_TRAINER, allow=_legacy_numpy_globals())
    doc = _json_object(path, TRAINER, "trainer state")
    if doc.get("format") != TRAINER_FORMAT or doc.get("version") != 1:
        raise CheckpointError(f"{path / TRAINER}: not a bmf trainer state (expected format {TRAINER_FORMAT!r} "
                              f"version 1)")
    f = _require(path, TRAINER_TENSORS)
    try:
        tensors = load_file(str(f))
    except Exception as e:
        raise CheckpointError(f"{f}: not a readable safetensors file ({type(e).__name__})") from None
    try:
        return join_trainer_state(doc, tensors)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path / TRAINER}: malformed trainer state ({type(e).__name__}: {e})") from None


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
