"""Fixtures shared by the model tests: tiny configs, the right-padding check and a short overfitting loop."""

from __future__ import annotations

from typing import Callable, List

import pytest
import torch
from torch import Tensor, nn

from bigmodel_fast.models import ModelConfig

TINY_SIZES = dict(vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, max_position=32,
                  dropout=0.0)


def make_tiny_config(arch: str, **overrides) -> ModelConfig:
    """2 layers, width 32, 4 heads, vocab 64, 32 positions, no dropout; segment embeddings for bert only."""
    fields = dict(TINY_SIZES, arch=arch, type_vocab_size=2 if arch == "bert" else 0)
    fields.update(overrides)
    return ModelConfig(**fields)


def check_right_padding_invariance(model: nn.Module, ids: Tensor, n_pad: int) -> None:
    """Appending ``n_pad`` masked pad tokens to ``ids`` (1, S) leaves the S real positions' output unchanged."""
    s = ids.shape[1]
    padded = torch.cat([ids, torch.zeros(1, n_pad, dtype=torch.long)], dim=1)
    mask = torch.tensor([[True] * s + [False] * n_pad])
    torch.testing.assert_close(model(padded, mask)[:, :s], model(ids), atol=1e-5, rtol=1e-5)


def overfit_losses(model: nn.Module, compute_loss: Callable[[], Tensor], steps: int) -> List[float]:
    """Run ``steps`` AdamW (lr 3e-3) steps on ``compute_loss()`` and return the loss of each step."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = compute_loss()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return losses


@pytest.fixture
def tiny_config() -> Callable[..., ModelConfig]:
    """``tiny_config(arch, **overrides)``: see :func:`make_tiny_config`."""
    return make_tiny_config


@pytest.fixture
def assert_right_padding_invariant() -> Callable[[nn.Module, Tensor, int], None]:
    """``assert_right_padding_invariant(model, ids, n_pad)``: see :func:`check_right_padding_invariance`."""
    return check_right_padding_invariance


@pytest.fixture
def overfit() -> Callable[[nn.Module, Callable[[], Tensor], int], List[float]]:
    """``overfit(model, compute_loss, steps) -> losses``: see :func:`overfit_losses`."""
    return overfit_losses
