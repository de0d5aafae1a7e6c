"""Model FLOPs of a training step, the dense peak of known GPUs, and the throughput / MFU of a log window.

- :func:`training_flops_per_token`: forward + backward FLOPs per input position of the pretraining model of a
  :class:`~bigmodel_fast.models.ModelConfig` (formula in its docstring; checked against
  ``torch.utils.flop_counter.FlopCounterMode`` in ``tests/train/test_flops.py``).
- :func:`peak_tflops`: the dense tensor-core peak TFLOP/s of the device at the run's precision, from a small table
  of vendor datasheet figures (or an override), with a line saying where the number came from.
- :func:`throughput`: tokens/s, achieved TFLOP/s and MFU (model FLOPs utilisation) of a window of training.

MFU = model FLOPs per second / peak: "model" FLOPs are the formula's, whatever the run really executes
(activation recomputation, padding that the unpadded path skips, the full S x S causal scores of a kernel that does
not skip the masked half).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..models.config import ModelConfig

__all__ = ["GPU_PEAKS", "GpuPeak", "forward_flops_per_token", "peak_for_name", "peak_tflops", "throughput",
           "training_flops_per_token"]


def _transformer_layer_params(cfg: ModelConfig) -> int:
    """Weights of the matmuls one token passes through in one block: fused QKV, output, the two MLP layers."""
    e, h = cfg.hidden_size, cfg.num_heads
    d = e // h
    kv = h if cfg.num_kv_heads is None else cfg.num_kv_heads
    return e * (h + 2 * kv) * d + e * e + 2 * e * cfg.intermediate_size


def _lstm_layer_params(cfg: ModelConfig) -> int:
    """Weights of the input and recurrent gate matmuls (4 gates each) of all layers and directions."""
    hid, dirs = cfg.hidden_size, 2 if cfg.bidirectional else 1
    total = 0
    for layer in range(cfg.num_layers):
        layer_in = cfg.hidden_size if layer == 0 else dirs * hid  # the embeddings are hidden_size wide
        total += dirs * (4 * hid * layer_in + 4 * hid * hid)
    return total


def forward_flops_per_token(model_cfg: ModelConfig, seq_len: int, mlm_fraction: float | None = None,
                            nsp: bool = True) -> float:
    """Forward FLOPs per input position of the arch's pretraining model; see :func:`training_flops_per_token`."""
    cfg = model_cfg
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len <= 0:
        raise ValueError(f"seq_len: expected an int > 0, got {seq_len!r}")
    e, v = cfg.hidden_size, cfg.vocab_size
    if cfg.arch == "lstm":
        if mlm_fraction is not None:
            raise ValueError(f"mlm_fraction: only arch 'bert' has an MLM head, got {mlm_fraction!r} for arch 'lstm'")
        return 2.0 * (_lstm_layer_params(cfg) + e * v)  # the LM head is unidirectional (hidden_size wide)
    blocks = 2.0 * cfg.num_layers * _transformer_layer_params(cfg)
    causal = cfg.arch == "gpt"
    attention = cfg.num_layers * 2.0 * 2.0 * seq_len * e * (0.5 if causal else 1.0)  # q.k^T and p.v, all heads
    if cfg.arch == "gpt":
        if mlm_fraction is not None:
            raise ValueError(f"mlm_fraction: only arch 'bert' has an MLM head, got {mlm_fraction!r} for arch 'gpt'")
        return blocks + attention + 2.0 * e * v
    if cfg.arch != "bert":
        raise ValueError(f"arch: expected bert, gpt or lstm (the architectures with a FLOPs formula), got {cfg.arch!r}")
    if mlm_fraction is None or not 0.0 <= mlm_fraction <= 1.0:
        raise ValueError(f"mlm_fraction: expected the share of positions with an MLM label in [0, 1] for arch 'bert' "
                         f"(the run's mlm_probability), got {mlm_fraction!r}")
    mlm_head = mlm_fraction * 2.0 * (e * e + e * v)  # transform dense + vocab projection, masked positions only
    per_sequence = 2.0 * (e * e + 2 * e) / seq_len  # pooler + NSP classifier, once per row
    return blocks + attention + mlm_head + (per_sequence if nsp else 0.0)


def training_flops_per_token(model_cfg: ModelConfig, seq_len: int, mlm_fraction: float | None = None,
                             nsp: bool = True) -> float:
    """Forward + backward FLOPs per input position (one of the ``batch_size * seq_len`` positions of a step) of the
    pretraining model of ``model_cfg.arch``: 3 x the forward (the backward of a matmul is two matmuls of its size).

    Forward, with E = hidden_size, I = intermediate_size, V = vocab_size, L = num_layers, H / H_kv query / key-value
    heads of D = E / H, S = ``seq_len``; a matmul with a (n_in, n_out) weight costs 2 n_in n_out per token (biases,
    norms, activations, softmax and the embedding lookups are not counted):

    - gpt: ``2 L (E (H + 2 H_kv) D + E^2 + 2 E I) + L * 2 * 2 S E / 2 + 2 E V``: the blocks (fused QKV, output
      projection, MLP), attention scores ``q k^T`` and values ``p v`` over S keys, halved because a causal token
      sees half the keys on average (the exact mean is (S + 1) / 2 keys), and the LM head (counted although it is
      tied to the word embeddings: the matmul runs either way).
    - bert: the same blocks and attention, not halved (bidirectional), plus the MLM head ``2 (E^2 + E V)``
      (transform dense + vocab projection) scaled by ``mlm_fraction``, since it runs only at masked positions (pass
      the run's ``mlm_probability``), plus per row the pooler and the NSP classifier ``2 (E^2 + 2 E) / S`` (when
      ``nsp``; the pooler runs without NSP too, but then gets no backward: leave it out).
    - lstm: per layer and direction the 4 gates' input and recurrent matmuls ``2 (4 E n_in + 4 E E)`` (n_in = E,
      or D * E above a bidirectional layer) plus the LM head ``2 E V``.

    Packed GPT batches attend within each document only, so their real attention cost is at most the formula's;
    a padded BERT row counts in full (its positions are part of ``batch_size * seq_len``).

    Raises:
        ValueError: ``seq_len`` is not a positive int, ``mlm_fraction`` is missing / outside [0, 1] for bert or
            given for another arch, or the arch has no formula.
    """
    return 3.0 * forward_flops_per_token(model_cfg, seq_len, mlm_fraction, nsp)


# ------------------------------------------------------------------------------------------------ peak TFLOP/s
@dataclass(frozen=True)
class GpuPeak:
    """Dense (no sparsity) tensor-core peaks of one GPU, TFLOP/s: ``bf16`` (= fp16) and ``fp32`` without TF32.

    TF32 is half the bf16 figure on every GPU of the table (Ampere, Ada, Hopper)."""

    pattern: str  # regex searched in torch.cuda.get_device_name(), case-insensitive
    label: str
    bf16: float
    fp32: float


# Source: NVIDIA's product datasheets (dense figures: half of the "with sparsity" numbers they print for tensor
# cores). Matched in order, so the more specific names come first.
GPU_PEAKS: tuple[GpuPeak, ...] = (
    GpuPeak(r"\bGH200\b", "GH200", 989.0, 67.0),
    GpuPeak(r"\bH200\b.*\bNVL\b", "H200 NVL", 835.0, 60.0),
    GpuPeak(r"\bH200\b", "H200 SXM", 989.0, 67.0),
    GpuPeak(r"\bH100\b.*\bPCIe\b", "H100 PCIe", 756.0, 51.0),
    GpuPeak(r"\bH100\b.*\bNVL\b", "H100 NVL", 835.0, 60.0),
    GpuPeak(r"\bH100\b", "H100 SXM (HBM3)", 989.0, 67.0),
    GpuPeak(r"\bA100\b", "A100", 312.0, 19.5),
    GpuPeak(r"\bL40S\b", "L40S", 362.0, 91.6),
    GpuPeak(r"\bL40\b", "L40", 181.0, 90.5),
    GpuPeak(r"\bL4\b", "L4", 121.0, 30.3),
    GpuPeak(r"\bA10\b", "A10", 125.0, 31.2),
)


def peak_for_name(name: str, precision: str) -> tuple[float | None, str]:
    """``(peak TFLOP/s or None, where it came from)`` for a CUDA device name at ``precision`` ``"bf16"``, ``"fp16"``,
    ``"tf32"`` or ``"fp32"``."""
    if precision not in ("bf16", "fp16", "tf32", "fp32"):
        raise ValueError(f"precision: expected bf16, fp16, tf32 or fp32, got {precision!r}")
    for gpu in GPU_PEAKS:
        if re.search(gpu.pattern, name, flags=re.IGNORECASE):
            value = {"bf16": gpu.bf16, "fp16": gpu.bf16, "tf32": gpu.bf16 / 2, "fp32": gpu.fp32}[precision]
            return value, f"{gpu.label} dense {precision} datasheet peak ({name})"
    return None, f"no peak known for {name!r}; pass --peak-tflops"


def peak_tflops(device: torch.device | str, amp: str, override: float | None = None) -> tuple[float | None, str]:
    """Dense peak TFLOP/s of ``device`` for a run with autocast mode ``amp`` (``auto`` | ``bf16`` | ``fp16`` |
    ``off``, see :func:`bigmodel_fast.runtime.autocast_for`), and a line saying where it came from.

    ``override`` (``--peak-tflops``) wins. CUDA: :data:`GPU_PEAKS` by device name; ``auto`` / ``bf16`` -> bf16,
    ``fp16`` -> fp16, ``off`` -> TF32 when PyTorch lets fp32 matmuls use it (``torch.backends.cuda.matmul
    .allow_tf32`` or a float32 matmul precision below ``"highest"``), else plain fp32. CPU and unknown GPUs:
    ``(None, "... pass --peak-tflops")``.
    """
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, (int, float)) or not override > 0:
            raise ValueError(f"peak_tflops: expected a number > 0 (TFLOP/s), got {override!r}")
        return float(override), "--peak-tflops"
    device = torch.device(device)
    if device.type != "cuda":
        return None, f"no peak known for {device.type.upper()}; pass --peak-tflops"
    if amp not in ("auto", "bf16", "fp16", "off"):
        raise ValueError(f"amp: expected auto, bf16, fp16 or off, got {amp!r}")
    if amp == "off":
        tf32 = torch.backends.cuda.matmul.allow_tf32 or torch.get_float32_matmul_precision() != "highest"
        precision = "tf32" if tf32 else "fp32"
    else:
        precision = "fp16" if amp == "fp16" else "bf16"
    return peak_for_name(torch.cuda.get_device_name(device), precision)


def throughput(tokens: float, seconds: float, flops_per_token: float, peak: float | None = None) -> dict:
    """One window's ``{"tokens_per_s", "tflops" (achieved model TFLOP/s), "mfu" (tflops / peak, None without a
    peak)}``; all None when ``seconds`` is not positive."""
    if not seconds > 0:
        return {"tokens_per_s": None, "tflops": None, "mfu": None}
    tps = tokens / seconds
    tflops = tps * flops_per_token / 1e12
    return {"tokens_per_s": _sig(tps), "tflops": _sig(tflops), "mfu": _sig(tflops / peak) if peak else None}


def _sig(x: float) -> float:
    """``x`` to 6 significant digits (a tiny CPU model's TFLOP/s must not round to 0)."""
    return float(f"{x:.6g}")
