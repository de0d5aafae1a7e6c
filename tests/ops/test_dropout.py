"""ops.dropout: the CPU lane-mask dropout keeps the distribution and the gradients of F.dropout."""

import math

import pytest
import torch
import torch.nn.functional as F

from bigmodel_fast.nn import Dropout
from bigmodel_fast.ops.dropout import drop_probability, dropout, dropout_mask, dropout_reference


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1e-3])
def test_keep_rate_and_expectation_match_pytorch_dropout(p):
    torch.manual_seed(0)
    n = 1 << 20
    x = torch.ones(n)
    y = dropout(x, p)
    q = drop_probability(p)
    assert abs(q - p) <= 1 / 131072
    kept = (y != 0).double().mean().item()
    sigma = math.sqrt(q * (1 - q) / n)
    assert abs(kept - (1 - q)) < 5 * sigma + 1e-12
    assert torch.all((y == 0) | torch.isclose(y, torch.tensor(1 / (1 - q)), rtol=1e-6, atol=0))
    # the expectation is x, as with F.dropout: mean of the output within 5 sigma of 1
    ref_sigma = math.sqrt(q / (1 - q) / n)
    assert abs(y.double().mean().item() - 1.0) < 5 * ref_sigma
    assert abs(dropout_reference(x, p).double().mean().item() - 1.0) < 5 * ref_sigma


def test_neighbouring_lanes_are_independent():
    """Elements that share a random word (4 lanes) or sit in neighbouring words: P(both kept) = (1 - q)^2."""
    torch.manual_seed(1)
    n, p = 1 << 22, 0.5
    keep = dropout_mask(torch.Size([n]), p, torch.device("cpu")).double()
    for lag in (1, 2, 3, 4, 5):
        both = (keep[:-lag] * keep[lag:]).mean().item()
        assert abs(both - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n), lag
    # odd sizes: the mask has the shape asked for
    assert dropout_mask(torch.Size([3, 5, 7]), 0.2, torch.device("cpu")).shape == (3, 5, 7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gradient_is_mask_times_scale_and_dtype_is_kept(dtype):
    torch.manual_seed(2)
    x = (torch.rand(37, 53) + 0.5).to(dtype).requires_grad_(True)  # no zeros, so y == 0 marks a drop
    g = torch.randn(37, 53, dtype=dtype)
    y = dropout(x, 0.3)
    y.backward(g)
    assert y.dtype == dtype and x.grad.dtype == dtype
    scale = 1 / (1 - drop_probability(0.3))
    kept = y != 0
    torch.testing.assert_close(x.grad, (g.float() * kept * scale).to(dtype))
    torch.testing.assert_close(y, (x.detach().float() * kept * scale).to(dtype))
    assert 0 < kept.float().mean().item() < 1


def test_seeded_masks_repeat_and_eval_or_zero_p_is_identity():
    x = torch.randn(64, 64)
    torch.manual_seed(3)
    a = dropout(x, 0.2)
    torch.manual_seed(3)
    b = dropout(x, 0.2)
    assert torch.equal(a, b) and not torch.equal(a, dropout(x, 0.2))
    assert dropout(x, 0.2, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="between 0 and 1"):
        dropout(x, 1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        dropout(x, -0.1)


def test_module_is_a_drop_in_and_scripts_to_f_dropout():
    m = Dropout(0.25)
    assert isinstance(m, torch.nn.Dropout) and m.p == 0.25 and not list(m.state_dict())
    x = torch.randn(8, 16)
    m.eval()
    assert torch.equal(m(x), x)
    scripted = torch.jit.script(m)
    assert torch.equal(scripted(x), x)
    scripted.train()
    y = scripted(torch.ones(4096))
    assert set(torch.unique(y).tolist()) <= {0.0, float(torch.tensor(1 / 0.75))}  # F.dropout under TorchScript
    torch.manual_seed(4)
    want = F.dropout(torch.ones(4096), 0.25, True)
    torch.manual_seed(4)
    assert torch.equal(scripted(torch.ones(4096)), want)
