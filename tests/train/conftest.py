"""Fixtures of the fine-tuning tests."""

import pytest

from .finetune_helpers import untrained_tiny_bert


@pytest.fixture(scope="session")
def untrained_tiny(tiny_pretrained, tmp_path_factory):
    """A pretraining checkpoint of an untrained ``tiny``-preset BERT (the tokenizer of ``tiny_pretrained``)."""
    return untrained_tiny_bert(tiny_pretrained, tmp_path_factory.mktemp("untrained") / "ckpt")
