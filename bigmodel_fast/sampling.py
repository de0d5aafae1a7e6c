"""The next-token choice of ``bmf_runner`` (csrc/deploy/generate.cpp), bit for bit in Python.

``choose(logits, top_k, temperature, rng)``: top_k 1 is greedy (the first maximum); otherwise the top_k most likely
ids (ties: lower id first) are drawn with weights ``exp((z - z_max) / temperature)`` (double precision), the way
libstdc++'s ``std::discrete_distribution`` draws: probabilities ``w / sum(w)``, their running sums with the last set
to 1.0, one ``std::generate_canonical<double, 53>`` number ``u = x / 2**64`` from one 64-bit output ``x`` of
``std::mt19937_64`` (:class:`MT19937_64`), the index of the first running sum >= u.

So ``bmf generate --seed S`` and ``bmf_runner --seed S`` draw the same ids from the same logits (same libm ``exp``;
the logits of an exported model may differ from eager ones in the last bits, which can change a draw that falls
exactly on a boundary).
"""

from __future__ import annotations

import bisect
import math

import numpy as np

__all__ = ["MT19937_64", "choose", "canonical"]

_MASK = (1 << 64) - 1


class MT19937_64:
    """``std::mt19937_64`` (the 64-bit Mersenne Twister of C++11 [rand.predef]): ``MT19937_64(seed).next()`` is the
    runner's ``rng()``. The 10000th output of the default seed 5489 is 9981545732273789042."""

    N, M = 312, 156
    _A = 0xB5026F5AA96619E9
    _UPPER, _LOWER = 0xFFFFFFFF80000000, 0x7FFFFFFF

    def __init__(self, seed: int = 5489):
        mt = [seed & _MASK]
        for i in range(1, self.N):
            mt.append((6364136223846793005 * (mt[-1] ^ (mt[-1] >> 62)) + i) & _MASK)
        self.mt, self.index = mt, self.N

    def _twist(self) -> None:
        mt, n, m = self.mt, self.N, self.M
        for i in range(n):
            x = (mt[i] & self._UPPER) | (mt[(i + 1) % n] & self._LOWER)
            mt[i] = mt[(i + m) % n] ^ (x >> 1) ^ (self._A if x & 1 else 0)
        self.index = 0

    def next(self) -> int:
        """The next 64-bit output (an int in [0, 2**64))."""
        if self.index >= self.N:
            self._twist()
        x = self.mt[self.index]
        self.index += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & _MASK


def canonical(rng: MT19937_64) -> float:
    """``std::generate_canonical<double, 53>(rng)`` of libstdc++: one output / 2**64, kept below 1."""
    u = float(rng.next()) / 18446744073709551616.0  # the int -> double conversion rounds to nearest, as C++'s
    return u if u < 1.0 else math.nextafter(1.0, 0.0)


def choose(logits: np.ndarray, top_k: int, temperature: float, rng: MT19937_64) -> int:
    """The next id from float32 logits (V,): argmax (first maximum) when ``top_k <= 1``, else a draw from the
    ``top_k`` most likely ids (see the module docstring); consumes one rng output per draw (none for greedy, nor
    when only one id can be drawn)."""
    z = np.asarray(logits, dtype=np.float32)
    if top_k <= 1:
        return int(np.argmax(z))  # numpy: the first maximum
    k = min(top_k, z.shape[0])
    order = np.argsort(-z, kind="stable")[:k]  # descending, ties by lower id (the runner's partial_sort order)
    if k < 2:  # libstdc++: a distribution of one weight returns 0 without drawing
        return int(order[0])
    top = float(z[order[0]])
    return int(order[discrete_draw([math.exp((float(z[i]) - top) / temperature) for i in order], rng)])


def discrete_draw(weights: list[float], rng: MT19937_64) -> int:
    """``std::discrete_distribution<int>(weights)(rng)`` of libstdc++: the index whose cumulative share (summed in
    order, divided by the total, the last forced to 1) is the first >= one ``canonical`` draw."""
    total = 0.0
    for w in weights:
        total += w
    running, acc = [], 0.0
    for w in weights:
        acc += w / total
        running.append(acc)
    running[-1] = 1.0
    return bisect.bisect_left(running, canonical(rng))
