"""ops/triton_env.py: one reading of TRITON_INTERPRET for every dispatcher, with Triton's own truthy values."""

import pytest

from bigmodel_fast.ops import triton_env


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("ON", True), (" True ", True),
                                            ("0", False), ("", False), ("yes", False), ("false", False)])
def test_interpreting_follows_tritons_truthy_values(monkeypatch, value, expected):
    monkeypatch.setenv("TRITON_INTERPRET", value)
    assert triton_env.interpreting() is expected


def test_unset_means_compiled(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert triton_env.interpreting() is False
