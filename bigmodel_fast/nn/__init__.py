"""Neural-network building blocks (dropout, embeddings, attention, MLP, transformer block and stack, LSTM, output
heads and losses, init). Nothing here imports :mod:`bigmodel_fast.models`."""

from __future__ import annotations

from bigmodel_fast.nn.dropout import Dropout
from bigmodel_fast.nn.embeddings import Embeddings
from bigmodel_fast.nn.heads import IGNORE_INDEX, TiedLMHead, last_token, lm_outputs, masked_cross_entropy
from bigmodel_fast.nn.init import init_weights
from bigmodel_fast.nn.lstm import LSTM
from bigmodel_fast.nn.transformer import MLP, Block, MultiHeadAttention, TransformerStack, key_padding_mask

__all__ = ["Dropout", "Embeddings", "IGNORE_INDEX", "LSTM", "MLP", "Block", "MultiHeadAttention", "TiedLMHead",
           "TransformerStack", "init_weights", "key_padding_mask", "last_token", "lm_outputs", "masked_cross_entropy"]
