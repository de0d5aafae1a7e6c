"""Neural-network building blocks (embeddings, attention, MLP, transformer block and stack, init)."""

from __future__ import annotations

from bigmodel_fast.nn.embeddings import Embeddings
from bigmodel_fast.nn.init import init_weights
from bigmodel_fast.nn.transformer import MLP, Block, MultiHeadAttention, TransformerStack, key_padding_mask

__all__ = ["Embeddings", "MLP", "Block", "MultiHeadAttention", "TransformerStack", "init_weights", "key_padding_mask"]
