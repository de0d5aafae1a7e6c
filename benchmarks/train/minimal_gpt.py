"""A nanoGPT-style minimal GPT in plain PyTorch: the "what a careful user writes by hand" contender of
``bench_pretrain_step.py``.

Pre-LN blocks (``x + attn(ln1(x))``, ``x + mlp(ln2(x))``), one fused qkv ``Linear``, attention through
``F.scaled_dot_product_attention(is_causal=True)``, a GELU MLP (4E by default), a final LayerNorm and an LM head tied
to the token embedding; the loss is ``F.cross_entropy`` over every position. Learned absolute positions, biases on
every Linear (as GPT-2 and bmf's GPT), so with the same sizes the parameter count equals bmf's ``GPTForCausalLM``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class MinimalGPTConfig:
    """Sizes of :class:`MinimalGPT`: vocabulary V, width E, layers L, heads H, positions S_max, MLP width I."""

    vocab_size: int = 8000
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    max_position: int = 512
    intermediate_size: int = 1024
    dropout: float = 0.1  # embeddings and residual branches
    attn_dropout: float = 0.0  # attention probabilities (bmf's packed path applies none)
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(f"hidden_size={self.hidden_size} must be divisible by num_heads={self.num_heads}")


class CausalSelfAttention(nn.Module):
    """(B, S, E) -> (B, S, E): fused qkv, SDPA with ``is_causal=True``, output projection."""

    def __init__(self, cfg: MinimalGPTConfig):
        super().__init__()
        self.h = cfg.num_heads
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.attn_dropout = cfg.attn_dropout

    def forward(self, x: Tensor) -> Tensor:
        b, s, e = x.shape
        q, k, v = self.qkv(x).split(e, dim=2)  # 3 x (B, S, E)
        q, k, v = (t.view(b, s, self.h, e // self.h).transpose(1, 2) for t in (q, k, v))  # (B, H, S, D)
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, H, S, D)
        return self.proj(y.transpose(1, 2).reshape(b, s, e))


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, cfg: MinimalGPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.fc = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.out = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))


class MinimalGPT(nn.Module):
    """Token + position embeddings -> L pre-LN blocks -> LayerNorm -> tied LM head.

    ``forward(idx (B, S) long, targets (B, S) long or None) -> (logits (B, S, V), loss or None)``; ``targets`` are
    already shifted (``targets[:, t]`` is the token after ``idx[:, t]``), -100 ignored.
    """

    def __init__(self, cfg: MinimalGPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.wpe = nn.Embedding(cfg.max_position, cfg.hidden_size)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.ln_f = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith("proj.weight") or name.endswith("out.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.num_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        s = idx.shape[1]
        pos = torch.arange(s, device=idx.device)  # (S,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, S, E)
        for block in self.blocks:
            x = block(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)  # (B, S, V), tied head
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return logits, loss
