"""Assertions shared by the predict and evaluate tests."""

from __future__ import annotations


def one_line_error(capsys, *needles: str) -> str:
    """stderr is exactly one line, no traceback, containing every needle; returns it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err
