"""``Dropout``: a drop-in ``torch.nn.Dropout`` that runs :func:`bigmodel_fast.ops.dropout.dropout` (a cheaper
mask on CPU) in eager mode and ``F.dropout`` under TorchScript."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bigmodel_fast.ops.dropout import dropout

__all__ = ["Dropout"]


class Dropout(nn.Dropout):
    """``nn.Dropout(p)`` with the same attributes and no state; x (any shape) -> x's shape."""

    def forward(self, x: Tensor) -> Tensor:
        if torch.jit.is_scripting():  # static under TorchScript: the eager-only branch below is not compiled
            return F.dropout(x, self.p, self.training, self.inplace)
        else:
            return dropout(x, self.p, self.training)
