"""Scaled dot-product attention: the single dispatch point of the code base.

Every attention computation in bigmodel_fast goes through :func:`attention` (dense, padded batches) or
:func:`varlen_attention` (packed batches described by ``cu_seqlens``). The backend is chosen at the start of each
call: :func:`attention_backend` (:func:`bigmodel_fast.ops.backend.resolve_backend`, shared with the LSTM) takes the
``backend=`` argument, else the innermost :func:`~bigmodel_fast.ops.backend.use_backends` block, else the
environment variable ``BMF_ATTENTION``, else the device default (unset or ``auto``). :func:`attention_choice` /
:func:`varlen_attention_choice` say what a call would run and why, in one line.

* ``auto`` (the default): off CUDA (or without Triton installed) ``sdpa``. On CUDA the choice is per call: a dense
  call runs the backend measured faster for it on this GPU (:mod:`bigmodel_fast.ops.attention_dispatch`, a
  committed table generated from ``benchmarks/results/attention_<gpu>.csv``): ``triton`` only where the table says
  our kernel won that key (dtype, head-dim bucket, causal, sequence bucket, ``fwd+bwd`` for calls that need grad,
  ``fwd`` for the others), ``sdpa`` for a GPU or key not measured, for ``S_q != S_k`` (not measured), and for calls
  the kernel cannot run (:func:`triton_fallback_reason`). On the committed H100 measurement SDPA (cuDNN) wins every
  key. A packed call runs the Triton varlen kernel (SDPA cannot run one without padding).
* ``triton`` (forced by name at any level): the fused FlashAttention-2 style kernels in
  :mod:`bigmodel_fast.ops.attention_triton`, registered as the custom ops ``bmf::flash_attn_fwd`` /
  ``bmf::flash_attn_bwd`` by :mod:`bigmodel_fast.ops.attention_op` (so ``torch.compile`` traces through them; eager
  calls skip the custom-op dispatch through an ``autograd.Function`` over the same launchers), for every call they
  support. They take no mask other than a key-padding mask (shape (B or 1, 1, 1, S_k), handled in-kernel, any
  padding side) and no dropout; calls with a general ``attn_mask``, ``dropout_p > 0``, head dim > 128 or a dtype
  other than fp16/bf16/fp32 fall back to ``sdpa`` (see :func:`triton_fallback_reason`). On CPU, ``triton`` runs the
  kernels through the Triton interpreter and needs ``TRITON_INTERPRET=1`` set before Triton is first imported;
  without it the call raises :class:`TritonUnavailableError` when the backend is resolved.
* ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention``; PyTorch picks the kernel.
* ``reference``: explicit ``softmax(Q K^T * scale) V`` computed in fp32 and cast back; slow, exact, the oracle
  for tests and the path used inside TorchScript.

Conventions shared by all backends:

* ``q`` is (B, H, S_q, D); ``k``/``v`` are (B, H_kv, S_k, D) with ``H % H_kv == 0`` (grouped-query attention,
  each group of ``H // H_kv`` query heads shares one k/v head, ``repeat_interleave`` order).
* ``attn_mask`` is boolean, True = attend, broadcastable to (B, H, S_q, S_k); a key-padding mask is (B, 1, 1, S_k).
* ``causal=True`` lets query ``i`` see key ``j`` iff ``j <= i + (S_k - S_q)`` (bottom-right aligned, as in
  FlashAttention, so a suffix of queries against a longer key cache behaves like decoding). For ``S_q == S_k`` it is
  the usual lower-triangular mask. ``causal`` and ``attn_mask`` combine with a logical AND.
* A query row with no key to attend to produces 0, not NaN, in the reference and triton backends (gradients 0 too).
  SDPA on CPU in torch 2.13 also returns 0 for such rows (checked by the tests); fused CUDA SDPA kernels are not
  guaranteed to, so callers should not rely on fully masked rows with ``sdpa`` on GPU.

TorchScript: :func:`attention` is scriptable. Under ``torch.jit.is_scripting()`` it returns early into
:func:`attention_reference` (the export path); the dispatch code below that return is parsed but never compiled.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from bigmodel_fast.ops.attention_dispatch import dense_backend, dense_choice
from bigmodel_fast.ops.attention_op import _flash_attn
from bigmodel_fast.ops.backend import (
    OPS,
    AttentionBackendError,
    TritonUnavailableError,
    requested_backend,
    require_triton,
    resolve_backend,
)
from bigmodel_fast.ops.triton_env import HAS_TRITON

__all__ = [
    "ENV_VAR",
    "VALID_BACKENDS",
    "AttentionBackendError",
    "TritonUnavailableError",
    "attention",
    "attention_backend",
    "attention_choice",
    "attention_reference",
    "attention_sdpa",
    "triton_attention",
    "triton_fallback_reason",
    "varlen_attention",
    "varlen_attention_choice",
    "varlen_attention_reference",
    "triton_varlen_attention",
]

ENV_VAR = OPS["attention"].env_var  # "BMF_ATTENTION", read by bigmodel_fast.ops.backend only
VALID_BACKENDS = OPS["attention"].names  # ("auto", "sdpa", "reference", "triton")
_HAS_TRITON = HAS_TRITON  # checked without importing Triton
TRITON_MAX_HEAD_DIM = 128
_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def attention_backend(device: Optional[torch.device] = None, backend: Optional[str] = None,
                      keep_auto: bool = False) -> str:
    """Return the attention backend for tensors on ``device`` (None: CPU), before seeing a call.

    ``backend`` (if given) wins over :func:`~bigmodel_fast.ops.backend.use_backends` and the ``BMF_ATTENTION``
    environment variable; case and surrounding whitespace are ignored. Unset, empty or ``auto`` means ``"sdpa"``
    off CUDA or without Triton installed (so ``attention_backend()`` with no device reports the CPU default). On a
    CUDA device with Triton, ``auto`` is decided per call (see the module docstring; :func:`attention_choice` says
    what a given call runs): this returns ``"auto"`` with ``keep_auto=True`` (what :func:`attention` asks) and
    ``"triton"`` without, the kernels ``auto`` may run there (always, for packed calls). See
    :mod:`bigmodel_fast.ops.backend` for the full rules.

    Raises:
        AttentionBackendError: the name is outside :data:`VALID_BACKENDS`.
        TritonUnavailableError: ``triton`` chosen where it cannot run (see :func:`_require_triton`).
    """
    return resolve_backend("attention", device, backend, keep_auto)


def _require_triton(device: torch.device) -> None:
    """Raise :class:`TritonUnavailableError` unless the Triton kernels can run on ``device``."""
    require_triton("attention", device)


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    """Shape checks shared by the backends (shape-only, no device sync)."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            "attention: q, k, v must be 4-D (B, H, S, D); got q.dim()="
            + str(q.dim()) + ", k.dim()=" + str(k.dim()) + ", v.dim()=" + str(v.dim())
        )
    if k.shape != v.shape:
        raise ValueError("attention: k and v must have the same shape; got k=" + str(k.shape) + ", v=" + str(v.shape))
    if q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError(
            "attention: q (B, H, S_q, D) and k (B, H_kv, S_k, D) must agree on B and D; got q="
            + str(q.shape) + ", k=" + str(k.shape)
        )
    if q.shape[1] % k.shape[1] != 0:
        raise ValueError(
            "attention: number of query heads (" + str(q.shape[1]) + ") must be a multiple of the number of "
            "key/value heads (" + str(k.shape[1]) + ")"
        )


def _causal_mask(s_q: int, s_k: int, device: torch.device) -> Tensor:
    """Bottom-right aligned causal mask, (S_q, S_k) bool, True = attend."""
    return torch.ones(s_q, s_k, dtype=torch.bool, device=device).tril(s_k - s_q)


def _combined_mask(
    attn_mask: Optional[Tensor], causal: bool, s_q: int, s_k: int, device: torch.device
) -> Optional[Tensor]:
    """``attn_mask`` (checked to be bool) AND the causal mask when ``causal``; None when neither applies."""
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        raise ValueError("attention: attn_mask must be a bool tensor (True = attend); got " + str(attn_mask.dtype))
    if not causal:
        return attn_mask
    cm = _causal_mask(s_q, s_k, device)  # (S_q, S_k)
    return cm if attn_mask is None else attn_mask & cm


def attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    causal: bool = False,
    scale: Optional[float] = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Explicit-math attention, computed in fp32 and cast back to ``q.dtype``; arguments as in :func:`attention`.

    ``dropout_p`` is always applied when > 0 (pass 0 in eval). Fully masked query rows are 0.
    """
    _check_qkv(q, k, v)
    h = q.shape[1]
    h_kv = k.shape[1]
    if h_kv != h:
        k = k.repeat_interleave(h // h_kv, dim=1)  # (B, H, S_k, D)
        v = v.repeat_interleave(h // h_kv, dim=1)  # (B, H, S_k, D)
    s_q = q.shape[2]
    s_k = k.shape[2]
    sm_scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else scale
    scores = torch.matmul(q.float(), k.float().transpose(-2, -1)) * sm_scale  # (B, H, S_q, S_k)
    mask = _combined_mask(attn_mask, causal, s_q, s_k, q.device)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)  # (B, H, S_q, S_k), NaN on fully masked rows
    if mask is not None:
        # Rows without any visible key: softmax gave NaN, define the output as 0.
        probs = probs.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)
    if dropout_p > 0.0:
        probs = F.dropout(probs, p=dropout_p, training=True)
    out = torch.matmul(probs, v.float())  # (B, H, S_q, D)
    return out.to(q.dtype)


def attention_sdpa(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    causal: bool = False,
    scale: Optional[float] = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Attention through ``torch.nn.functional.scaled_dot_product_attention``; same contract as the reference.

    ``causal`` with ``S_q == S_k`` and no mask uses SDPA's ``is_causal`` fast path; otherwise an explicit
    bottom-right aligned causal mask is combined with ``attn_mask``. GQA uses SDPA's ``enable_gqa``.
    """
    _check_qkv(q, k, v)
    s_q = q.shape[2]
    s_k = k.shape[2]
    is_causal = causal and attn_mask is None and s_q == s_k
    mask = _combined_mask(attn_mask, causal and not is_causal, s_q, s_k, q.device)
    return F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=mask,
        dropout_p=dropout_p,
        is_causal=is_causal,
        scale=scale,
        enable_gqa=q.shape[1] != k.shape[1],
    )


# ------------------------------------------------------------------------------------------ Triton backend
def _key_mask(attn_mask: Tensor, b: int, s_k: int) -> Optional[Tensor]:
    """``attn_mask`` as a (B, S_k) uint8 key mask if it is a bool key-padding mask (B or 1, 1, 1, S_k), else None."""
    if attn_mask.dtype != torch.bool or attn_mask.dim() > 4 or attn_mask.dim() == 0:
        return None
    m = attn_mask.reshape([1] * (4 - attn_mask.dim()) + list(attn_mask.shape))
    if m.shape[1] != 1 or m.shape[2] != 1 or m.shape[3] != s_k or m.shape[0] not in (1, b):
        return None
    return m[:, 0, 0, :].expand(b, s_k).view(torch.uint8)


def triton_fallback_reason(
    q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0
) -> Optional[str]:
    """Why the Triton kernel cannot run this (dense or packed) call, or None when it can.

    :func:`attention` sends such calls to SDPA (:func:`varlen_attention` to the per-sequence reference) instead.
    """
    if dropout_p > 0.0:
        return "dropout_p > 0 (the kernel has no dropout)"
    if attn_mask is not None and _key_mask(attn_mask, q.shape[0], k.shape[-3 if k.dim() == 3 else 2]) is None:
        return "attn_mask is not a bool key-padding mask of shape (B or 1, 1, 1, S_k)"
    if q.dtype not in _TRITON_DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        return "dtype " + str(q.dtype) + "/" + str(k.dtype) + "/" + str(v.dtype) + " (needs one of fp16, bf16, fp32)"
    if q.shape[-1] > TRITON_MAX_HEAD_DIM:
        return "head dim " + str(q.shape[-1]) + " > " + str(TRITON_MAX_HEAD_DIM)
    if q.device != k.device or q.device != v.device:
        return "q, k, v on different devices"
    return None


def triton_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    causal: bool = False,
    scale: Optional[float] = None,
) -> Tensor:
    """The fused Triton kernel (forward and backward), same contract as :func:`attention` without dropout.

    Raises:
        ValueError: the call is outside what the kernel supports (see :func:`triton_fallback_reason`).
        TritonUnavailableError: Triton cannot run on this device.
    """
    _check_qkv(q, k, v)
    why = triton_fallback_reason(q, k, v, attn_mask, 0.0)
    if why is not None:
        raise ValueError("triton_attention: unsupported call: " + why)
    _require_triton(q.device)
    return _triton_dense(q, k, v, attn_mask, causal, scale)


def _triton_dense(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor], causal: bool,
                  scale: Optional[float]) -> Tensor:
    """:func:`triton_attention` after its checks (callers have made them, :func:`_require_triton` included)."""
    kmask = None if attn_mask is None else _key_mask(attn_mask, q.shape[0], k.shape[2])
    sm_scale = 1.0 / math.sqrt(q.shape[3]) if scale is None else float(scale)
    return _flash_attn(q, k, v, kmask, None, 0, causal, sm_scale)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    causal: bool = False,
    scale: Optional[float] = None,
    dropout_p: float = 0.0,
    backend: Optional[str] = None,
) -> Tensor:
    """Scaled dot-product attention through the backend chosen by :func:`attention_backend`.

    Args:
        q: (B, H, S_q, D) queries.
        k, v: (B, H_kv, S_k, D) keys/values; ``H % H_kv == 0`` (GQA/MQA when ``H_kv < H``).
        attn_mask: optional bool mask broadcastable to (B, H, S_q, S_k), True = attend
            (a key-padding mask is (B, 1, 1, S_k)).
        causal: bottom-right aligned causal masking, combined with ``attn_mask`` by AND.
        scale: softmax scale, default ``1 / sqrt(D)``.
        dropout_p: attention-probability dropout; callers pass 0.0 in eval mode.
        backend: ``"triton"``, ``"sdpa"``, ``"reference"`` or ``"auto"`` to override
            :func:`~bigmodel_fast.ops.backend.use_backends`, ``BMF_ATTENTION`` and the device default.

    Returns:
        (B, H, S_q, D) in ``q.dtype``.

    With the ``triton`` backend, calls the kernel does not support go to SDPA (:func:`triton_fallback_reason`);
    ``auto`` on CUDA runs the backend measured faster for the call (module docstring); :func:`attention_choice`
    says which and why. Under TorchScript this always runs :func:`attention_reference`.
    """
    if torch.jit.is_scripting():
        return attention_reference(q, k, v, attn_mask, causal, scale, dropout_p)
    name = attention_backend(q.device, backend, keep_auto=True)
    if name == "sdpa":
        return attention_sdpa(q, k, v, attn_mask, causal, scale, dropout_p)
    if name == "reference":
        return attention_reference(q, k, v, attn_mask, causal, scale, dropout_p)
    _check_qkv(q, k, v)
    if name == "auto":  # CUDA, nothing forced: the measured choice for this call
        name = _auto_dense(q, k, v, attn_mask, causal, dropout_p, False)[0]
    elif triton_fallback_reason(q, k, v, attn_mask, dropout_p) is not None:
        name = "sdpa"
    if name == "sdpa":
        return attention_sdpa(q, k, v, attn_mask, causal, scale, dropout_p)
    return _triton_dense(q, k, v, attn_mask, causal, scale)


def _auto_dense(q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor], causal: bool, dropout_p: float,
                explain: bool) -> Tuple[str, Optional[str]]:
    """``auto`` on CUDA for a dense call (shapes checked): ("triton" | "sdpa", the reason when ``explain``)."""
    why = triton_fallback_reason(q, k, v, attn_mask, dropout_p)
    if why is not None:
        return "sdpa", ("auto: the Triton kernel cannot run this call (" + why + "): sdpa") if explain else None
    s_q, s_k = q.shape[2], k.shape[2]
    if s_q != s_k:
        reason = f"auto: no committed measurement for S_q={s_q} != S_k={s_k} (the table holds S_q == S_k): sdpa"
        return "sdpa", reason if explain else None
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    if not explain:
        return dense_backend(q.device, q.dtype, q.shape[3], causal, s_k, needs_grad), None
    name, reason = dense_choice(q.device, q.dtype, q.shape[3], causal, s_k, needs_grad)
    notes = (["measured without attn_mask"] if attn_mask is not None else []) + (
        ["measured with H == H_kv"] if q.shape[1] != k.shape[1] else [])
    return name, reason + (" [" + "; ".join(notes) + "]" if notes else "")


def _named_choice(name: str, requested: str, source: str, device: torch.device, what: str) -> str:
    """Reason of a ``sdpa`` / ``reference`` that was named (``what``: what that name runs), or the device default."""
    if requested != "auto":
        return f"{name}{what}: set by {source}"
    if device.type == "cuda":
        return f"auto on cuda without Triton installed: {name}{what}"
    return f"auto on {device.type}: {name}{what} (the device default)"


def attention_choice(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Optional[Tensor] = None,
    causal: bool = False,
    dropout_p: float = 0.0,
    backend: Optional[str] = None,
) -> Tuple[str, str]:
    """What :func:`attention` runs for this call and why: (``"triton"`` | ``"sdpa"`` | ``"reference"``, a one-line
    reason). Arguments as in :func:`attention`; nothing is computed (gradient mode and ``requires_grad`` are read,
    as the call would).

    Example (``auto`` on an H100, bf16, q (8, 16, 2048, 128) requiring grad): ``("sdpa", "NVIDIA H100 80GB HBM3
    bf16 d128 causal seq 2048 fwd+bwd: sdpa measured 1.61x faster than triton
    (benchmarks/results/attention_h100.csv, 2026-11-22)")``.

    Raises:
        BackendError: as :func:`attention` (unknown name, ``triton`` where it cannot run).
        ValueError: q/k/v shapes :func:`attention` rejects.
    """
    name = attention_backend(q.device, backend, keep_auto=True)
    _check_qkv(q, k, v)
    if name == "auto":
        return _auto_dense(q, k, v, attn_mask, causal, dropout_p, True)  # type: ignore[return-value]
    requested, source = requested_backend("attention", backend)
    if name != "triton":
        return name, _named_choice(name, requested, source, q.device, "")
    why = triton_fallback_reason(q, k, v, attn_mask, dropout_p)
    if why is not None:
        return "sdpa", f"triton set by {source}, but the kernel cannot run this call ({why}): sdpa"
    return "triton", f"triton: set by {source}"


def _check_varlen_shapes(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor) -> None:
    """Shape/dtype checks of packed inputs (no device sync)."""
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(
            f"varlen_attention: q, k, v must be packed 3-D (total_tokens, H, D); got shapes "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]:
        raise ValueError(
            f"varlen_attention: q (T, H, D) and k/v (T, H_kv, D) must agree on T and D; got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.dtype not in (torch.int32, torch.int64):
        raise ValueError(
            f"varlen_attention: cu_seqlens must be a 1-D int32/int64 tensor of N+1 cumulative offsets; got "
            f"shape {tuple(cu_seqlens.shape)}, dtype {cu_seqlens.dtype}"
        )


def _check_varlen(q: Tensor, k: Tensor, v: Tensor, cu_seqlens: Tensor) -> List[int]:
    """Validate packed inputs and return ``cu_seqlens`` as a host list (one device sync)."""
    _check_varlen_shapes(q, k, v, cu_seqlens)
    offs = [int(x) for x in cu_seqlens.tolist()]
    if offs[0] != 0 or offs[-1] != q.shape[0] or any(b < a for a, b in zip(offs, offs[1:])):
        raise ValueError(
            f"varlen_attention: cu_seqlens must start at 0, be non-decreasing and end at total_tokens="
            f"{q.shape[0]}; got {offs[:8]}{'...' if len(offs) > 8 else ''} (last={offs[-1]})"
        )
    return offs


def _check_max_seqlen(offs: List[int], max_seqlen: int) -> None:
    longest = max(b - a for a, b in zip(offs, offs[1:]))
    if longest > max_seqlen:
        raise ValueError(f"varlen_attention: max_seqlen={max_seqlen} but cu_seqlens holds a sequence of {longest}")


def varlen_attention_reference(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_seqlens: Tensor,
    max_seqlen: int,
    causal: bool = False,
    scale: Optional[float] = None,
    dense_backend: str = "reference",
) -> Tensor:
    """Reference packed attention: runs dense attention on each sequence separately.

    Arguments and result as in :func:`varlen_attention`; ``dense_backend`` (``"reference"`` or ``"sdpa"``) picks
    the per-sequence dense call. Tokens never attend across sequence boundaries.
    """
    offs = _check_varlen(q, k, v, cu_seqlens)
    _check_max_seqlen(offs, max_seqlen)
    dense = attention_reference if dense_backend == "reference" else attention_sdpa
    out = torch.empty_like(q)  # (T, H, D)
    for a, b in zip(offs, offs[1:]):
        if b == a:
            continue
        qs = q[a:b].transpose(0, 1).unsqueeze(0)  # (1, H, L, D)
        ks = k[a:b].transpose(0, 1).unsqueeze(0)  # (1, H_kv, L, D)
        vs = v[a:b].transpose(0, 1).unsqueeze(0)  # (1, H_kv, L, D)
        out[a:b] = dense(qs, ks, vs, None, causal, scale, 0.0)[0].transpose(0, 1)  # (L, H, D)
    return out


def triton_varlen_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_seqlens: Tensor,
    max_seqlen: int,
    causal: bool = False,
    scale: Optional[float] = None,
) -> Tensor:
    """The fused Triton kernel over a packed batch; arguments as in :func:`varlen_attention`.

    ``cu_seqlens`` values are validated only when it lives on the CPU (no device sync on CUDA): on CUDA a wrong
    ``max_seqlen`` (smaller than the longest sequence) silently leaves rows uncomputed.
    """
    _check_varlen_shapes(q, k, v, cu_seqlens)
    if cu_seqlens.device.type == "cpu":
        _check_max_seqlen(_check_varlen(q, k, v, cu_seqlens), max_seqlen)
    why = triton_fallback_reason(q, k, v)
    if why is not None:
        raise ValueError("triton_varlen_attention: unsupported call: " + why)
    _require_triton(q.device)
    cu = cu_seqlens.to(device=q.device, dtype=torch.int32).contiguous()
    sm_scale = 1.0 / math.sqrt(q.shape[2]) if scale is None else float(scale)
    return _flash_attn(q, k, v, None, cu, int(max_seqlen), causal, sm_scale)


def varlen_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    cu_seqlens: Tensor,
    max_seqlen: int,
    causal: bool = False,
    scale: Optional[float] = None,
    backend: Optional[str] = None,
) -> Tensor:
    """Attention over a packed batch (no padding), FlashAttention-varlen layout.

    Args:
        q: (T, H, D) packed queries of N sequences, T = total tokens; k, v: (T, H_kv, D).
        cu_seqlens: (N + 1,) int32/int64 cumulative sequence lengths, ``cu_seqlens[0] == 0``,
            ``cu_seqlens[-1] == T``.
        max_seqlen: longest sequence in the pack (checked against ``cu_seqlens`` except on the CUDA Triton path).
        causal: causal masking within each sequence.
        scale: softmax scale, default ``1 / sqrt(D)``.
        backend: overrides ``use_backends``, ``BMF_ATTENTION`` and the device default, as in :func:`attention`
            (``auto`` on CUDA: the Triton varlen kernel; :func:`varlen_attention_choice` says what runs and why).

    Returns:
        (T, H, D). The ``triton`` backend runs one fused kernel over the whole pack (no host sync on CUDA);
        ``sdpa``/``reference`` (and calls the kernel does not support) run the per-sequence reference (one host
        sync on ``cu_seqlens`` and a Python loop over sequences).
    """
    name = attention_backend(q.device, backend, keep_auto=True)
    if name in ("triton", "auto"):  # auto on CUDA: packed calls run our varlen kernel
        _check_varlen_shapes(q, k, v, cu_seqlens)
        if triton_fallback_reason(q, k, v) is None:
            return triton_varlen_attention(q, k, v, cu_seqlens, max_seqlen, causal, scale)
        name = "sdpa"
    return varlen_attention_reference(q, k, v, cu_seqlens, max_seqlen, causal, scale, dense_backend=name)


def varlen_attention_choice(q: Tensor, k: Tensor, v: Tensor, backend: Optional[str] = None) -> Tuple[str, str]:
    """What :func:`varlen_attention` runs for packed q (T, H, D), k/v (T, H_kv, D) and why: (``"triton"`` (one fused
    kernel over the pack) | ``"sdpa"`` | ``"reference"`` (the per-sequence loop over that dense backend), a
    one-line reason).

    Raises:
        BackendError: as :func:`varlen_attention`.
        ValueError: q/k/v shapes it rejects.
    """
    name = attention_backend(q.device, backend, keep_auto=True)
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(f"varlen_attention_choice: q, k, v must be packed 3-D (total_tokens, H, D); got shapes "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    requested, source = requested_backend("attention", backend)
    if name in ("triton", "auto"):
        who = "auto on cuda" if name == "auto" else f"triton set by {source}"
        why = triton_fallback_reason(q, k, v)
        if why is not None:
            return "sdpa", f"{who}, but the kernel cannot run this call ({why}): per-sequence sdpa loop"
        if name == "auto":
            return "triton", "auto on cuda: packed calls run the Triton varlen kernel (SDPA needs padding)"
        return "triton", f"triton: set by {source} (the varlen kernel)"
    return name, _named_choice(name, requested, source, q.device, " per-sequence loop")
