"""Neural-network building blocks (embeddings, attention, MLP, transformer block and stack, LSTM, init)."""

from __future__ import annotations

from bigmodel_fast.nn.embeddings import Embeddings
from bigmodel_fast.nn.init import init_weights
from bigmodel_fast.nn.lstm import LSTM
from bigmodel_fast.nn.transformer import MLP, Block, MultiHeadAttention, TransformerStack, key_padding_mask

__all__ = ["Embeddings", "LSTM", "MLP", "Block", "MultiHeadAttention", "TransformerStack", "init_weights", "key_padding_mask"]
