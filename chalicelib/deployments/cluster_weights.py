"""Route weights of a deployment's cluster gateways: always explicit, always 100% in all."""
from __future__ import annotations

from typing import Any

from chalicelib.dsl import Route, fill_weights


def weight_of(route: Any) -> int | None:
    return route.weight if isinstance(route, Route) else None


def with_weight(route: Any, weight: int) -> Any:
    if isinstance(route, Route):
        return route.model_copy(update={"weight": weight})
    return route  # a reference to a stored route keeps its own weight


def rebalance(weights: list[int]) -> list[int]:
    """Scale weights to sum to exactly 100, proportionally (largest remainders get the extra
    points); all zero -> an even split, the last taking the remainder."""
    if not weights:
        return []
    total = sum(weights)
    if total == 0:
        return fill_weights([None] * len(weights))
    exact = [w * 100 / total for w in weights]
    out = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (exact[i] - out[i], i), reverse=True)
    for i in order[: 100 - sum(out)]:
        out[i] += 1
    return out


def normalise(routes: dict[str, Any], services: list[str], *, rescale: bool) -> dict[str, Any]:
    """Routes for exactly `services` (in that order, keeping those given): routes of other breeds
    are dropped, missing ones added without weight; unassigned weights share what is left
    (so a new route next to routes holding 100% gets 0%). With `rescale`, the result is
    scaled to 100% (after a slice removed some)."""
    kept = {name: routes[name] for name in routes if name in services}
    for name in services:
        kept.setdefault(name, Route())
    names = list(kept)
    weights = fill_weights([weight_of(kept[n]) for n in names])
    if rescale or sum(weights) != 100:
        weights = rebalance(weights)
    return {n: with_weight(kept[n], w) for n, w in zip(names, weights)}
