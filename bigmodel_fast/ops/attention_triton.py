"""Triton FlashAttention-2 style kernels (forward, backward) and their launchers.

Imported lazily by :mod:`bigmodel_fast.ops.attention_op` the first time the Triton backend runs, so that
``TRITON_INTERPRET=1`` can still be set after ``bigmodel_fast`` is imported (it must be set before this module is).

Layouts (D is the innermost, stride-1 dimension; any other strides are passed to the kernels):

* dense: q (B, H, S_q, D), k/v (B, H_kv, S_k, D);
* varlen: q (T, H, D), k/v (T, H_kv, D) with ``cu_seqlens`` (B + 1,) int32; S_q == S_k per sequence.

Masking is one rule for all kernels: query row ``i`` sees key ``j`` iff ``j < S_k`` and (not causal or
``j <= i + S_k - S_q``) and (no key mask or ``kmask[b, j] != 0``). A row that sees no key outputs 0; its
log-sum-exp is stored as +inf so that the backward recomputes p = 0 for it.

Numerics: scores and softmax statistics in fp32, softmax with ``exp2`` on scores pre-scaled by
``scale * log2(e)``; ``lse`` is stored in log2 units. P (and dS) are cast to the input dtype before their matmuls,
so fp16 stays fp16 and bf16 stays bf16 on the tensor cores; fp32 inputs use IEEE fp32 dots (no TF32).
Backward: ``delta = rowsum(dO * O)`` (preprocess kernel), then one kernel for dK/dV (one program per key block and
kv head, looping over the query heads of its GQA group, so no atomics) and one for dQ.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from bigmodel_fast.ops.attention_layout import empty_like_bshd, grad_like, lse_shape
from bigmodel_fast.ops.triton_env import interpreting

LOG2E = 1.4426950408889634
MAX_HEAD_DIM = 128
INTERPRET = interpreting()


AUTOTUNE = os.environ.get("BMF_TRITON_AUTOTUNE", "1") != "0"  # 0: first config that fits (fast compiles, tests)
_SMEM_BUDGET = 200 * 1024  # bytes of shared memory a config may plan for (H100: 227 KiB per block)


def _configs(gpu_shapes):
    """Autotune configs (BLOCK_M, BLOCK_N, num_warps, num_stages) in order of preference; the interpreter gets one
    small config so that CPU tests stay fast."""
    if INTERPRET:
        return [triton.Config({"BLOCK_M": 32, "BLOCK_N": 16}, num_warps=4, num_stages=1)]
    return [triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s) for m, n, w, s in gpu_shapes]


# the last config of each list is a small one that fits fp32 at head dim 128
_FWD_CONFIGS = _configs([(128, 64, 8, 3), (128, 128, 8, 2), (128, 64, 4, 3), (64, 64, 4, 3), (64, 32, 4, 2),
                         (32, 32, 4, 1)])
_DKDV_CONFIGS = _configs([(32, 128, 4, 3), (64, 128, 8, 3), (32, 64, 4, 3), (64, 64, 4, 2), (16, 32, 4, 1)])
_DQ_CONFIGS = _configs([(128, 32, 4, 3), (128, 64, 8, 3), (64, 64, 4, 3), (64, 32, 4, 2), (32, 16, 4, 1)])
_KEY = ["HEAD_DIM", "SEQ_BUCKET", "IS_CAUSAL", "HAS_KMASK", "IS_VARLEN"]


def _smem(kind, c, block_d, elsize):
    """Rough shared-memory plan of a config: resident tiles + num_stages copies of the streamed tiles."""
    m, n, st = c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], max(c.num_stages, 1)
    if kind == "fwd":  # q resident, k and v streamed
        return elsize * block_d * (m + st * 2 * n)
    if kind == "dkdv":  # k and v resident, q and dO streamed
        return elsize * block_d * (2 * n + st * 2 * m)
    return elsize * block_d * (2 * m + st * 2 * n)  # dq: q and dO resident, k and v streamed


def _pruner(kind):
    def prune(configs, named_args, **kwargs):
        """Drop configs that do not fit shared memory or whose blocks dwarf the sequence; keep at least one."""
        bucket = named_args["SEQ_BUCKET"]
        block_d = kwargs.get("BLOCK_D", named_args.get("BLOCK_D"))
        elsize = named_args["Q"].element_size()
        kept = [c for c in configs if _smem(kind, c, block_d, elsize) <= _SMEM_BUDGET
                and min(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"]) <= max(bucket, 32)]
        kept = kept or configs[-1:]
        return kept if AUTOTUNE else kept[:1]

    return {"early_config_prune": prune}


# ---------------------------------------------------------------------------------------------- shared pieces
@triton.jit
def _seq_bounds(CU, off_b, seqlen_q, seqlen_k, IS_VARLEN: tl.constexpr):
    """(first row, S_q, S_k) of batch entry ``off_b``: dense rows start at 0 with the given lengths; a packed
    sequence starts at ``cu_seqlens[b]`` and has S_q == S_k == ``cu_seqlens[b + 1] - cu_seqlens[b]``."""
    if IS_VARLEN:
        row0 = tl.load(CU + off_b).to(tl.int64)
        seqlen_q = (tl.load(CU + off_b + 1) - tl.load(CU + off_b)).to(tl.int32)
        seqlen_k = seqlen_q
    else:
        row0 = 0
    return row0, seqlen_q, seqlen_k


@triton.jit
def _query_program(CU, H, GROUP, seqlen_q, seqlen_k, IS_VARLEN: tl.constexpr, BLOCK_M: tl.constexpr):
    """Work of a program of the query-block grid (query block, batch * head): (start_m, b, h, kv head, first row,
    S_q, S_k). Query blocks run in reverse, so the longest (causal) blocks start first."""
    start_m = (tl.num_programs(0) - 1 - tl.program_id(0)) * BLOCK_M
    bh = tl.program_id(1)
    off_b = bh // H
    off_h = bh % H
    row0, seqlen_q, seqlen_k = _seq_bounds(CU, off_b, seqlen_q, seqlen_k, IS_VARLEN)
    return start_m, off_b, off_h, off_h // GROUP, row0, seqlen_q, seqlen_k


@triton.jit
def _kv_range(start_m, seqlen_q, seqlen_k, IS_CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Keys of the query block at ``start_m``: every row sees [0, full_end) in full (no mask), [full_end, hi) needs
    the mask; ``diag = S_k - S_q`` aligns causal masking bottom-right (row i sees keys j <= i + diag)."""
    diag = seqlen_k - seqlen_q
    if IS_CAUSAL:
        hi = tl.minimum(seqlen_k, start_m + BLOCK_M + diag)
        full_end = tl.minimum(start_m + diag + 1, seqlen_k)
    else:
        hi = seqlen_k
        full_end = seqlen_k
    full_end = tl.maximum(full_end, 0) // BLOCK_N * BLOCK_N
    return diag, full_end, hi


@triton.jit
def _load_kv(ptrs, cols, seqlen_k, d_ok, MASKED: tl.constexpr, EVEN_D: tl.constexpr):
    """A (BLOCK_N, BLOCK_D) key or value tile; rows past S_k (MASKED) and padded head-dim columns read 0."""
    if MASKED:
        t = tl.load(ptrs, mask=(cols < seqlen_k)[:, None] & d_ok[None, :], other=0.0)
    elif EVEN_D:
        t = tl.load(ptrs)
    else:
        t = tl.load(ptrs, mask=d_ok[None, :], other=0.0)
    return t


@triton.jit
def _visible(cols, offs_m, seqlen_k, diag, IS_CAUSAL: tl.constexpr):
    """(BLOCK_M or 1, BLOCK_N) bool: key ``cols`` exists and, when causal, is not after query ``offs_m``."""
    valid = (cols < seqlen_k)[None, :]
    if IS_CAUSAL:
        valid = valid & (cols[None, :] <= offs_m[:, None] + diag)
    return valid


@triton.jit
def _key_kept(km_base, cols, smn, seqlen_k):
    """(1, BLOCK_N) bool: the key-padding mask keeps key ``cols``."""
    km = tl.load(km_base + cols * smn, mask=cols < seqlen_k, other=0)
    return (km != 0)[None, :]


# ---------------------------------------------------------------------------------------------------------- forward
@triton.jit
def _fwd_inner(acc, l_i, m_i, q, k_base, v_base, km_base, sks, svs, smn, lo, hi, seqlen_k, diag, qk_scale,
               offs_m, offs_n, offs_d,
               HEAD_DIM: tl.constexpr, EVEN_D: tl.constexpr, MASKED: tl.constexpr, IS_CAUSAL: tl.constexpr,
               HAS_KMASK: tl.constexpr, DOT_PREC: tl.constexpr, BLOCK_N: tl.constexpr):
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n  # (BLOCK_N,)
        k_ptrs = k_base + cols[:, None] * sks + offs_d[None, :]
        v_ptrs = v_base + cols[:, None] * svs + offs_d[None, :]
        k = _load_kv(k_ptrs, cols, seqlen_k, d_ok, MASKED, EVEN_D)
        qk = tl.dot(q, tl.trans(k), input_precision=DOT_PREC) * qk_scale  # (BLOCK_M, BLOCK_N) fp32, log2 units
        if MASKED:
            qk = tl.where(_visible(cols, offs_m, seqlen_k, diag, IS_CAUSAL), qk, float("-inf"))
        if HAS_KMASK:
            qk = tl.where(_key_kept(km_base, cols, smn, seqlen_k), qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))  # finite: m_i starts at -1e30
        alpha = tl.math.exp2(m_i - m_new)
        p = tl.math.exp2(qk - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None]
        v = _load_kv(v_ptrs, cols, seqlen_k, d_ok, MASKED, EVEN_D)
        acc = tl.dot(p.to(v.dtype), v, acc, input_precision=DOT_PREC)
        m_i = m_new
    return acc, l_i, m_i


@triton.autotune(configs=_FWD_CONFIGS, key=_KEY, prune_configs_by=_pruner("fwd"))
@triton.jit(do_not_specialize=["H", "GROUP", "seqlen_q", "seqlen_k", "SEQ_BUCKET"])
def _attn_fwd(Q, K, V, O, LSE, KMASK, CU,
              sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sob, soh, sos, slb, slh, smb, smn,
              H, GROUP, seqlen_q, seqlen_k, qk_scale, SEQ_BUCKET,
              HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, IS_CAUSAL: tl.constexpr, IS_VARLEN: tl.constexpr,
              HAS_KMASK: tl.constexpr, DOT_PREC: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_m, off_b, off_h, off_hk, row0, seqlen_q, seqlen_k = _query_program(CU, H, GROUP, seqlen_q, seqlen_k,
                                                                             IS_VARLEN, BLOCK_M)
    if start_m >= seqlen_q:
        return
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < seqlen_q
    d_ok = offs_d < HEAD_DIM
    b64 = off_b.to(tl.int64)
    q_base = Q + b64 * sqb + off_h.to(tl.int64) * sqh + row0 * sqs
    k_base = K + b64 * skb + off_hk.to(tl.int64) * skh + row0 * sks
    v_base = V + b64 * svb + off_hk.to(tl.int64) * svh + row0 * svs
    km_base = KMASK + b64 * smb
    q = tl.load(q_base + offs_m[:, None] * sqs + offs_d[None, :], mask=m_ok[:, None] & d_ok[None, :], other=0.0)

    m_i = tl.full([BLOCK_M], -1.0e30, tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    diag, full_end, hi = _kv_range(start_m, seqlen_q, seqlen_k, IS_CAUSAL, BLOCK_M, BLOCK_N)
    EVEN_D: tl.constexpr = HEAD_DIM == BLOCK_D
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, km_base, sks, svs, smn, 0, full_end, seqlen_k,
                               diag, qk_scale, offs_m, offs_n, offs_d, HEAD_DIM, EVEN_D, False, IS_CAUSAL,
                               HAS_KMASK, DOT_PREC, BLOCK_N)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, v_base, km_base, sks, svs, smn, full_end, hi, seqlen_k,
                               diag, qk_scale, offs_m, offs_n, offs_d, HEAD_DIM, EVEN_D, True, IS_CAUSAL,
                               HAS_KMASK, DOT_PREC, BLOCK_N)
    empty = l_i == 0.0  # no visible key: output 0, lse = +inf
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("inf"), m_i + tl.math.log2(l_safe))
    o_base = O + b64 * sob + off_h.to(tl.int64) * soh + row0 * sos
    tl.store(o_base + offs_m[:, None] * sos + offs_d[None, :], out.to(O.dtype.element_ty),
             mask=m_ok[:, None] & d_ok[None, :])
    tl.store(LSE + b64 * slb + off_h.to(tl.int64) * slh + row0 + offs_m, lse, mask=m_ok)


# --------------------------------------------------------------------------------------------------------- backward
@triton.jit
def _bwd_preprocess(O, DO, DELTA, CU, sob, soh, sos, sdb, sdh, sds, slb, slh, H, seqlen_q,
                    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, IS_VARLEN: tl.constexpr, BLOCK_M: tl.constexpr):
    """delta[b, h, i] = sum_d dO[b, h, i, d] * O[b, h, i, d] in fp32."""
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    off_b = bh // H
    off_h = bh % H
    row0, seqlen_q, _ = _seq_bounds(CU, off_b, seqlen_q, seqlen_q, IS_VARLEN)
    if start_m >= seqlen_q:
        return
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    msk = (offs_m < seqlen_q)[:, None] & (offs_d < HEAD_DIM)[None, :]
    b64 = off_b.to(tl.int64)
    h64 = off_h.to(tl.int64)
    o = tl.load(O + b64 * sob + h64 * soh + (row0 + offs_m[:, None]) * sos + offs_d[None, :], mask=msk, other=0.0)
    do = tl.load(DO + b64 * sdb + h64 * sdh + (row0 + offs_m[:, None]) * sds + offs_d[None, :], mask=msk, other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    tl.store(DELTA + b64 * slb + h64 * slh + row0 + offs_m, delta, mask=offs_m < seqlen_q)


@triton.jit
def _dkdv_inner(dk, dv, k, v, q_base, do_base, l_base, d_base, sqs, sds, lo, hi, seqlen_q, start_n, diag, qk_scale,
                offs_m, offs_n, offs_d,
                HEAD_DIM: tl.constexpr, MASKED: tl.constexpr, DOT_PREC: tl.constexpr, BLOCK_M: tl.constexpr):
    d_ok = offs_d < HEAD_DIM
    cols = start_n + offs_n
    for start_m in range(lo, hi, BLOCK_M):
        rows = start_m + offs_m  # (BLOCK_M,)
        r_ok = rows < seqlen_q
        ld = r_ok[:, None] & d_ok[None, :]
        q = tl.load(q_base + rows[:, None] * sqs + offs_d[None, :], mask=ld, other=0.0)
        do = tl.load(do_base + rows[:, None] * sds + offs_d[None, :], mask=ld, other=0.0)
        lse = tl.load(l_base + rows, mask=r_ok, other=float("inf"))  # out-of-range rows: p = 0
        delta = tl.load(d_base + rows, mask=r_ok, other=0.0)
        qkT = tl.dot(k, tl.trans(q), input_precision=DOT_PREC) * qk_scale  # (BLOCK_N, BLOCK_M)
        pT = tl.math.exp2(qkT - lse[None, :])
        if MASKED:
            pT = tl.where(cols[:, None] <= rows[None, :] + diag, pT, 0.0)
        dv = tl.dot(pT.to(do.dtype), do, dv, input_precision=DOT_PREC)
        dpT = tl.dot(v, tl.trans(do), input_precision=DOT_PREC)  # (BLOCK_N, BLOCK_M)
        dsT = pT * (dpT - delta[None, :])
        dk = tl.dot(dsT.to(q.dtype), q, dk, input_precision=DOT_PREC)
    return dk, dv


@triton.autotune(configs=_DKDV_CONFIGS, key=_KEY, prune_configs_by=_pruner("dkdv"))
@triton.jit(do_not_specialize=["H_KV", "GROUP", "seqlen_q", "seqlen_k", "SEQ_BUCKET"])
def _attn_bwd_dkdv(Q, K, V, DO, LSE, DELTA, DK, DV, KMASK, CU,
                   sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sdb, sdh, sds, sdkb, sdkh, sdks, sdvb, sdvh, sdvs,
                   slb, slh, smb, smn,
                   H_KV, GROUP, seqlen_q, seqlen_k, qk_scale, sm_scale, SEQ_BUCKET,
                   HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, IS_CAUSAL: tl.constexpr, IS_VARLEN: tl.constexpr,
                   HAS_KMASK: tl.constexpr, DOT_PREC: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    off_b = bh // H_KV
    off_hk = bh % H_KV
    row0, seqlen_q, seqlen_k = _seq_bounds(CU, off_b, seqlen_q, seqlen_k, IS_VARLEN)
    if start_n >= seqlen_k:
        return
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_ok = offs_n < seqlen_k
    kv_ok = n_ok[:, None] & (offs_d < HEAD_DIM)[None, :]
    b64 = off_b.to(tl.int64)
    hk64 = off_hk.to(tl.int64)
    k = tl.load(K + b64 * skb + hk64 * skh + (row0 + offs_n[:, None]) * sks + offs_d[None, :], mask=kv_ok, other=0.0)
    v = tl.load(V + b64 * svb + hk64 * svh + (row0 + offs_n[:, None]) * svs + offs_d[None, :], mask=kv_ok, other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)

    diag = seqlen_k - seqlen_q
    q_end = tl.cdiv(seqlen_q, BLOCK_M) * BLOCK_M
    if IS_CAUSAL:
        # rows >= start_n - diag see some key of this block; rows >= start_n + BLOCK_N - 1 - diag see all of them
        m_lo = tl.maximum(start_n - diag, 0) // BLOCK_M * BLOCK_M
        m_mid = tl.cdiv(tl.maximum(start_n + BLOCK_N - 1 - diag, 0), BLOCK_M) * BLOCK_M
        m_lo = tl.minimum(m_lo, q_end)
        m_mid = tl.minimum(tl.maximum(m_mid, m_lo), q_end)
    else:
        m_lo = 0
        m_mid = 0
    # key columns beyond seqlen_k (or masked out by KMASK) only produce dK/dV rows that are not stored / zeroed
    for g in range(GROUP):
        h64 = (off_hk * GROUP + g).to(tl.int64)
        q_base = Q + b64 * sqb + h64 * sqh + row0 * sqs
        do_base = DO + b64 * sdb + h64 * sdh + row0 * sds
        l_base = LSE + b64 * slb + h64 * slh + row0
        d_base = DELTA + b64 * slb + h64 * slh + row0
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, l_base, d_base, sqs, sds, m_lo, m_mid, seqlen_q,
                             start_n, diag, qk_scale, offs_m, tl.arange(0, BLOCK_N), offs_d, HEAD_DIM, True,
                             DOT_PREC, BLOCK_M)
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, do_base, l_base, d_base, sqs, sds, m_mid, q_end, seqlen_q,
                             start_n, diag, qk_scale, offs_m, tl.arange(0, BLOCK_N), offs_d, HEAD_DIM, False,
                             DOT_PREC, BLOCK_M)
    dk = dk * sm_scale
    if HAS_KMASK:
        km = tl.load(KMASK + b64 * smb + offs_n * smn, mask=n_ok, other=0)
        keep = (km != 0)[:, None]
        dk = tl.where(keep, dk, 0.0)
        dv = tl.where(keep, dv, 0.0)
    tl.store(DK + b64 * sdkb + hk64 * sdkh + (row0 + offs_n[:, None]) * sdks + offs_d[None, :],
             dk.to(DK.dtype.element_ty), mask=kv_ok)
    tl.store(DV + b64 * sdvb + hk64 * sdvh + (row0 + offs_n[:, None]) * sdvs + offs_d[None, :],
             dv.to(DV.dtype.element_ty), mask=kv_ok)


@triton.jit
def _dq_inner(dq, q, do, lse, delta, k_base, v_base, km_base, sks, svs, smn, lo, hi, seqlen_k, diag, qk_scale,
              offs_m, offs_n, offs_d,
              HEAD_DIM: tl.constexpr, EVEN_D: tl.constexpr, MASKED: tl.constexpr, IS_CAUSAL: tl.constexpr,
              HAS_KMASK: tl.constexpr, DOT_PREC: tl.constexpr, BLOCK_N: tl.constexpr):
    d_ok = offs_d < HEAD_DIM
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        k_ptrs = k_base + cols[:, None] * sks + offs_d[None, :]
        v_ptrs = v_base + cols[:, None] * svs + offs_d[None, :]
        k = _load_kv(k_ptrs, cols, seqlen_k, d_ok, MASKED, EVEN_D)
        v = _load_kv(v_ptrs, cols, seqlen_k, d_ok, MASKED, EVEN_D)
        qk = tl.dot(q, tl.trans(k), input_precision=DOT_PREC) * qk_scale
        p = tl.math.exp2(qk - lse[:, None])
        if MASKED:
            p = tl.where(_visible(cols, offs_m, seqlen_k, diag, IS_CAUSAL), p, 0.0)
        if HAS_KMASK:
            p = tl.where(_key_kept(km_base, cols, smn, seqlen_k), p, 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PREC)
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq, input_precision=DOT_PREC)
    return dq


@triton.autotune(configs=_DQ_CONFIGS, key=_KEY, prune_configs_by=_pruner("dq"))
@triton.jit(do_not_specialize=["H", "GROUP", "seqlen_q", "seqlen_k", "SEQ_BUCKET"])
def _attn_bwd_dq(Q, K, V, DO, LSE, DELTA, DQ, KMASK, CU,
                 sqb, sqh, sqs, skb, skh, sks, svb, svh, svs, sdb, sdh, sds, sdqb, sdqh, sdqs, slb, slh, smb, smn,
                 H, GROUP, seqlen_q, seqlen_k, qk_scale, sm_scale, SEQ_BUCKET,
                 HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, IS_CAUSAL: tl.constexpr, IS_VARLEN: tl.constexpr,
                 HAS_KMASK: tl.constexpr, DOT_PREC: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    start_m, off_b, off_h, off_hk, row0, seqlen_q, seqlen_k = _query_program(CU, H, GROUP, seqlen_q, seqlen_k,
                                                                             IS_VARLEN, BLOCK_M)
    if start_m >= seqlen_q:
        return
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < seqlen_q
    ld = m_ok[:, None] & (offs_d < HEAD_DIM)[None, :]
    b64 = off_b.to(tl.int64)
    h64 = off_h.to(tl.int64)
    q = tl.load(Q + b64 * sqb + h64 * sqh + (row0 + offs_m[:, None]) * sqs + offs_d[None, :], mask=ld, other=0.0)
    do = tl.load(DO + b64 * sdb + h64 * sdh + (row0 + offs_m[:, None]) * sds + offs_d[None, :], mask=ld, other=0.0)
    lse = tl.load(LSE + b64 * slb + h64 * slh + row0 + offs_m, mask=m_ok, other=float("inf"))
    delta = tl.load(DELTA + b64 * slb + h64 * slh + row0 + offs_m, mask=m_ok, other=0.0)
    k_base = K + b64 * skb + off_hk.to(tl.int64) * skh + row0 * sks
    v_base = V + b64 * svb + off_hk.to(tl.int64) * svh + row0 * svs
    km_base = KMASK + b64 * smb
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    diag, full_end, hi = _kv_range(start_m, seqlen_q, seqlen_k, IS_CAUSAL, BLOCK_M, BLOCK_N)
    EVEN_D: tl.constexpr = HEAD_DIM == BLOCK_D
    dq = _dq_inner(dq, q, do, lse, delta, k_base, v_base, km_base, sks, svs, smn, 0, full_end, seqlen_k, diag,
                   qk_scale, offs_m, offs_n, offs_d, HEAD_DIM, EVEN_D, False, IS_CAUSAL, HAS_KMASK, DOT_PREC,
                   BLOCK_N)
    dq = _dq_inner(dq, q, do, lse, delta, k_base, v_base, km_base, sks, svs, smn, full_end, hi, seqlen_k, diag,
                   qk_scale, offs_m, offs_n, offs_d, HEAD_DIM, EVEN_D, True, IS_CAUSAL, HAS_KMASK, DOT_PREC,
                   BLOCK_N)
    dq = dq * sm_scale
    tl.store(DQ + b64 * sdqb + h64 * sdqh + (row0 + offs_m[:, None]) * sdqs + offs_d[None, :],
             dq.to(DQ.dtype.element_ty), mask=ld)


# -------------------------------------------------------------------------------------------------------- launchers
def _bhs(x: Tensor, varlen: bool) -> Tuple[int, int, int]:
    """(batch, head, sequence) strides; the packed layout has no batch stride (rows come from cu_seqlens)."""
    return (0, x.stride(1), x.stride(0)) if varlen else (x.stride(0), x.stride(1), x.stride(2))


def _lse_strides(lse: Tensor, varlen: bool) -> Tuple[int, int]:
    return (0, lse.stride(0)) if varlen else (lse.stride(0), lse.stride(1))


def _inner_contig(x: Tensor) -> Tensor:
    return x if x.stride(-1) == 1 else x.contiguous()


def _common(q: Tensor, k: Tensor, cu_seqlens: Optional[Tensor], max_seqlen: int):
    varlen = cu_seqlens is not None
    if varlen:
        b = cu_seqlens.numel() - 1
        h, d = q.shape[1], q.shape[2]
        h_kv = k.shape[1]
        s_q = s_k = int(max_seqlen)
    else:
        b, h, s_q, d = q.shape
        h_kv, s_k = k.shape[1], k.shape[2]
    block_d = max(16, triton.next_power_of_2(d))
    bucket = min(max(16, triton.next_power_of_2(max(s_q, s_k, 1))), 1 << 16)
    prec = "ieee" if q.dtype == torch.float32 else "tf32"
    return varlen, b, h, h_kv, s_q, s_k, d, block_d, bucket, prec


def flash_attn_forward(q: Tensor, k: Tensor, v: Tensor, kmask: Optional[Tensor], cu_seqlens: Optional[Tensor],
                       max_seqlen: int, causal: bool, scale: float) -> Tuple[Tensor, Tensor]:
    """Run the forward kernel. Returns ``(out, lse)``: ``out`` shaped like ``q`` (dense (B, H, S_q, D) laid out as
    (B, S_q, H, D), or packed (T, H, D)); ``lse`` the fp32 log-sum-exp in log2 units, (B, H, S_q) dense or (H, T)
    packed (:func:`bigmodel_fast.ops.attention_layout.lse_shape`), +inf for rows that see no key."""
    q, k, v = _inner_contig(q), _inner_contig(k), _inner_contig(v)
    varlen, b, h, h_kv, s_q, s_k, d, block_d, bucket, prec = _common(q, k, cu_seqlens, max_seqlen)
    out = empty_like_bshd(q)
    lse = torch.empty(lse_shape(q, varlen), dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out, lse.fill_(float("inf"))
    dummy = q
    grid = lambda meta: (triton.cdiv(s_q, meta["BLOCK_M"]), b * h)  # noqa: E731
    _attn_fwd[grid](
        q, k, v, out, lse, dummy if kmask is None else kmask, dummy if cu_seqlens is None else cu_seqlens,
        *_bhs(q, varlen), *_bhs(k, varlen), *_bhs(v, varlen), *_bhs(out, varlen), *_lse_strides(lse, varlen),
        *((0, 0) if kmask is None else kmask.stride()),
        h, h // h_kv, s_q, s_k, scale * LOG2E, bucket,
        HEAD_DIM=d, BLOCK_D=block_d, IS_CAUSAL=causal, IS_VARLEN=varlen, HAS_KMASK=kmask is not None,
        DOT_PREC=prec,
    )
    return out, lse


def flash_attn_backward(do: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                        kmask: Optional[Tensor], cu_seqlens: Optional[Tensor], max_seqlen: int, causal: bool,
                        scale: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Run the backward kernels. Returns (dq, dk, dv) shaped like q, k, v."""
    dq, dk, dv = grad_like(q), grad_like(k), grad_like(v)
    q, k, v, out, do = _inner_contig(q), _inner_contig(k), _inner_contig(v), _inner_contig(out), _inner_contig(do)
    varlen, b, h, h_kv, s_q, s_k, d, block_d, bucket, prec = _common(q, k, cu_seqlens, max_seqlen)
    if q.numel() == 0 or k.numel() == 0:
        return dq.zero_(), dk.zero_(), dv.zero_()
    delta = torch.empty_like(lse)
    dummy = q
    km = dummy if kmask is None else kmask
    cu = dummy if cu_seqlens is None else cu_seqlens
    km_strides = (0, 0) if kmask is None else kmask.stride()
    lse_strides = _lse_strides(lse, varlen)
    pre_m = 32 if INTERPRET else 64
    _bwd_preprocess[(triton.cdiv(s_q, pre_m), b * h)](
        out, do, delta, cu, *_bhs(out, varlen), *_bhs(do, varlen), *lse_strides, h, s_q,
        HEAD_DIM=d, BLOCK_D=block_d, IS_VARLEN=varlen, BLOCK_M=pre_m,
    )
    flags = dict(HEAD_DIM=d, BLOCK_D=block_d, IS_CAUSAL=causal, IS_VARLEN=varlen, HAS_KMASK=kmask is not None,
                 DOT_PREC=prec)
    _attn_bwd_dkdv[lambda meta: (triton.cdiv(s_k, meta["BLOCK_N"]), b * h_kv)](
        q, k, v, do, lse, delta, dk, dv, km, cu,
        *_bhs(q, varlen), *_bhs(k, varlen), *_bhs(v, varlen), *_bhs(do, varlen), *_bhs(dk, varlen),
        *_bhs(dv, varlen), *lse_strides, *km_strides,
        h_kv, h // h_kv, s_q, s_k, scale * LOG2E, scale, bucket, **flags,
    )
    _attn_bwd_dq[lambda meta: (triton.cdiv(s_q, meta["BLOCK_M"]), b * h)](
        q, k, v, do, lse, delta, dq, km, cu,
        *_bhs(q, varlen), *_bhs(k, varlen), *_bhs(v, varlen), *_bhs(do, varlen), *_bhs(dq, varlen),
        *lse_strides, *km_strides,
        h, h // h_kv, s_q, s_k, scale * LOG2E, scale, bucket, **flags,
    )
    return dq, dk, dv
