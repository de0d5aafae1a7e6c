"""Transformer building blocks: multi-head attention, MLP, pre-/post-LN block, padding-mask helper, and the
embeddings -> blocks -> final-norm stack shared by the BERT and GPT backbones.

All attention goes through :func:`bigmodel_fast.ops.attention` so the backend switch (``BMF_ATTENTION``)
applies everywhere. Everything here is TorchScript-scriptable.

Packed batches: every forward also takes ``cu_seqlens`` ((N + 1,) int32/int64 cumulative lengths over the flattened
``B * S`` tokens, as the loaders emit) and ``max_seqlen``; attention then runs through
:func:`bigmodel_fast.ops.attention.varlen_attention`, so a token never attends across a sequence (document)
boundary, and ``attention_mask`` is not used (put padding in its own sequence). The packed path is eager-only
(under TorchScript it raises) and applies no attention-probability dropout. With the ``sdpa`` backend (the CPU
default) :class:`TransformerStack` turns ``cu_seqlens`` into one (B, 1, S, S) block mask per forward
(:func:`packed_block_mask`) and every layer runs one dense SDPA call with it instead of the per-sequence loop of
``varlen_attention``: the same math, documents still isolated (``packed_dense = False`` turns it off).
"""

from __future__ import annotations

from typing import Optional, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bigmodel_fast.nn.embeddings import Embeddings
from bigmodel_fast.nn.init import init_weights
from bigmodel_fast.ops.attention import attention, attention_backend, varlen_attention

__all__ = ["MultiHeadAttention", "MLP", "Block", "StackConfig", "TransformerStack", "activation", "key_padding_mask",
           "packed_attention", "packed_block_mask"]


def activation(x: Tensor, name: str) -> Tensor:
    """``name`` applied to x: ``"gelu"`` (exact erf), ``"gelu_new"`` (tanh approximation, GPT-2) or ``"relu"``."""
    if name == "gelu":
        return F.gelu(x)
    if name == "gelu_new":
        return F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu(x)
    raise ValueError("unknown activation '" + name + "'; expected gelu, gelu_new or relu")


class StackConfig(Protocol):
    """What :class:`TransformerStack` reads from its config (``bigmodel_fast.models.ModelConfig`` has it all)."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: Optional[int]
    intermediate_size: int
    max_position: int
    dropout: float
    layer_norm_eps: float
    initializer_range: float

    def use_pre_ln(self) -> bool: ...


def key_padding_mask(attention_mask: Optional[Tensor]) -> Optional[Tensor]:
    """Turn a (B, S) token mask (True/1 = real token) into the (B, 1, 1, S) bool key mask used by attention.

    ``None`` stays ``None`` (attend everywhere). Integer/float masks are accepted (non-zero = real token).
    """
    if attention_mask is None:
        return None
    if attention_mask.dim() != 2:
        raise ValueError("attention_mask must be (B, S) with True = real token; got shape " + str(attention_mask.shape))
    mask = attention_mask if attention_mask.dtype == torch.bool else attention_mask != 0
    return mask[:, None, None, :]  # (B, 1, 1, S)


UNPAD_MIN_SHARE = 0.1  # unpad a training batch when at least this share of its positions is padding


def padded_token_index(mask: Tensor) -> Optional[Tensor]:
    """(T,) long flat indices of the real tokens of a (B, 1, 1, S) key-padding mask, or None when less than
    :data:`UNPAD_MIN_SHARE` of the B * S positions is padding (not worth the gathers). One host sync."""
    flat = mask.reshape(-1)
    index = flat.nonzero().squeeze(1)  # the one host sync: its length is the real-token count
    if index.numel() == 0 or index.numel() > (1.0 - UNPAD_MIN_SHARE) * flat.numel():
        return None
    return index


def _cpu_half(x: Tensor) -> bool:
    """True for a CPU forward in bf16 / fp16 (autocast or half inputs). Unpadding is skipped there: oneDNN's half
    CPU matmuls build a kernel per new row count, and a new unpadded row count every batch cost more than the
    padding saved (BERT small, bf16 on a 2-core AMX Xeon: 233 ms per step unpadded vs 178 ms padded; rounding the
    count up to a multiple of 64: 200 ms)."""
    return x.device.type == "cpu" and (x.dtype != torch.float32 or torch.is_autocast_enabled("cpu"))


def packed_max_seqlen(cu_seqlens: Tensor) -> int:
    """Longest sequence of a packed batch, from ``cu_seqlens`` (N + 1,); one host sync on CUDA."""
    return int((cu_seqlens[1:] - cu_seqlens[:-1]).max())


PACKED_MASK_MAX_ELEMENTS = 1 << 26  # largest B * S * S block mask built for packed rows (64 MiB of bool)


def packed_block_mask(cu_seqlens: Tensor, batch: int, seq_len: int, max_seqlen: Optional[int] = None,
                      causal: bool = False) -> Optional[Tensor]:
    """(B, 1, S, S) bool, True where query and key lie in the same sequence of ``cu_seqlens`` (N + 1,) over the
    flattened B * S tokens (and, when ``causal``, the key is not after the query), or None when some sequence
    crosses a row boundary or the mask would exceed :data:`PACKED_MASK_MAX_ELEMENTS` (then the caller keeps the
    per-sequence ``varlen_attention``).

    Dense attention with this mask computes exactly what ``varlen_attention`` does: a token sees only the tokens
    of its own sequence (the earlier ones when causal). Built once per forward and shared by every layer.
    Raises ValueError for ``cu_seqlens`` that do not start at 0, end at B * S and never decrease, or when
    ``max_seqlen`` is below the longest sequence (the checks of ``varlen_attention``). One host sync.
    """
    total = batch * seq_len
    if batch * seq_len * seq_len > PACKED_MASK_MAX_ELEMENTS:
        return None
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2:
        raise ValueError(f"cu_seqlens must be 1-D with N + 1 >= 2 offsets; got shape {tuple(cu_seqlens.shape)}")
    cu = cu_seqlens.to(torch.long)
    lengths = cu[1:] - cu[:-1]  # (N,)
    rows = torch.arange(0, total + 1, seq_len, device=cu.device)  # (B + 1,) row boundaries
    # one sync for every check: [starts at 0, ends at T, non-decreasing, row boundaries all present, longest]
    facts = torch.stack([cu[0] == 0, cu[-1] == total, (lengths >= 0).all(), torch.isin(rows, cu).all()])
    checks = torch.cat([facts.to(torch.long), lengths.max().view(1)]).tolist()
    if not all(checks[:3]):
        raise ValueError(f"cu_seqlens must start at 0, be non-decreasing and end at B * S = {total}; got "
                         f"{cu_seqlens[:8].tolist()}{'...' if cu.numel() > 8 else ''} (last={int(cu[-1])})")
    if max_seqlen is not None and checks[4] > max_seqlen:
        raise ValueError(f"max_seqlen={max_seqlen} but cu_seqlens holds a sequence of {checks[4]}")
    if not checks[3]:
        return None
    seg = torch.searchsorted(cu, torch.arange(total, device=cu.device), right=True).view(batch, seq_len)  # (B, S)
    mask = seg[:, :, None] == seg[:, None, :]  # (B, S, S)
    if causal:
        mask &= torch.ones(seq_len, seq_len, dtype=torch.bool, device=cu.device).tril()
    return mask.unsqueeze(1)  # (B, 1, S, S)


def packed_attention(qkv: Tensor, num_heads: int, num_kv_heads: int, head_dim: int, cu_seqlens: Tensor,
                     max_seqlen: Optional[int], causal: bool) -> Tensor:
    """Fused qkv (B, S, (H + 2 H_kv) D) of packed sequences -> (B, S, H D) through ``varlen_attention`` (eager only).

    ``cu_seqlens`` (N + 1,) covers the flattened B * S tokens; ``max_seqlen`` is computed from it when None.
    """
    b, s, _ = qkv.shape
    h, h_kv, d = num_heads, num_kv_heads, head_dim
    flat = qkv.reshape(b * s, (h + 2 * h_kv) * d)  # (T, ...)
    q = flat[:, : h * d].reshape(b * s, h, d)  # (T, H, D)
    k = flat[:, h * d : (h + h_kv) * d].reshape(b * s, h_kv, d)  # (T, H_kv, D)
    v = flat[:, (h + h_kv) * d :].reshape(b * s, h_kv, d)
    if max_seqlen is None:
        max_seqlen = packed_max_seqlen(cu_seqlens)
    y = varlen_attention(q, k, v, cu_seqlens, int(max_seqlen), causal=causal)  # (T, H, D)
    return y.reshape(b, s, h * d)


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with a fused QKV projection and optional grouped-query heads.

    Args:
        hidden_size: model width E (``E % num_heads == 0``).
        num_heads: query heads H; head dim D = E / H.
        num_kv_heads: key/value heads H_kv (``H % H_kv == 0``), default H.
        dropout: attention-probability dropout (training only).
        causal: causal self-attention (decoder).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        num_kv_heads: Optional[int] = None,
        dropout: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if hidden_size % num_heads != 0:
            raise ValueError(f"hidden_size={hidden_size} must be divisible by num_heads={num_heads}")
        if kv_heads <= 0 or num_heads % kv_heads != 0:
            raise ValueError(f"num_heads={num_heads} must be a multiple of num_kv_heads={kv_heads}")
        self.num_heads = num_heads
        self.num_kv_heads = kv_heads
        self.head_dim = hidden_size // num_heads
        self.causal = causal
        self.dropout_p = float(dropout)
        self.qkv = nn.Linear(hidden_size, (num_heads + 2 * kv_heads) * self.head_dim)
        self.out = nn.Linear(hidden_size, hidden_size)

    def forward(
        self,
        x: Tensor,
        attn_mask: Optional[Tensor] = None,
        cu_seqlens: Optional[Tensor] = None,
        max_seqlen: Optional[int] = None,
        token_index: Optional[Tensor] = None,
    ) -> Tensor:
        """x (B, S, E), attn_mask bool broadcastable to (B, H, S, S) (True = attend) -> (B, S, E).

        With ``cu_seqlens`` (packed sequences over the flattened B * S tokens) attention stays inside each sequence:
        through :func:`~bigmodel_fast.ops.attention.varlen_attention` when ``attn_mask`` is None, else ``attn_mask``
        must be that packing's (B, 1, S, S) block mask, causal part included (:func:`packed_block_mask` with
        ``causal=self.causal``), and one dense attention call per batch runs with it. Neither applies attention dropout.

        With ``token_index`` ((T,) long, the flat positions of the real tokens of a padded (B, S) batch whose
        key-padding mask is ``attn_mask`` (B, 1, 1, S)) x is (1, T, E), only the real tokens: the projections run on
        those T rows and only attention sees the padded layout (:class:`TransformerStack` unpadding).
        """
        qkv = self.qkv(x)  # (B, S, (H + 2 H_kv) D), or (1, T, ...) with token_index
        if token_index is not None and attn_mask is not None:
            b, s = attn_mask.shape[0], attn_mask.shape[-1]
            qkv = qkv.new_zeros(b * s, qkv.shape[-1]).index_copy(0, token_index, qkv[0]).view(b, s, -1)
        b, s, _ = qkv.shape
        e = self.num_heads * self.head_dim
        p = self.dropout_p if self.training else 0.0
        if cu_seqlens is not None:
            if torch.jit.is_scripting():  # static under TorchScript: the eager-only branch below is not compiled
                raise RuntimeError("MultiHeadAttention: packed attention (cu_seqlens) is not supported in TorchScript")
            elif attn_mask is None:
                y = packed_attention(qkv, self.num_heads, self.num_kv_heads, self.head_dim, cu_seqlens, max_seqlen,
                                     self.causal)
                return self.out(y)
        q_dim = self.num_heads * self.head_dim
        kv_dim = self.num_kv_heads * self.head_dim
        q = qkv[:, :, :q_dim].view(b, s, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, S, D)
        k = qkv[:, :, q_dim : q_dim + kv_dim].view(b, s, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = qkv[:, :, q_dim + kv_dim :].view(b, s, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if cu_seqlens is not None:  # attn_mask: the packed block mask, causal included; no dropout (as varlen)
            y = attention(q, k, v, attn_mask, False, None, 0.0)  # (B, H, S, D)
        else:
            y = attention(q, k, v, attn_mask, self.causal, None, p)  # (B, H, S, D)
        y = y.transpose(1, 2).reshape(b, s, e)  # (B, S, E)
        if token_index is not None:
            y = y.reshape(b * s, e).index_select(0, token_index).unsqueeze(0)  # (1, T, E)
        return self.out(y)


class MLP(nn.Module):
    """Position-wise feed-forward: Linear(E, I) -> activation (default GELU, exact erf form) -> Linear(I, E).

    ``hidden_act``: ``"gelu"``, ``"gelu_new"`` (tanh approximation) or ``"relu"`` (:func:`activation`).
    """

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str = "gelu") -> None:
        super().__init__()
        activation(torch.zeros(1), hidden_act)  # ValueError now for an unknown name
        self.hidden_act = hidden_act
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        """(B, S, E) -> (B, S, E)."""
        return self.fc2(activation(self.fc1(x), self.hidden_act))


class Block(nn.Module):
    """One transformer layer, pre-LN or post-LN.

    pre-LN (GPT-2 style):   ``x = x + drop(attn(ln1(x)));  x = x + drop(mlp(ln2(x)))``
    post-LN (original BERT): ``x = ln1(x + drop(attn(x))); x = ln2(x + drop(mlp(x)))``

    Args:
        hidden_size, num_heads, intermediate_size: layer sizes.
        num_kv_heads: GQA key/value heads (default ``num_heads``).
        dropout: residual and attention dropout.
        causal: causal self-attention.
        pre_ln: pre-LN when True, post-LN when False.
        layer_norm_eps: LayerNorm epsilon.
        hidden_act: MLP activation (:func:`activation`).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        num_kv_heads: Optional[int] = None,
        dropout: float = 0.0,
        causal: bool = False,
        pre_ln: bool = True,
        layer_norm_eps: float = 1e-5,
        hidden_act: str = "gelu",
    ) -> None:
        super().__init__()
        self.pre_ln = pre_ln
        self.attn = MultiHeadAttention(hidden_size, num_heads, num_kv_heads, dropout, causal)
        self.mlp = MLP(hidden_size, intermediate_size, hidden_act)
        self.ln1 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.ln2 = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        attn_mask: Optional[Tensor] = None,
        cu_seqlens: Optional[Tensor] = None,
        max_seqlen: Optional[int] = None,
        token_index: Optional[Tensor] = None,
    ) -> Tensor:
        """x (B, S, E), attn_mask bool broadcastable to (B, H, S, S) -> (B, S, E); ``cu_seqlens``: packed rows;
        ``token_index``: x is (1, T, E), the real tokens of a padded batch (:meth:`MultiHeadAttention.forward`)."""
        if self.pre_ln:
            x = x + self.dropout(self.attn(self.ln1(x), attn_mask, cu_seqlens, max_seqlen, token_index))
            x = x + self.dropout(self.mlp(self.ln2(x)))
        else:
            x = self.ln1(x + self.dropout(self.attn(x, attn_mask, cu_seqlens, max_seqlen, token_index)))
            x = self.ln2(x + self.dropout(self.mlp(x)))
        return x


class TransformerStack(nn.Module):
    """Embeddings -> ``cfg.num_layers`` blocks -> final LayerNorm (pre-LN only): the backbone of BERT and GPT.

    Owns ``embeddings``, ``layers`` and ``final_norm``; these attribute names are the state-dict keys of every
    checkpoint (``backbone.embeddings.*``, ``backbone.layers.N.*``, ``backbone.final_norm.*``). Subclasses add
    their own modules after ``super().__init__`` and then call :meth:`reset_parameters` once, so every module is
    initialised by :func:`~bigmodel_fast.nn.init.init_weights` in registration order.

    Args:
        cfg: a :class:`StackConfig` (e.g. :class:`bigmodel_fast.models.ModelConfig`): sizes, ``dropout``,
            ``layer_norm_eps``, ``initializer_range`` and ``use_pre_ln()`` (pre-LN blocks plus a final LayerNorm,
            else post-LN); optional ``hidden_act`` (default ``"gelu"``), ``position_offset`` (default 0) and
            ``pad_id`` (read when ``position_offset > 0``, RoBERTa-style positions).
        causal: causal (decoder) rather than bidirectional (encoder) self-attention.
        type_vocab_size: number of segment ids; 0 = no segment embeddings.
        embedding_layer_norm: LayerNorm after the embedding sum.
    """

    __jit_ignored_attributes__ = ["cfg"]

    def __init__(self, cfg: StackConfig, causal: bool, type_vocab_size: int, embedding_layer_norm: bool) -> None:
        super().__init__()
        self.cfg = cfg
        pre_ln = cfg.use_pre_ln()
        offset = int(getattr(cfg, "position_offset", 0))
        self.embeddings = Embeddings(
            cfg.vocab_size, cfg.hidden_size, cfg.max_position, type_vocab_size, cfg.dropout,
            layer_norm=embedding_layer_norm, layer_norm_eps=cfg.layer_norm_eps,
            position_offset=offset, pad_id=int(getattr(cfg, "pad_id", 0)) if offset > 0 else 0,
        )
        act = str(getattr(cfg, "hidden_act", "gelu"))
        self.layers = nn.ModuleList(
            [
                Block(cfg.hidden_size, cfg.num_heads, cfg.intermediate_size, cfg.num_kv_heads, cfg.dropout,
                      causal=causal, pre_ln=pre_ln, layer_norm_eps=cfg.layer_norm_eps, hidden_act=act)
                for _ in range(cfg.num_layers)
            ]
        )
        self.final_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps) if pre_ln else None
        self.unpad = True  # training: run padded batches on their real tokens only (see forward)
        self.causal = causal
        self.packed_dense = True  # sdpa backend: packed rows run dense attention with a block mask (see forward)

    def reset_parameters(self) -> None:
        """(Re-)initialise every submodule with ``init_weights(m, cfg.initializer_range)``."""
        std = self.cfg.initializer_range
        self.apply(lambda m: init_weights(m, std))

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Optional[Tensor] = None,
        token_type_ids: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
        cu_seqlens: Optional[Tensor] = None,
        max_seqlen: Optional[int] = None,
    ) -> Tensor:
        """Embed and run the blocks.

        Args:
            input_ids: (B, S) long token ids.
            attention_mask: (B, S) bool, True = real token (pads are masked as keys); None = no padding.
            token_type_ids: (B, S) long segment ids, default 0; must be None without segment embeddings
                (``ValueError`` otherwise).
            position_ids: (B, S) or (S,) long, default 0..S-1 (restart them per document in packed rows).
            cu_seqlens: optional (N + 1,) int32/int64 cumulative sequence lengths over the flattened B * S tokens
                (packed documents); attention then never crosses a boundary and ``attention_mask`` is unused. With
                the ``sdpa`` backend and every row boundary in ``cu_seqlens`` (what the loaders emit) the layers run
                dense SDPA with one (B, 1, S, S) block mask (:func:`packed_block_mask`), else ``varlen_attention``.
            max_seqlen: longest sequence in ``cu_seqlens`` (computed from it when None).

        Returns:
            (B, S, E) final hidden states. In training mode a batch with padding (at least
            :data:`UNPAD_MIN_SHARE` of the positions) runs unpadded: embeddings, projections, MLPs and norms see
            only its T real tokens (attention alone is computed on the padded layout, with the same dropout), and
            the padded positions of the result are 0. Same math on every real token, less work; ``self.unpad =
            False`` turns it off. Eval mode, TorchScript, ``torch.compile`` / export tracing and bf16 / fp16 on CPU
            (see ``_cpu_half``) keep the padded path.
        """
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, S, E)
        mask = key_padding_mask(attention_mask) if cu_seqlens is None else None  # (B, 1, 1, S) or None
        if cu_seqlens is not None and max_seqlen is None:
            max_seqlen = packed_max_seqlen(cu_seqlens)  # once here, not one host sync per layer
        token_index: Optional[Tensor] = None
        if torch.jit.is_scripting():  # static under TorchScript: the eager-only unpadding below is not compiled
            pass
        else:
            if mask is not None and self.training and self.unpad and not torch.compiler.is_compiling() \
                    and not _cpu_half(x):
                token_index = padded_token_index(mask)
        if token_index is not None:
            b, s, e = x.shape
            x = x.reshape(b * s, e).index_select(0, token_index).unsqueeze(0)  # (1, T, E): real tokens only
        if torch.jit.is_scripting():  # static under TorchScript (packed attention raises there anyway)
            pass
        else:
            if cu_seqlens is not None and self.packed_dense and attention_backend(x.device) == "sdpa":
                # one dense SDPA call per layer with a block mask built once here, instead of a Python loop over
                # the documents (whose slice backward also rewrites the whole (T, H, D) gradient per document)
                mask = packed_block_mask(cu_seqlens, input_ids.shape[0], input_ids.shape[1], max_seqlen,
                                         self.causal)
        for layer in self.layers:
            x = layer(x, mask, cu_seqlens, max_seqlen, token_index)
        norm = self.final_norm
        if norm is not None:
            x = norm(x)
        if token_index is not None:
            b, s = input_ids.shape[0], input_ids.shape[1]
            x = x.new_zeros(b * s, x.shape[-1]).index_copy(0, token_index, x[0]).view(b, s, -1)
        return x
