"""Memory-lean LM loss: the vocabulary projection and the cross-entropy fused over chunks of tokens.

``loss = mean_i CE(hidden[i] @ weight.T, targets[i])`` over the targets that are not ``ignore_index`` (the count
clamped to 1, so an all-ignored batch gives 0 with zero gradients), computed without ever holding the full
(N, V) logits. :func:`linear_cross_entropy` walks the N tokens in chunks of ``chunk_size`` rows; per chunk it
forms the (chunk, V) logits, takes the fp32 log-sum-exp and the target logit, and right there turns the logits
into their gradient ``(softmax - onehot) / count`` and multiplies it into ``grad_hidden`` (N, E) and
``grad_weight`` (V, E, fp32 accumulator). The backward only scales those two stored tensors, in place, by the
incoming gradient (so one graph supports ONE backward: ``retain_graph=True`` and a second backward raise
autograd's in-place error). Peak extra memory is a few (chunk, V) buffers plus the two gradients, instead of the
plain path's (N, V) logits, their log-softmax and their gradients (the "fused linear cross entropy" idea).

Autocast: when autocast is on for the tensors' device, both matmuls run in the autocast dtype (as ``F.linear``
does under autocast) and the softmax / CE in fp32 (as :func:`linear_cross_entropy_reference` does);
``grad_weight`` is accumulated in fp32 over the chunks; the gradients come back in the input dtypes.

:func:`linear_cross_entropy_reference` is the plain path (``F.linear`` + masked fp32 cross-entropy): the oracle of
the tests and what TorchScript / ``torch.export`` code should call (an ``autograd.Function`` is not scriptable).

Layering: this module imports nothing from the package above ``ops``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["DEFAULT_CHUNK_BYTES", "default_chunk_size", "linear_cross_entropy", "linear_cross_entropy_reference"]

DEFAULT_CHUNK_BYTES = 32 << 20  # fp32 bytes of one (chunk, V) logits block: 166 rows at V = 50,257
_REDUCTIONS = ("mean", "sum")


def default_chunk_size(n_tokens: int, vocab_size: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Rows per chunk so that one fp32 (chunk, V) block stays near ``chunk_bytes``: in [1, max(n_tokens, 1)]."""
    rows = max(1, chunk_bytes // (4 * max(vocab_size, 1)))
    return max(1, min(rows, n_tokens))


def _check(hidden: Tensor, weight: Tensor, targets: Tensor, reduction: str) -> None:
    """ValueError naming the argument that is not shaped / typed as :func:`linear_cross_entropy` expects."""
    if hidden.dim() != 2:
        raise ValueError(f"linear_cross_entropy: hidden must be (N, E), got shape {tuple(hidden.shape)}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[1]:
        raise ValueError(f"linear_cross_entropy: weight must be (V, {hidden.shape[1]}), got {tuple(weight.shape)}")
    if targets.shape != hidden.shape[:1]:
        raise ValueError(f"linear_cross_entropy: targets must be ({hidden.shape[0]},), got {tuple(targets.shape)}")
    if targets.dtype != torch.long:
        raise ValueError(f"linear_cross_entropy: targets must be torch.long, got {targets.dtype}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"linear_cross_entropy: reduction must be 'mean' or 'sum', got {reduction!r}")


def linear_cross_entropy_reference(hidden: Tensor, weight: Tensor, targets: Tensor, ignore_index: int = -100,
                                   reduction: str = "mean") -> Tensor:
    """The plain path: ``F.linear(hidden, weight)`` (N, V) then fp32 cross-entropy over targets != ignore_index.

    hidden (N, E), weight (V, E), targets (N,) long -> 0-d fp32: the sum of the counted tokens' CE, divided by
    their count clamped to 1 for ``reduction="mean"``. Scriptable; no host sync.
    """
    _check(hidden, weight, targets, reduction)
    logits = F.linear(hidden, weight)  # (N, V)
    total = F.cross_entropy(logits.to(_acc_dtype(logits.dtype)), targets, ignore_index=ignore_index, reduction="sum")
    if reduction == "sum":
        return total
    return total / (targets != ignore_index).sum().clamp_min(1)


def _compute_dtype(t: Tensor) -> torch.dtype:
    """The matmul dtype: the autocast dtype when autocast is on for ``t``'s device (and ``t`` is floating), else
    ``t``'s own dtype."""
    dev = t.device.type
    if t.is_floating_point() and torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return t.dtype


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """The softmax / CE dtype: fp32 for half types and fp32, fp64 for fp64 (never below fp32)."""
    return torch.promote_types(dtype, torch.float32)


def _chunk_loss(logits: Tensor, tgt: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(c, V) logits in any float dtype, safe targets (c,) (ignored ones set to 0), valid (c,) bool -> (``e``
    (c, V) = exp(logits - row max), row sums of ``e`` (c,), per-row CE (c,), 0 where ignored), in
    :func:`_acc_dtype`. ``e`` overwrites ``logits`` when that is already fp32 / fp64 (else it overwrites the
    upcast copy): no (c, V) temporary beyond that one buffer (``torch.logsumexp`` would allocate another)."""
    lf = logits.to(_acc_dtype(logits.dtype))
    picked = lf.gather(1, tgt[:, None])[:, 0]  # (c,) target logits, read before lf is overwritten
    top = lf.amax(dim=1)  # (c,)
    e = lf.sub_(top[:, None]).exp_()  # (c, V) in place
    sums = e.sum(dim=1)  # (c,) in [1, V]
    rows = torch.where(valid, top + sums.log() - picked, torch.zeros_like(top))
    return e, sums, rows


class _LinearCrossEntropy(torch.autograd.Function):
    """Chunked projection + CE whose forward also computes the gradients (see the module docstring)."""

    @staticmethod
    def forward(ctx, hidden: Tensor, weight: Tensor, targets: Tensor, ignore_index: int, chunk_size: int,
                mean: bool, compute_dtype: torch.dtype, need_h: bool, need_w: bool) -> Tensor:
        n = hidden.shape[0]
        valid_all = targets != ignore_index  # (N,)
        acc = _acc_dtype(compute_dtype)
        count = valid_all.sum().clamp_min(1).to(acc)  # 0-d, on device: no host sync
        safe_all = torch.where(valid_all, targets, torch.zeros_like(targets))  # (N,)
        w = weight.to(compute_dtype)  # (V, E), a copy only under autocast
        total = torch.zeros((), dtype=acc, device=hidden.device)
        grad_h = torch.empty_like(hidden) if need_h else None  # (N, E), the input dtype
        grad_w = torch.zeros(weight.shape, dtype=_acc_dtype(weight.dtype), device=weight.device) if need_w else None
        with torch.autocast(hidden.device.type, enabled=False):
            for start in range(0, n, chunk_size):
                stop = min(start + chunk_size, n)
                h = hidden[start:stop].to(compute_dtype)  # (c, E)
                tgt, valid = safe_all[start:stop], valid_all[start:stop]
                logits = h @ w.t()  # (c, V) compute dtype
                e, sums, rows = _chunk_loss(logits, tgt, valid)
                total = total + rows.sum()
                if not (need_h or need_w):
                    continue
                # d(sum CE)/d logits = softmax - onehot, zero on ignored rows, built in place in e. The block stays
                # unnormalised (|x| <= 1) in the compute dtype; 1/count is applied in fp32 after the matmuls, so
                # fp16 does not flush it.
                keep = valid.to(acc)  # (c,)
                probs = e.mul_((keep / sums)[:, None])  # (c, V) softmax on counted rows, 0 elsewhere
                probs.scatter_add_(1, tgt[:, None], -keep[:, None])
                dlogits = probs.to(compute_dtype)  # (c, V)
                if need_h:
                    gh = (dlogits @ w).to(acc)  # (c, E)
                    grad_h[start:stop] = gh / count if mean else gh
                if need_w:  # (V, E), fp32 accumulation across chunks; no (V, E) temporary when dtypes match
                    if grad_w.dtype == compute_dtype:
                        grad_w.addmm_(dlogits.t(), h)
                    else:
                        grad_w += dlogits.t() @ h
        if need_w and mean:
            grad_w /= count
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return total / count if mean else total

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        # scaled in place: no second (V, E) buffer, and the result becomes ``.grad`` without a copy. A second
        # backward through the same graph (retain_graph=True) therefore raises autograd's "modified by an inplace
        # operation" error instead of returning twice-scaled gradients.
        grad_h, grad_w = ctx.saved_tensors
        gh = None if grad_h is None else grad_h.mul_(grad_out.to(grad_h.dtype))
        gw = None if grad_w is None else grad_w.mul_(grad_out).to(ctx.weight_dtype)
        return gh, gw, None, None, None, None, None, None, None


def linear_cross_entropy(hidden: Tensor, weight: Tensor, targets: Tensor, ignore_index: int = -100,
                         chunk_size: Optional[int] = None, reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``hidden @ weight.T`` against ``targets`` without materialising the (N, V) logits.

    Args:
        hidden: (N, E) float, e.g. the flattened (B * S, E) final hidden states.
        weight: (V, E) projection (the tied word embeddings or an LM head's own weight; no bias).
        targets: (N,) long, ``ignore_index`` = not counted.
        ignore_index: the target value that counts in no loss.
        chunk_size: tokens per chunk; default :func:`default_chunk_size` (about 32 MB of fp32 logits per chunk).
        reduction: ``"mean"`` (default; sum over counted tokens / their count clamped to 1, what the trainer uses:
            the count is ``(targets != ignore_index).sum()``) or ``"sum"``.

    Returns:
        0-d fp32 loss, equal to :func:`linear_cross_entropy_reference` (same value and gradients up to float
        summation order). With grad disabled, or when neither ``hidden`` nor ``weight`` needs grad, only the loss is
        computed (still chunked).
    """
    _check(hidden, weight, targets, reduction)
    if chunk_size is None:
        chunk_size = default_chunk_size(hidden.shape[0], weight.shape[0])
    elif chunk_size < 1:
        raise ValueError(f"linear_cross_entropy: chunk_size must be >= 1, got {chunk_size}")
    grad_on = torch.is_grad_enabled()
    return _LinearCrossEntropy.apply(hidden, weight, targets, ignore_index, int(chunk_size), reduction == "mean",
                                     _compute_dtype(hidden), grad_on and hidden.requires_grad,
                                     grad_on and weight.requires_grad)
