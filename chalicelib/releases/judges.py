"""The statistical judge: a one-sided Mann-Whitney U test, and latency samples from histograms.

Pure functions, no dependencies. Latency samples come from the agents' per-window histograms
(`metrics:histogram` events, a list of [milliseconds, count] pairs): every request is taken to
have lasted its bucket's representative value (exact below 64 ms, else within 1/64 of the true
value). Requests in one bucket are ties; the U statistic handles ties by mid-ranks and the normal
approximation corrects its variance for them, so the coarsening only costs a little power.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class UTest:
    u: float  # U of the first sample: pairs (x, y) with x > y, ties counted 1/2
    n1: int
    n2: int
    z: float
    p_greater: float  # one-sided p-value of "the first sample is stochastically greater"


def counts_of(samples: Iterable[float]) -> dict[float, int]:
    out: dict[float, int] = {}
    for s in samples:
        out[float(s)] = out.get(float(s), 0) + 1
    return out


def merge_histograms(histograms: Iterable[object]) -> dict[float, int]:
    """Sum [[value, count], ...] lists (several windows, several agents); bad entries are skipped."""
    out: dict[float, int] = {}
    for h in histograms:
        if not isinstance(h, list):
            continue
        for pair in h:
            if (isinstance(pair, (list, tuple)) and len(pair) == 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair)
                    and math.isfinite(pair[0]) and pair[1] > 0):
                out[float(pair[0])] = out.get(float(pair[0]), 0) + int(pair[1])
    return out


def mann_whitney(first: Mapping[float, int], second: Mapping[float, int]) -> UTest | None:
    """U test of two samples given as {value: count}; None when either is empty.

    Ranks are mid-ranks over the pooled sample; U1 = R1 - n1(n1+1)/2. Under H0 U1 has mean
    n1*n2/2 and variance n1*n2/12 * ((n+1) - sum(t^3 - t) / (n(n-1))) for tie groups of size t.
    z uses a continuity correction of 1/2 towards the mean; p = P(Z >= z). When every value is
    tied the variance is 0: no evidence either way, p = 1 (z = 0).
    """
    n1, n2 = sum(first.values()), sum(second.values())
    if n1 <= 0 or n2 <= 0:
        return None
    n = n1 + n2
    rank_sum, below, ties = 0.0, 0, 0.0
    for value in sorted(set(first) | set(second)):
        a, b = first.get(value, 0), second.get(value, 0)
        t = a + b
        mid = below + (t + 1) / 2  # mean of ranks below+1 .. below+t
        rank_sum += a * mid
        ties += t**3 - t
        below += t
    u = rank_sum - n1 * (n1 + 1) / 2
    mean = n1 * n2 / 2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return UTest(u, n1, n2, 0.0, 1.0)
    delta = u - mean
    delta = math.copysign(max(abs(delta) - 0.5, 0.0), delta)
    z = delta / math.sqrt(variance)
    return UTest(u, n1, n2, z, 0.5 * math.erfc(z / math.sqrt(2)))
