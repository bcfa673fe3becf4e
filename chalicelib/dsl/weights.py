"""Route weights and condition strengths: Vamp's defaults, as pure arithmetic (no imports).

- Routes without a weight share `100 - sum(given weights)` evenly; the last of them takes the
  remainder (so 3 unassigned routes of 100% get 33, 33, 34).
- `condition_strength` defaults to 100% for a route with a condition, else 0%.
- HAProxy picks a route by one draw of `rand(100)` per request compared with cumulative
  thresholds: route i gets the draws in [sum(w[:i]), sum(w[:i+1])), so exactly w[i] of 100.
"""
from __future__ import annotations

from typing import Sequence


def effective_weights(weights: Sequence[int | None]) -> list[int]:
    """The weight each route really gets, in order (Vamp's rule, see the module doc)."""
    unassigned = [i for i, w in enumerate(weights) if w is None]
    filled = [w or 0 for w in weights]
    if unassigned:
        rest = max(0, 100 - sum(filled))
        share = rest // len(unassigned)
        for i in unassigned:
            filled[i] = share
        filled[unassigned[-1]] = rest - share * (len(unassigned) - 1)
    return filled


def condition_strength(strength: int | None, has_condition: bool) -> int:
    """The share (0..100) of the requests matching a route's condition that the route takes."""
    if strength is not None:
        return strength
    return 100 if has_condition else 0


def thresholds(weights: Sequence[int]) -> list[tuple[int, int]]:
    """(route index, exclusive upper bound of its draws) for every route with weight > 0.

    With a total below 100 (only possible when every weight is 0) the draws above the total
    match no route; a total above 100 is refused by the DSL, and clipped here all the same."""
    out, upper = [], 0
    for i, w in enumerate(weights):
        if w <= 0 or upper >= 100:
            continue
        upper = min(100, upper + w)
        out.append((i, upper))
    return out
