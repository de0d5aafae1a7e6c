"""Input embeddings: token + learned position (+ optional segment), optional LayerNorm, dropout."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from bigmodel_fast.nn.dropout import Dropout


class Embeddings(nn.Module):
    """Sum of word, learned absolute position and (optionally) segment embeddings.

    Args:
        vocab_size: number of token ids.
        hidden_size: embedding width E.
        max_position: number of learned positions; longer inputs raise ``ValueError``.
        type_vocab_size: number of segment ids; 0 disables segment embeddings (GPT).
        dropout: dropout applied after the sum (and LayerNorm).
        layer_norm: apply LayerNorm after the sum (BERT) or not (GPT, pre-LN blocks normalise).
        layer_norm_eps: LayerNorm epsilon.
        position_offset: first position row used by real tokens (RoBERTa: ``pad_id + 1``; default 0). When > 0
            and no ``position_ids`` are given, a token's position is ``position_offset`` + its index among the
            non-pad tokens of its row, and pad tokens (``input_ids == pad_id``) get ``position_offset - 1``
            (RoBERTa's ``create_position_ids_from_input_ids``); explicit 0-based ``position_ids`` are shifted by
            ``position_offset``.
        pad_id: the padding token id (read only when ``position_offset > 0``).
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        max_position: int,
        type_vocab_size: int = 0,
        dropout: float = 0.0,
        layer_norm: bool = True,
        layer_norm_eps: float = 1e-12,
        position_offset: int = 0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if not 0 <= position_offset < max_position:
            raise ValueError(f"Embeddings: position_offset={position_offset} must be in "
                             f"[0, max_position={max_position})")
        self.max_position = max_position
        self.position_offset = position_offset
        self.pad_id = pad_id
        self.word_embeddings = nn.Embedding(vocab_size, hidden_size)
        self.position_embeddings = nn.Embedding(max_position, hidden_size)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden_size) if type_vocab_size > 0 else None
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps) if layer_norm else None
        self.dropout = Dropout(dropout)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Optional[Tensor] = None,
        position_ids: Optional[Tensor] = None,
    ) -> Tensor:
        """Embed ``input_ids`` (B, S) long -> (B, S, E).

        ``token_type_ids`` (B, S) defaults to all zeros; ``position_ids`` (B, S) or (S,) defaults to 0..S-1
        (pass explicit ids to restart positions at packed document boundaries).
        """
        if input_ids.dim() != 2:
            raise ValueError("Embeddings: input_ids must be (B, S); got shape " + str(input_ids.shape))
        seq_len = input_ids.shape[1]
        offset = self.position_offset
        if position_ids is None:
            if seq_len > self.max_position - offset:
                raise ValueError(
                    "Embeddings: sequence length " + str(seq_len) + " exceeds max_position="
                    + str(self.max_position) + " - position_offset=" + str(offset)
                    + " (config fields max_position, position_offset); truncate the input or raise it"
                )
            if offset > 0:  # RoBERTa: real tokens count from offset, pads sit at offset - 1
                real = (input_ids != self.pad_id).to(torch.long)  # (B, S)
                position_ids = torch.cumsum(real, dim=1) * real + (offset - 1)  # (B, S)
            else:
                position_ids = torch.arange(seq_len, device=input_ids.device)  # (S,)
        elif offset > 0:
            position_ids = position_ids + offset
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)  # (B, S, E)
        tte = self.token_type_embeddings
        if tte is not None:
            if token_type_ids is None:
                x = x + tte.weight[0]  # segment 0 everywhere, (E,) broadcast
            else:
                x = x + tte(token_type_ids)  # (B, S, E)
        elif token_type_ids is not None:
            raise ValueError("Embeddings: token_type_ids given but this model has no segment embeddings "
                             "(type_vocab_size=0)")
        norm = self.norm
        if norm is not None:
            x = norm(x)
        return self.dropout(x)
