"""TorchScript export of sequence classifiers, with a reload-and-compare parity check.

TorchScript (``torch.jit.script/save/load``) is deprecated as of torch 2.13 and emits a DeprecationWarning on each
call; it remains the format LibTorch C++ loads with ``torch::jit::load``. :func:`export_torchscript` silences those
three specific warnings and logs one INFO line instead. A ``torch.export`` path is planned (issue 7).
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from bigmodel_fast.models.config import ModelConfig

__all__ = ["ExportError", "export_torchscript", "load_torchscript", "parity_batches"]

log = logging.getLogger(__name__)
CONFIG_ENTRY = "config.json"  # extra file stored inside the archive (read it from C++ via extra_files)
_DEPRECATION_RE = r"`torch\.jit\.(script|save|load)` is deprecated"


class ExportError(RuntimeError):
    """Export failed, or the reloaded module disagrees with eager PyTorch."""


@contextmanager
def _quiet_jit_deprecation() -> Iterator[None]:
    """Silence only torch's TorchScript deprecation warnings inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATION_RE, category=DeprecationWarning)
        yield


def parity_batches(cfg: ModelConfig, example_len: int, device: torch.device) -> list[tuple[Tensor, Tensor]]:
    """Two right-padded batches of different lengths for the parity check.

    Returns ``[(input_ids (2, L1), mask (2, L1)), (input_ids (3, L2), mask (3, L2))]`` with
    ``L1 = min(example_len, max_position)`` and ``L2 = L1 // 2 + 1``; each batch has one padded row.
    Deterministic (seeded generator).
    """
    g = torch.Generator().manual_seed(0)
    l1 = max(2, min(example_len, cfg.max_position))
    l2 = l1 // 2 + 1
    batches = []
    for rows, length, short in ((2, l1, l1 // 2 + 1), (3, l2, max(1, l2 - 2))):
        ids = torch.randint(0, cfg.vocab_size, (rows, length), generator=g)  # (R, L)
        mask = torch.ones(rows, length, dtype=torch.bool)  # (R, L)
        mask[-1, short:] = False
        ids[~mask] = cfg.pad_id
        batches.append((ids.to(device), mask.to(device)))
    return batches


def load_torchscript(path: str | Path,
                     map_location: str | torch.device | None = None) -> tuple[torch.jit.ScriptModule, ModelConfig]:
    """Load an archive written by :func:`export_torchscript`; returns ``(module, config)``."""
    extra = {CONFIG_ENTRY: ""}
    with _quiet_jit_deprecation():
        module = torch.jit.load(str(path), map_location=map_location, _extra_files=extra)
    return module, ModelConfig.from_dict(json.loads(extra[CONFIG_ENTRY]), source=f"{path}:{CONFIG_ENTRY}")


def export_torchscript(model: nn.Module, path: str | Path, *, example_len: int = 16, atol: float = 1e-5) -> Path:
    """Script a :class:`~bigmodel_fast.models.SequenceClassifier`, save it, reload it and check parity.

    The model is put in eval mode (its previous mode is restored afterwards) and compiled with
    ``torch.jit.script`` (not trace, so any sequence length up to ``max_position`` and any batch size work).
    Inside TorchScript, attention runs the reference math path. The archive embeds the model config as the extra
    file ``config.json``. The reloaded module must match eager PyTorch within ``atol`` on two padded batches of
    different lengths (see :func:`parity_batches`).

    Scripted signature: ``forward(input_ids (B, S) long, attention_mask (B, S) bool | None = None,
    token_type_ids (B, S) long | None = None) -> logits (B, num_labels)``.

    Args:
        model: a SequenceClassifier (anything scriptable with a ``cfg: ModelConfig`` and that forward).
        path: output file (parents created), conventionally ``*.pt``.
        example_len: length of the longer parity batch (clipped to ``max_position``).
        atol: maximum allowed absolute logit difference.

    Returns:
        The path written.

    Raises:
        ExportError: scripting failed or the parity check failed (message gives the max abs diff).
    """
    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"export_torchscript expects a SequenceClassifier with a ModelConfig `cfg`; "
                        f"got {type(model).__name__}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        with _quiet_jit_deprecation():
            try:
                scripted = torch.jit.script(model)
            except Exception as e:  # torch raises a variety of frontend errors
                raise ExportError(f"torch.jit.script failed for {type(model).__name__}: {e}") from e
            torch.jit.save(scripted, str(out), _extra_files={CONFIG_ENTRY: json.dumps(cfg.to_dict())})
        log.info("TorchScript is deprecated in torch>=2.13 but still the LibTorch format; wrote %s", out)
        device = next(model.parameters()).device
        loaded, _ = load_torchscript(out, map_location=device)
        worst = 0.0
        with torch.no_grad():
            for ids, mask in parity_batches(cfg, example_len, device):
                ref = model(ids, mask)  # (B, num_labels)
                got = loaded(ids, mask)  # (B, num_labels)
                if got.shape != ref.shape:
                    raise ExportError(f"reloaded TorchScript module returned shape {tuple(got.shape)}, "
                                      f"eager returned {tuple(ref.shape)}")
                worst = max(worst, (got.float() - ref.float()).abs().max().item())
        if not worst <= atol:  # also catches NaN
            raise ExportError(f"TorchScript parity check failed for {out}: max abs diff {worst:.3g} > atol {atol:.1g}")
    finally:
        model.train(was_training)
    return out
