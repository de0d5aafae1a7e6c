"""data/args.py: the shared int and seed checks name the argument and its range."""

import numpy as np
import pytest

from bigmodel_fast.data.args import check_int, check_seed


def test_check_int_accepts_ints_in_range_and_numpy_ints():
    assert check_int("n", 3, 0) == 3 and check_int("n", np.int64(5), 1, 5) == 5
    assert type(check_int("n", np.int32(2), 0)) is int


@pytest.mark.parametrize("value,lo,hi,match", [
    (-1, 0, None, r"n must be an int >= 0 \(note\), got -1"), (6, 1, 5, r"n must be an int in \[1, 5\]"),
    (True, 0, None, "got True"), (2.0, 0, None, "got 2.0"), ("3", 0, None, "got '3'"),
])
def test_check_int_rejects(value, lo, hi, match):
    with pytest.raises(ValueError, match=match):
        check_int("n", value, lo, hi, note=" (note)" if hi is None else "")


def test_check_seed_covers_uint64():
    assert check_seed(0) == 0 and check_seed(2**64 - 1) == 2**64 - 1
    for bad in (-1, 2**64, False, 1.5):
        with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*64\)"):
            check_seed(bad)
