"""Triton kernels and launchers for the LSTM recurrence (used by :mod:`bigmodel_fast.ops.lstm`).

Imported lazily by ``ops/lstm.py`` the first time the triton backend runs, so that ``TRITON_INTERPRET`` (read by
``triton.jit`` when the kernels below are decorated) can be set by then.

Layout shared by both kernels (H = hidden size, G = 4H, gate order i, f, g, o as in ``torch.nn.LSTM``):

* ``xg``   (T, B, G)   input projection ``x @ W_ih^T + b_ih + b_hh``, time order, compute dtype.
* ``w``    (G, H)      ``W_hh``, compute dtype.
* ``hs``   (T+1, B, H) hidden state history in *processed* order (``hs[0] = h0``, ``hs[s+1]`` = state after the
  s-th processed step; the reverse direction processes time ``T-1-s`` at step s), compute dtype.
* ``cs``   (T+1, B, H) cell state history, processed order, fp32.
* ``gates`` (T, B, G)  activated gates (sigmoid i/f/o, tanh g), time order, fp32 (saved for backward).
* ``out``  (T, B, H)   layer output, time order; 0 at padded steps.
* ``dg``   (T, B, G)   backward: gradient of the pre-activation gates (= gradient of ``xg``), compute dtype.

Padded batches: with ``lengths``, time step t of row b is active iff ``t < lengths[b]``; an inactive step leaves
h and c unchanged and writes 0 to ``out`` (so the reverse direction of a padded row starts at its last real token).

Both kernels loop over a range of processed steps ``[s_begin, s_end)``. The launcher either calls them once per
step (grid boundary = synchronisation) or once for all steps (*persistent*): then the programs that share a batch
block synchronise after every step through an atomic counter in global memory (release/acquire grid barrier), which
needs all programs of the grid resident at once (checked: grid <= number of SMs). Each program owns a block of
hidden units across all four gates, so the cell state stays in registers for the whole sequence, and when
``H <= RESIDENT_MAX_H`` its ``4 x BLOCK_H x H`` slice of ``W_hh`` is loaded once before the time loop and stays on
chip; otherwise it is re-read per step from L2 (where all of ``W_hh`` stays resident for the sizes benchmarked).
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from bigmodel_fast.ops.triton_env import interpreting

RESIDENT_MAX_H = 128  # W_hh slice held in registers/shared memory across the time loop when H <= this


@triton.jit
def _tanh(x):
    return 2.0 * tl.sigmoid(2.0 * x) - 1.0


@triton.jit
def _grid_barrier(sync_ptr, target):
    """All programs of this batch block arrive; wait until ``target`` arrivals (release/acquire, GPU scope)."""
    tl.debug_barrier()  # every thread of this program has issued its stores
    cnt = tl.atomic_add(sync_ptr, 1, sem="acq_rel", scope="gpu") + 1
    while cnt < target:
        cnt = tl.atomic_add(sync_ptr, 0, sem="acquire", scope="gpu")
    tl.debug_barrier()


@triton.jit
def _lstm_fwd_kernel(
    xg_ptr, w_ptr, len_ptr, out_ptr, hs_ptr, cs_ptr, gates_ptr, sync_ptr,
    s_begin, s_end, T, B, H,
    HAS_LENGTHS: tl.constexpr, REVERSE: tl.constexpr, PERSISTENT: tl.constexpr, W_RESIDENT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, PRECISION: tl.constexpr,
):
    """Steps ``s_begin..s_end-1`` of one direction: gates = xg[t] + h @ W_hh^T (tl.dot per gate), c/h update."""
    pid_h = tl.program_id(0)
    pid_b = tl.program_id(1)
    n_h = tl.num_programs(0)
    z64 = pid_h.to(tl.int64) * 0  # int64 zero: promotes the time offsets below (loop indices may be plain ints)
    G = 4 * H
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_j = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    mb = offs_b < B
    mj = offs_j < H
    m2 = mb[:, None] & mj[None, :]
    row_bh = offs_b[:, None] * H + offs_j[None, :]  # (BB, BH) offsets into a (B, H) slab
    row_bg = offs_b[:, None] * G + offs_j[None, :]  # (BB, BH) offsets of gate i into a (B, G) slab
    dt = hs_ptr.dtype.element_ty
    if HAS_LENGTHS:
        lens = tl.load(len_ptr + offs_b, mask=mb, other=0)
    if W_RESIDENT:  # the whole K extent in one tile, loaded once: W_hh stays on chip across time steps
        offs_k = tl.arange(0, BLOCK_K)
        mk = offs_k < H
        wmask = mk[:, None] & mj[None, :]
        wp = w_ptr + offs_j[None, :] * H + offs_k[:, None]  # (BK, BH): W[gate*H + j, k]
        w_i = tl.load(wp, mask=wmask, other=0.0)
        w_f = tl.load(wp + H * H, mask=wmask, other=0.0)
        w_g = tl.load(wp + 2 * H * H, mask=wmask, other=0.0)
        w_o = tl.load(wp + 3 * H * H, mask=wmask, other=0.0)
    c = tl.load(cs_ptr + (s_begin + z64) * B * H + row_bh, mask=m2, other=0.0)  # fp32, lives in registers
    for s in range(s_begin, s_end):
        if REVERSE:
            t = T - 1 - s
        else:
            t = s
        xrow = xg_ptr + (t + z64) * B * G + row_bg
        acc_i = tl.load(xrow, mask=m2, other=0.0).to(tl.float32)
        acc_f = tl.load(xrow + H, mask=m2, other=0.0).to(tl.float32)
        acc_g = tl.load(xrow + 2 * H, mask=m2, other=0.0).to(tl.float32)
        acc_o = tl.load(xrow + 3 * H, mask=m2, other=0.0).to(tl.float32)
        h_base = hs_ptr + (s + z64) * B * H
        if W_RESIDENT:
            hk = tl.load(h_base + offs_b[:, None] * H + offs_k[None, :],
                         mask=mb[:, None] & mk[None, :], other=0.0, cache_modifier=".cg")
            acc_i = tl.dot(hk, w_i, acc_i, input_precision=PRECISION)
            acc_f = tl.dot(hk, w_f, acc_f, input_precision=PRECISION)
            acc_g = tl.dot(hk, w_g, acc_g, input_precision=PRECISION)
            acc_o = tl.dot(hk, w_o, acc_o, input_precision=PRECISION)
        else:
            for k0 in range(0, H, BLOCK_K):
                offs_k = k0 + tl.arange(0, BLOCK_K)
                mk = offs_k < H
                hk = tl.load(h_base + offs_b[:, None] * H + offs_k[None, :],
                             mask=mb[:, None] & mk[None, :], other=0.0, cache_modifier=".cg")
                wmask = mk[:, None] & mj[None, :]
                wp = w_ptr + offs_j[None, :] * H + offs_k[:, None]
                acc_i = tl.dot(hk, tl.load(wp, mask=wmask, other=0.0), acc_i, input_precision=PRECISION)
                acc_f = tl.dot(hk, tl.load(wp + H * H, mask=wmask, other=0.0), acc_f, input_precision=PRECISION)
                acc_g = tl.dot(hk, tl.load(wp + 2 * H * H, mask=wmask, other=0.0), acc_g,
                               input_precision=PRECISION)
                acc_o = tl.dot(hk, tl.load(wp + 3 * H * H, mask=wmask, other=0.0), acc_o,
                               input_precision=PRECISION)
        gi = tl.sigmoid(acc_i)
        gf = tl.sigmoid(acc_f)
        gg = _tanh(acc_g)
        go = tl.sigmoid(acc_o)
        c_new = gf * c + gi * gg
        h_new = go * _tanh(c_new)
        out_val = h_new
        if HAS_LENGTHS:
            active = (t < lens)[:, None]
            h_prev = tl.load(h_base + row_bh, mask=m2, other=0.0, cache_modifier=".cg").to(tl.float32)
            c_new = tl.where(active, c_new, c)
            h_new = tl.where(active, h_new, h_prev)
            out_val = tl.where(active, out_val, 0.0)
        c = c_new
        grow = gates_ptr + (t + z64) * B * G + row_bg
        tl.store(grow, gi, mask=m2)
        tl.store(grow + H, gf, mask=m2)
        tl.store(grow + 2 * H, gg, mask=m2)
        tl.store(grow + 3 * H, go, mask=m2)
        tl.store(out_ptr + (t + z64) * B * H + row_bh, out_val.to(dt), mask=m2)
        tl.store(cs_ptr + (s + 1 + z64) * B * H + row_bh, c, mask=m2)
        tl.store(hs_ptr + (s + 1 + z64) * B * H + row_bh, h_new.to(dt), mask=m2)
        if PERSISTENT:
            if s + 1 < s_end:  # the next step reads all of hs[s+1]: wait for every hidden block of this batch block
                _grid_barrier(sync_ptr + pid_b, n_h * (s + 1 - s_begin))


@triton.jit
def _lstm_bwd_kernel(
    dout_ptr, w_ptr, len_ptr, gates_ptr, cs_ptr, dg_ptr, dh_ptr, dc_ptr, sync_ptr,
    s_begin, s_end, T, B, H,
    HAS_LENGTHS: tl.constexpr, REVERSE: tl.constexpr, PERSISTENT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr, PRECISION: tl.constexpr,
):
    """Processed steps ``s_end-1`` down to ``s_begin``: dh = dh_carry + dout[t] + dg[t_next] @ W_hh (tl.dot over
    the 4H gate rows), then the pointwise gate gradients; writes dg[t] and carries dc (and dh through padded steps).

    ``dh_ptr``/``dc_ptr`` (B, H) fp32 hold the carried gradients on entry (dh_n, dc_n) and on exit (the part of
    dh_0 not yet including ``dg[t_first] @ W_hh``, and dc_0).
    """
    pid_h = tl.program_id(0)
    pid_b = tl.program_id(1)
    n_h = tl.num_programs(0)
    z64 = pid_h.to(tl.int64) * 0  # int64 zero: promotes the time offsets below (loop indices may be plain ints)
    G = 4 * H
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    offs_j = pid_h * BLOCK_H + tl.arange(0, BLOCK_H)
    mb = offs_b < B
    mj = offs_j < H
    m2 = mb[:, None] & mj[None, :]
    row_bh = offs_b[:, None] * H + offs_j[None, :]
    row_bg = offs_b[:, None] * G + offs_j[None, :]
    dt = dg_ptr.dtype.element_ty
    if HAS_LENGTHS:
        lens = tl.load(len_ptr + offs_b, mask=mb, other=0)
    dh_c = tl.load(dh_ptr + row_bh, mask=m2, other=0.0)
    dc_c = tl.load(dc_ptr + row_bh, mask=m2, other=0.0)
    for i in range(s_begin, s_end):
        s = s_end - 1 - (i - s_begin)
        if REVERSE:
            t = T - 1 - s
            t_next = t - 1
        else:
            t = s
            t_next = t + 1
        rec = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
        k_end = tl.where(s + 1 < T, G, 0)
        dg_next = dg_ptr + (t_next + z64) * B * G
        for k0 in range(0, k_end, BLOCK_K):
            offs_k = k0 + tl.arange(0, BLOCK_K)
            mk = offs_k < G
            a = tl.load(dg_next + offs_b[:, None] * G + offs_k[None, :],
                        mask=mb[:, None] & mk[None, :], other=0.0, cache_modifier=".cg")
            wv = tl.load(w_ptr + offs_k[:, None] * H + offs_j[None, :],
                         mask=mk[:, None] & mj[None, :], other=0.0)
            rec = tl.dot(a, wv, rec, input_precision=PRECISION)
        dout = tl.load(dout_ptr + (t + z64) * B * H + row_bh, mask=m2, other=0.0).to(tl.float32)
        if HAS_LENGTHS:
            active = (t < lens)[:, None]
            dout = tl.where(active, dout, 0.0)
        dh = dh_c + rec + dout
        grow = gates_ptr + (t + z64) * B * G + row_bg
        gi = tl.load(grow, mask=m2, other=0.0)
        gf = tl.load(grow + H, mask=m2, other=0.0)
        gg = tl.load(grow + 2 * H, mask=m2, other=0.0)
        go = tl.load(grow + 3 * H, mask=m2, other=0.0)
        c_t = tl.load(cs_ptr + (s + 1 + z64) * B * H + row_bh, mask=m2, other=0.0)
        c_p = tl.load(cs_ptr + (s + z64) * B * H + row_bh, mask=m2, other=0.0)
        tc = _tanh(c_t)
        dc = dc_c + dh * go * (1.0 - tc * tc)
        d_i = dc * gg * gi * (1.0 - gi)
        d_f = dc * c_p * gf * (1.0 - gf)
        d_g = dc * gi * (1.0 - gg * gg)
        d_o = dh * tc * go * (1.0 - go)
        dc_prev = dc * gf
        if HAS_LENGTHS:
            d_i = tl.where(active, d_i, 0.0)
            d_f = tl.where(active, d_f, 0.0)
            d_g = tl.where(active, d_g, 0.0)
            d_o = tl.where(active, d_o, 0.0)
            dc_c = tl.where(active, dc_prev, dc_c)
            dh_c = tl.where(active, 0.0, dh)  # padded step: h_{t-1} = h_t, its gradient passes through
        else:
            dc_c = dc_prev
            dh_c = tl.zeros((BLOCK_B, BLOCK_H), dtype=tl.float32)
        drow = dg_ptr + (t + z64) * B * G + row_bg
        tl.store(drow, d_i.to(dt), mask=m2)
        tl.store(drow + H, d_f.to(dt), mask=m2)
        tl.store(drow + 2 * H, d_g.to(dt), mask=m2)
        tl.store(drow + 3 * H, d_o.to(dt), mask=m2)
        if PERSISTENT:
            if i + 1 < s_end:  # the next (earlier) step reads all of dg[t]
                _grid_barrier(sync_ptr + pid_b, n_h * (i + 1 - s_begin))
    tl.store(dh_ptr + row_bh, dh_c, mask=m2)
    tl.store(dc_ptr + row_bh, dc_c, mask=m2)


# ---------------------------------------------------------------------------------------------------------- launchers

def _num_sms(device: torch.device) -> int:
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count


def _precision(dtype: torch.dtype, device: torch.device) -> str:
    """tl.dot input precision: fp32 follows ``torch.backends.cudnn.allow_tf32`` (what ``nn.LSTM`` uses)."""
    if dtype == torch.float32 and device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        return "tf32"
    return "ieee"


# JSON file {"fwd|bwd,B,H,dtype": [BB, BH, BK, warps, stages]} (bench --tune writes it)
TUNED_ENV_VAR = "BMF_LSTM_TUNED"
_tuned_cache: dict = {}


def _tuned(kind: str, b: int, h: int, dtype: torch.dtype):
    path = os.environ.get(TUNED_ENV_VAR, "")
    if not path:
        return None
    if path not in _tuned_cache:
        import json

        with open(path, encoding="utf-8") as f:
            _tuned_cache[path] = json.load(f)
    cfg = _tuned_cache[path].get(f"{kind},{b},{h},{str(dtype).replace('torch.', '')}")
    return tuple(cfg) if cfg else None


def pick_blocks(b: int, h: int, device: torch.device, kind: str = "fwd") -> Tuple[int, int, int, int, int]:
    """``(BLOCK_B, BLOCK_H, BLOCK_K, num_warps, num_stages)`` for the ``"fwd"`` or ``"bwd"`` kernel.

    The per-step work is tiny and bound by what each SM must pull from L2 every step, so the tiles are chosen to
    minimise the bytes per program per step among the grids that fit on the SMs (needed for the persistent
    mode): forward reads ``h`` (BLOCK_B x H) and the ``W_hh`` slice (4 BLOCK_H x H): cost BLOCK_B + 4 BLOCK_H;
    backward reads ``dg[t+1]`` (BLOCK_B x 4H) and the ``W_hh`` columns (4H x BLOCK_H): cost BLOCK_B + BLOCK_H.
    Ties go to fewer programs.
    """
    cap_b = max(16, triton.next_power_of_2(b))
    if device.type != "cuda":  # interpreter: small tiles, few programs
        return min(64, cap_b), 16 if h <= 16 else 32, 32, 4, 1
    sms = _num_sms(device)
    cap_h = max(16, triton.next_power_of_2(h))
    best = None
    for bb in (16, 32, 64):
        for bh in (16, 32, 64, 128):
            if bb > cap_b or bh > cap_h:
                continue
            n = triton.cdiv(b, bb) * triton.cdiv(h, bh)
            cost = bb + 4 * bh if kind == "fwd" else bb + bh
            key = (n > sms, cost, n)
            if best is None or key < best[0]:
                best = (key, bb, bh)
    _, bb, bh = best
    warps = 8 if bb * bh >= 1024 else 4  # 8 warps: no register spills at 64 x 16 tiles (cuobjdump -res-usage)
    return bb, bh, 64, warps, 3


def _plan(t: int, b: int, h: int, device: torch.device, mode: str, blocks: Optional[Tuple[int, ...]], kind: str,
          dtype: torch.dtype):
    bb, bh, bk, warps, stages = pick_blocks(b, h, device, kind)
    if blocks is None and device.type == "cuda":
        blocks = _tuned(kind, b, h, dtype)
    if blocks is not None:  # (BLOCK_B, BLOCK_H, BLOCK_K[, num_warps[, num_stages]])
        bb, bh, bk = blocks[:3]
        warps = blocks[3] if len(blocks) > 3 else warps
        stages = blocks[4] if len(blocks) > 4 else stages
    grid = (triton.cdiv(h, bh), triton.cdiv(b, bb))
    # persistent needs every program of a batch block resident at once; the interpreter runs programs one after
    # the other, so there it is only possible with a single hidden block
    fits = grid[0] == 1 if interpreting() else grid[0] * grid[1] <= _num_sms(device)
    if mode == "persistent" and not fits:
        raise ValueError(f"lstm triton: persistent mode needs grid {grid} to be co-resident "
                         f"({'one hidden block in the interpreter' if interpreting() else 'grid <= SM count'})")
    persistent = mode == "persistent" or (mode == "auto" and fits and t > 1)
    return bb, bh, bk, (warps, stages), grid, persistent  # (num_warps, num_stages) travel together


def lstm_fwd(xg: Tensor, w: Tensor, h0: Tensor, c0: Tensor, lengths: Optional[Tensor], reverse: bool,
             mode: str = "auto", blocks: Optional[Tuple[int, ...]] = None, resident: Optional[bool] = None):
    """Forward of one direction. Returns ``(out, h_n, c_n, gates, hs, cs)`` (see the module docstring).

    ``mode``: ``auto`` (persistent when the grid fits, else one launch per step), ``persistent`` or ``step``.
    ``blocks`` overrides ``(BLOCK_B, BLOCK_H, BLOCK_K)``; ``resident`` forces the on-chip ``W_hh`` variant on/off
    (default: on when ``H <= RESIDENT_MAX_H``, in the interpreter when H fits one K tile).
    """
    t_len, b, g = xg.shape
    h = g // 4
    dtype, dev = xg.dtype, xg.device
    xg = xg.contiguous()
    w = w.contiguous()
    hs = torch.empty(t_len + 1, b, h, dtype=dtype, device=dev)
    hs[0] = h0
    cs = torch.empty(t_len + 1, b, h, dtype=torch.float32, device=dev)
    cs[0] = c0
    out = torch.empty(t_len, b, h, dtype=dtype, device=dev)
    gates = torch.empty(t_len, b, g, dtype=torch.float32, device=dev)
    bb, bh, bk, launch, grid, persistent = _plan(t_len, b, h, dev, mode, blocks, "fwd", dtype)
    if resident is None:
        resident = h <= (bk if interpreting() else RESIDENT_MAX_H)
    if resident:
        bk = max(16, triton.next_power_of_2(h))
    has_len = lengths is not None
    lens = lengths if has_len else out  # dummy pointer, never read
    sync = torch.zeros(grid[1], dtype=torch.int32, device=dev)
    prec = _precision(dtype, dev)
    steps = [(0, t_len)] if persistent else [(s, s + 1) for s in range(t_len)]
    for s0, s1 in steps:
        _lstm_fwd_kernel[grid](
            xg, w, lens, out, hs, cs, gates, sync, s0, s1, t_len, b, h,
            HAS_LENGTHS=has_len, REVERSE=reverse, PERSISTENT=persistent, W_RESIDENT=resident,
            BLOCK_B=bb, BLOCK_H=bh, BLOCK_K=bk, PRECISION=prec, num_warps=launch[0], num_stages=launch[1],
        )
    return out, hs[t_len].clone(), cs[t_len].to(c0.dtype, copy=True), gates, hs, cs


def lstm_bwd(d_out: Tensor, d_hn: Tensor, d_cn: Tensor, w: Tensor, lengths: Optional[Tensor], gates: Tensor,
             hs: Tensor, cs: Tensor, reverse: bool, mode: str = "auto",
             blocks: Optional[Tuple[int, ...]] = None):
    """Backward of :func:`lstm_fwd`: returns ``(d_xg, d_w, d_h0, d_c0)``.

    The pointwise gate gradients and the recurrent matmul ``dg[t+1] @ W_hh`` are one kernel; the weight gradient
    ``dW_hh = sum_t dg[t]^T h_{t-1}`` is one large matmul after the time loop (``d_xg`` feeds the input
    projection's own large matmuls through autograd).
    """
    t_len, b, g = gates.shape
    h = g // 4
    dtype, dev = hs.dtype, hs.device
    w = w.contiguous()
    d_out = d_out.contiguous()
    dg = torch.empty(t_len, b, g, dtype=dtype, device=dev)
    dh = d_hn.to(torch.float32, copy=True).contiguous()
    dc = d_cn.to(torch.float32, copy=True).contiguous()
    bb, bh, bk, launch, grid, persistent = _plan(t_len, b, h, dev, mode, blocks, "bwd", dtype)
    has_len = lengths is not None
    lens = lengths if has_len else dh
    sync = torch.zeros(grid[1], dtype=torch.int32, device=dev)
    prec = _precision(dtype, dev)
    steps = [(0, t_len)] if persistent else [(s, s + 1) for s in reversed(range(t_len))]
    for s0, s1 in steps:
        _lstm_bwd_kernel[grid](
            d_out, w, lens, gates, cs, dg, dh, dc, sync, s0, s1, t_len, b, h,
            HAS_LENGTHS=has_len, REVERSE=reverse, PERSISTENT=persistent,
            BLOCK_B=bb, BLOCK_H=bh, BLOCK_K=bk, PRECISION=prec, num_warps=launch[0], num_stages=launch[1],
        )
    t_first = t_len - 1 if reverse else 0
    d_h0 = dh + dg[t_first].float() @ w.float()  # (B, H): the first processed step's recurrent gradient
    h_prev = hs[:t_len].flip(0) if reverse else hs[:t_len]  # (T, B, H): state entering time step t
    d_w = dg.reshape(t_len * b, g).t().mm(h_prev.reshape(t_len * b, h))  # (G, H), one matmul for all steps
    return dg, d_w.to(w.dtype), d_h0, dc
