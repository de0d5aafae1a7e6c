"""The trainers' speed switches, applied in one place: TF32 for fp32 CUDA runs, activation checkpointing per
transformer block, ``torch.compile`` of the model, and the fp16 ``GradScaler``.

Which are on by default, and why (measured in ``benchmarks/train/``): ``compile`` ``auto`` compiles on CUDA only
(on a 2-core CPU the compilation of even the tiny preset takes longer than the short runs it would speed up);
TF32 is on for fp32 CUDA runs (the matmuls keep fp32 range with a 10-bit mantissa, as every framework default for
training); activation checkpointing is off (it trades about a third more compute for memory: a switch for models
that do not fit, not a speed-up); the GradScaler exists exactly when ``--amp fp16``.
"""

from __future__ import annotations

import torch
from torch import nn

COMPILE_MODES = ("auto", "on", "off")


def compile_enabled(mode: str, device: torch.device) -> bool:
    """Whether ``--compile mode`` compiles on ``device`` (``auto``: CUDA only)."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    return mode == "on" or mode == "auto" and device.type == "cuda"


def set_tf32(device: torch.device, enabled: bool) -> None:
    """TF32 matmuls and convolutions for fp32 work on CUDA (process-wide PyTorch flags; nothing on CPU)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def transformer_layers(model: nn.Module) -> list[tuple[nn.ModuleList, int]]:
    """``(ModuleList, index)`` of every transformer block of ``model`` (the ``layers`` of its transformer stacks,
    activation-checkpointed or not)."""
    from ..nn.transformer import Block

    found = []
    for module in model.modules():
        layers = getattr(module, "layers", None)
        if isinstance(layers, nn.ModuleList):
            found.extend((layers, i) for i, layer in enumerate(layers)
                         if isinstance(getattr(layer, "_checkpoint_wrapped_module", layer), Block))
    return found


def apply_activation_checkpointing(model: nn.Module) -> int:
    """Wrap every transformer block of ``model`` so that its activations are recomputed in the backward pass
    (non-reentrant ``torch.utils.checkpoint``, RNG state preserved: dropout masks are the same in the recompute).
    Parameter and state-dict names do not change (the wrapper strips its own prefix). Returns the number of blocks
    wrapped (0 for an LSTM: it has no blocks)."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointImpl, checkpoint_wrapper

    found = transformer_layers(model)
    for layers, i in found:
        layers[i] = checkpoint_wrapper(layers[i], checkpoint_impl=CheckpointImpl.NO_REENTRANT)
    return len(found)


def compile_model(model: nn.Module, per_block: bool = False) -> None:
    """``torch.compile`` in place (``Module.compile``: names, state dict and hooks unchanged): the whole model, or
    with ``per_block`` each transformer block (what FSDP2 wants: each sharded block its own graph) and the rest
    eager."""
    if per_block:
        for layers, i in transformer_layers(model):
            layers[i].compile()
    else:
        model.compile()


def grad_scaler(device: torch.device, dtype: torch.dtype | None, init_scale: float) -> torch.amp.GradScaler | None:
    """A ``torch.amp.GradScaler`` for fp16 autocast on ``device`` (None for any other precision)."""
    if dtype != torch.float16:
        return None
    return torch.amp.GradScaler(device.type, init_scale=init_scale)
