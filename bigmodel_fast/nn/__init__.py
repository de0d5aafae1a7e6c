"""Neural-network building blocks (embeddings, attention, MLP, transformer block, init)."""

from __future__ import annotations

from bigmodel_fast.nn.embeddings import Embeddings
from bigmodel_fast.nn.init import init_weights
from bigmodel_fast.nn.transformer import MLP, Block, MultiHeadAttention, key_padding_mask

__all__ = ["Embeddings", "MLP", "Block", "MultiHeadAttention", "init_weights", "key_padding_mask"]
