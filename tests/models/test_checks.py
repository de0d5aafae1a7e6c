from __future__ import annotations

import pytest
import torch

from bigmodel_fast.models import InputError, ModelConfig, check_inputs


def cfg(arch="bert"):
    return ModelConfig(arch=arch, vocab_size=50, hidden_size=32, num_heads=4, max_position=16,
                       type_vocab_size=2 if arch == "bert" else 0)


def test_valid_batch_passes():
    ids = torch.randint(0, 50, (2, 16))
    check_inputs(cfg(), ids, torch.ones(2, 16, dtype=torch.bool), torch.ones(2, 16, dtype=torch.long))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(input_ids=torch.zeros(2, 17, dtype=torch.long)), "max_position=16"),
        (dict(input_ids=torch.tensor([[0, 50]])), r"\[0, 50\].*vocab_size=50"),
        (dict(input_ids=torch.tensor([[-1, 3]])), "vocab_size"),
        (dict(input_ids=torch.zeros(2, 3)), "integer"),
        (dict(input_ids=torch.zeros(3, dtype=torch.long)), r"\(B, S\)"),
        (dict(input_ids=torch.zeros(2, 3, dtype=torch.long), attention_mask=torch.ones(2, 4, dtype=torch.bool)),
         "attention_mask"),
        (dict(input_ids=torch.zeros(2, 3, dtype=torch.long), token_type_ids=torch.full((2, 3), 2)),
         "type_vocab_size=2"),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        check_inputs(cfg(), **kwargs)


def test_gpt_token_types_rejected():
    with pytest.raises(InputError, match="gpt"):
        check_inputs(cfg("gpt"), torch.zeros(1, 3, dtype=torch.long), None, torch.zeros(1, 3, dtype=torch.long))
