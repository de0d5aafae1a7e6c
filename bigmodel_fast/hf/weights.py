"""Reading Hugging Face weight files: ``model.safetensors``, sharded safetensors with
``model.safetensors.index.json``, ``pytorch_model.bin`` (and its sharded index). Never unpickles:
``.bin`` files go through :func:`bigmodel_fast.checkpoint.safe_torch_load` (``torch.load`` with ``weights_only=True``).

Every problem is a one-line ``ValueError`` / ``FileNotFoundError`` naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open

__all__ = ["WEIGHT_FILES", "find_weight_files", "read_shapes", "load_tensors"]

SAFETENSORS, SAFE_INDEX = "model.safetensors", "model.safetensors.index.json"
BIN, BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
WEIGHT_FILES = (SAFETENSORS, SAFE_INDEX, BIN, BIN_INDEX)


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _index_shards(index: Path) -> list[Path]:
    """The shard files an ``*.index.json`` names (each must exist beside it)."""
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
        weight_map = doc["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{index}: not a readable weight index (expected JSON with a 'weight_map' object; "
                         f"{type(e).__name__}: {_first_line(e)})") from None
    shards = []
    for name in names:
        if not isinstance(name, str) or "/" in name or name.startswith("."):
            raise ValueError(f"{index}: weight_map names an invalid shard file {name!r}")
        f = index.parent / name
        if not f.is_file():
            raise FileNotFoundError(f"{index}: shard file {f} is missing")
        shards.append(f)
    return shards


def find_weight_files(src: Path) -> list[Path]:
    """The weight files of the HF directory ``src``: safetensors first, then ``pytorch_model.bin``."""
    if (src / SAFETENSORS).is_file():
        return [src / SAFETENSORS]
    if (src / SAFE_INDEX).is_file():
        return _index_shards(src / SAFE_INDEX)
    if (src / BIN).is_file():
        return [src / BIN]
    if (src / BIN_INDEX).is_file():
        return _index_shards(src / BIN_INDEX)
    raise FileNotFoundError(f"{src}: no weights file; expected one of {', '.join(WEIGHT_FILES)}")


def _safetensors_shapes(f: Path) -> dict[str, tuple[int, ...]]:
    try:
        with safe_open(str(f), framework="pt") as st:
            return {k: tuple(st.get_slice(k).get_shape()) for k in st.keys()}
    except Exception as e:  # SafetensorError on a truncated/damaged header or buffer
        raise ValueError(f"{f}: not a readable safetensors file ({type(e).__name__}: {_first_line(e)})") from None


def _load_bin(f: Path) -> dict[str, torch.Tensor]:
    from bigmodel_fast.checkpoint import safe_torch_load

    obj = safe_torch_load(f)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                            for k, v in obj.items()):
        raise ValueError(f"{f}: expected a state dict (str -> tensor), got {type(obj).__name__}")
    return obj


def read_shapes(files: list[Path], bins: dict | None = None) -> dict[str, tuple[tuple[int, ...], Path]]:
    """name -> (shape, file) over all weight files; safetensors headers only (no tensor data is read). A ``.bin``
    file has to be loaded whole: pass a dict as ``bins`` to keep it there for :func:`load_tensors` (read once)."""
    out: dict[str, tuple[tuple[int, ...], Path]] = {}
    for f in files:
        if f.suffix == ".safetensors":
            shapes = _safetensors_shapes(f)
        else:
            state = _load_bin(f)
            if bins is not None:
                bins[f] = state
            shapes = {k: tuple(v.shape) for k, v in state.items()}
        for k, shape in shapes.items():
            if k in out:
                raise ValueError(f"{f}: tensor {k!r} is also in {out[k][1]}")
            out[k] = (shape, f)
    return out


def load_tensors(files: list[Path], names: set[str] | None = None, bins: dict | None = None
                 ) -> dict[str, torch.Tensor]:
    """The tensors of ``files`` (only ``names`` when given), floating point ones as float32, on CPU; ``.bin``
    files already loaded by :func:`read_shapes` into ``bins`` are taken (and dropped) from there."""
    out: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":
            try:
                with safe_open(str(f), framework="pt") as st:
                    part = {k: st.get_tensor(k) for k in st.keys() if names is None or k in names}
            except Exception as e:
                raise ValueError(f"{f}: not a readable safetensors file ({type(e).__name__}: "
                                 f"{_first_line(e)})") from None
        else:
            state = bins.pop(f) if bins is not None and f in bins else _load_bin(f)
            part = {k: v for k, v in state.items() if names is None or k in names}
        for k, v in part.items():
            out[k] = v.float().contiguous() if v.is_floating_point() else v
    return out
