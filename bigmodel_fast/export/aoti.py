"""``torch.export`` + AOTInductor export: a ``.pt2`` package that C++ loads with ``AOTIModelPackageLoader``.

The model is traced by :func:`torch.export.export` (non-strict) with a dynamic batch dimension (1 .. any) and a
dynamic sequence dimension (1 .. ``max_position``), always through the reference ops, compiled ahead of time by
:func:`torch._inductor.aoti_compile_and_package` into one ``.pt2`` file (the generated C++ compiled into a shared
library for this CPU architecture, plus the weights), then reloaded with :func:`torch._inductor.aoti_load_package`
and compared with eager PyTorch, like the TorchScript path.

Compiling needs a C++ compiler at export time (not at run time). On a 2-core CPU a tiny model compiles in about
10-30 s (the first compile of a process also warms Inductor's caches); the package is tied to the CPU
architecture and the torch version it was compiled with.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from torch import nn

from bigmodel_fast.models.config import ModelConfig
from bigmodel_fast.stages import stage

from .targets import reference_ops
from .torchscript import ExportError, parity_batches

__all__ = ["export_aoti", "load_aoti"]

log = logging.getLogger(__name__)


def load_aoti(path: str | Path):
    """A callable ``f(input_ids, attention_mask) -> logits`` running the ``.pt2`` package at ``path`` (CPU)."""
    import torch._inductor

    return torch._inductor.aoti_load_package(str(path))


def export_aoti(model: nn.Module, path: str | Path, *, example_len: int = 16, atol: float = 1e-5,
                progress: bool | None = None) -> Path:
    """Export ``model`` (bundle signature ``forward(input_ids, attention_mask) -> logits``) to an AOTInductor
    package at ``path`` (conventionally ``model.pt2``) and check parity with eager PyTorch.

    Args:
        model: a module with a ``cfg: ModelConfig`` (SequenceClassifier, LMForExport, ...); put in eval mode
            (its previous mode is restored afterwards).
        path: output ``.pt2`` file (parents created).
        example_len: sequence length of the example inputs used for tracing and of the first parity batch.
        atol: maximum allowed absolute difference of the reloaded package's logits.
        progress: stage lines with elapsed seconds on stderr (``[aoti] compiling ...``); None: as
            :func:`bigmodel_fast.stages.stage_lines` set it (on by default, off under ``--no-progress``).

    Returns:
        The path written.

    Raises:
        ExportError: tracing, compiling or the parity check failed.
    """
    import torch._inductor
    from torch.export import Dim

    cfg = getattr(model, "cfg", None)
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"export_aoti expects a module with a ModelConfig `cfg`; got {type(model).__name__}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.unlink()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        ids, mask = parity_batches(cfg, example_len, device)[0]  # (2, L): one padded row
        batch = Dim("batch", min=1)
        seq = Dim("seq", min=1, max=cfg.max_position)
        t0 = time.perf_counter()
        with reference_ops(), torch.no_grad(), warnings.catch_warnings():
            # torch-internal noise: pytree's LeafSpec, and Inductor importing torch.utils.mkldnn (jit.script_method)
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.script_method` is deprecated",
                                    category=DeprecationWarning)
            try:
                with stage("aoti", f"torch.export of {type(model).__name__}", enabled=progress):
                    program = torch.export.export(model, (ids, mask), dynamic_shapes=({0: batch, 1: seq},
                                                                                      {0: batch, 1: seq}), strict=False)
            except Exception as e:
                hint = ""
                if "Constraints violated" in str(e):
                    hint = ("\nhint: the model specialises a dynamic dimension (e.g. a Python loop over time steps "
                            "fixes the sequence length); export it with --format torchscript, or give its arch an "
                            "export-friendly forward in bigmodel_fast/export/targets.py")
                raise ExportError(f"torch.export.export failed for {type(model).__name__}: {e}{hint}") from e
            t1 = time.perf_counter()
            try:
                with stage("aoti", "compiling with AOTInductor (C++; ~1 min on 2 busy cores)", enabled=progress):
                    torch._inductor.aoti_compile_and_package(program, package_path=str(out))
            except Exception as e:
                raise ExportError(f"AOTInductor compile failed for {type(model).__name__}: {e}") from e
        log.info("torch.export %.1fs, AOTInductor compile %.1fs; wrote %s", t1 - t0, time.perf_counter() - t1, out)
        loaded = load_aoti(out)
        worst = 0.0
        with torch.no_grad(), stage("aoti", "parity check of the reloaded package", enabled=progress):
            checks = parity_batches(cfg, example_len, device) + [(ids[:1, :1], mask[:1, :1])]  # also (1, 1)
            for b_ids, b_mask in checks:
                ref = model(b_ids, b_mask)
                got = loaded(b_ids, b_mask)
                if got.shape != ref.shape:
                    raise ExportError(f"reloaded AOTInductor package returned shape {tuple(got.shape)}, eager "
                                      f"returned {tuple(ref.shape)}")
                worst = max(worst, (got.float() - ref.float()).abs().max().item())
        if not worst <= atol:
            raise ExportError(f"AOTInductor parity check failed for {out}: max abs diff {worst:.3g} > atol {atol:.1g}")
    finally:
        model.train(was_training)
    return out
