"""``LSTM``: a drop-in for ``torch.nn.LSTM`` that runs through ``bigmodel_fast.ops.lstm`` (Triton on CUDA)."""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from bigmodel_fast.ops.lstm import lstm as lstm_op

__all__ = ["LSTM"]


class LSTM(nn.Module):
    """Multi-layer (bidirectional) LSTM with ``torch.nn.LSTM``'s constructor, parameters and outputs.

    Same constructor arguments (``input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False``, plus ``device``/``dtype`` and ``backend``; ``proj_size`` must be 0), same
    parameter names and shapes (``weight_ih_l{k}`` (4H, I or D*H), ``weight_hh_l{k}`` (4H, H), ``bias_ih_l{k}``,
    ``bias_hh_l{k}`` (4H,), ``..._reverse`` for the backward direction), same initialisation
    (U(-1/sqrt(H), 1/sqrt(H))), so an ``nn.LSTM`` state dict loads as is (and back).

    ``forward(input, hx=None, lengths=None) -> (output, (h_n, c_n))`` as ``nn.LSTM``: ``input`` is (T, B, I)
    (``(B, T, I)`` with ``batch_first``), (T, I) unbatched, or a ``PackedSequence`` (then ``output`` is a
    ``PackedSequence`` with the same layout). ``hx = (h0, c0)``, each (num_layers*D, B, H). ``lengths`` (B,) is an
    extension for right-padded batches: padded steps do not change the state and their output is 0 (the result
    equals packing with ``pack_padded_sequence`` and unpacking). Each recurrence runs through
    :func:`bigmodel_fast.ops.lstm.lstm_recurrence`; ``backend`` (``"triton"``, ``"reference"``, ``"auto"`` or None)
    is its ``backend=`` argument, None leaving the choice to ``use_backends`` / ``BMF_LSTM`` / the device, as for
    attention (:mod:`bigmodel_fast.ops.backend`); TorchScript uses the reference.
    Scriptable with ``torch.jit.script`` for Tensor inputs.
    """

    __constants__ = ["input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional"]
    __jit_unused_properties__ = ["all_weights"]

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        backend: Optional[str] = None,
    ) -> None:
        super().__init__()
        if proj_size != 0:
            raise ValueError("bigmodel_fast.nn.LSTM does not support proj_size (LSTM with projections); got "
                             f"proj_size={proj_size}")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be an int > 0, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be an int > 0, got {num_layers!r}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = 0
        self.backend = backend
        factory = {"device": device, "dtype": dtype}
        num_dirs = 2 if bidirectional else 1
        names: List[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * num_dirs
            for d in range(num_dirs):
                suffix = f"_l{layer}" + ("_reverse" if d == 1 else "")
                shapes = [("weight_ih", (4 * hidden_size, layer_input)), ("weight_hh", (4 * hidden_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (4 * hidden_size,)), ("bias_hh", (4 * hidden_size,))]
                for name, shape in shapes:
                    setattr(self, name + suffix, nn.Parameter(torch.empty(shape, **factory)))
                    names.append(name + suffix)
        self._flat_weights_names = names
        self._flat_weights = [getattr(self, n) for n in names]
        self.reset_parameters()

    def __setattr__(self, name, value) -> None:
        # keep the flat list pointing at the live parameters when one is replaced (load_state_dict(assign=True))
        if hasattr(self, "_flat_weights_names") and name in self._flat_weights_names:
            idx = self._flat_weights_names.index(name)
            self._flat_weights[idx] = value
        super().__setattr__(name, value)

    def _apply(self, fn, recurse=True):
        ret = super()._apply(fn, recurse)
        self._flat_weights = [getattr(self, n) for n in self._flat_weights_names]
        return ret

    def reset_parameters(self) -> None:
        """``nn.LSTM``'s init: every parameter ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for w in self.parameters():
            nn.init.uniform_(w, -stdv, stdv)

    @property
    def all_weights(self) -> List[List[Tensor]]:
        per = 4 if self.bias else 2
        return [self._flat_weights[i:i + per] for i in range(0, len(self._flat_weights), per)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    @torch.jit.unused
    def _forward_packed(
        self, packed: PackedSequence, hx: Optional[Tuple[Tensor, Tensor]]
    ) -> Tuple[PackedSequence, Tuple[Tensor, Tensor]]:
        padded, lengths = pad_packed_sequence(packed)  # (T, B, I) in the caller's batch order, lengths (B,) cpu
        output, h_n, c_n = self._run(padded, hx, lengths)  # (T, B, D*H)
        sorted_idx = packed.sorted_indices
        if sorted_idx is not None:
            output = output.index_select(1, sorted_idx.to(output.device))
            lengths = lengths.index_select(0, sorted_idx.to(lengths.device))
        data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), (h_n, c_n)

    def _run(
        self, x: Tensor, hx: Optional[Tuple[Tensor, Tensor]], lengths: Optional[Tensor]
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Time-major batched input (T, B, I) -> (output, h_n, c_n)."""
        if x.shape[-1] != self.input_size:
            raise ValueError("LSTM: input.size(-1) must be equal to input_size. Expected " + str(self.input_size)
                             + ", got " + str(x.shape[-1]))
        h0: Optional[Tensor] = None
        c0: Optional[Tensor] = None
        if hx is not None:
            h0, c0 = hx
        if lengths is not None:
            if lengths.dim() != 1 or lengths.shape[0] != x.shape[1]:
                raise ValueError("LSTM: lengths must be a 1-D tensor of the batch size " + str(x.shape[1])
                                 + "; got shape " + str(lengths.shape))
        return lstm_op(x, self._flat_weights, h0, c0, lengths, self.num_layers, self.hidden_size,
                       self.bidirectional, self.bias, self.dropout, self.training, self.backend)

    def forward(
        self,
        input: Tensor,
        hx: Optional[Tuple[Tensor, Tensor]] = None,
        lengths: Optional[Tensor] = None,
    ) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
        """Run the stack; see the class docstring. Returns ``(output, (h_n, c_n))``."""
        if not torch.jit.is_scripting():
            if isinstance(input, PackedSequence):
                if lengths is not None:
                    raise ValueError("LSTM: pass lengths or a PackedSequence, not both")
                return self._forward_packed(input, hx)
        unbatched = input.dim() == 2
        if input.dim() not in (2, 3):
            raise ValueError("LSTM: expected input of 2 (unbatched) or 3 dimensions, got " + str(input.dim()))
        if unbatched:
            x = input.unsqueeze(1)  # (T, 1, I)
            if hx is not None:
                hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        elif self.batch_first:
            x = input.transpose(0, 1)  # (T, B, I)
        else:
            x = input
        output, h_n, c_n = self._run(x, hx, lengths)  # (T, B, D*H)
        if unbatched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        if self.batch_first:
            output = output.transpose(0, 1)  # (B, T, D*H)
        return output, (h_n, c_n)
