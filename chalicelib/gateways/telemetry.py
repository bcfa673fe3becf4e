"""Health and metrics of gateways and routes, from the metric events gateway agents post.

Every agent posts, per 10 s window, events of type `metrics` tagged `gateways:<g>`,
`metrics:<m>` (and `routes:<r>` for a route's own figures) with a number as value, m one of
requests, errors (5xx), rate, p50, p95, p99, responseTime (mean total time, ms). Several agents
(one per node) each post their own, so counts add up across them.
"""
from __future__ import annotations

from chalicelib.errors import FieldError, NotFound, ValidationFailed
from chalicelib.gateways.nodes import Liveness

METRICS = ("requests", "errors", "rate", "responseTime", "p50", "p95", "p99")
DEFAULT_WINDOW = 60
MAX_WINDOW = 86_400


def window_seconds(raw: str | None) -> int:
    if raw in (None, ""):
        return DEFAULT_WINDOW
    try:
        value = int(raw)
        if 1 <= value <= MAX_WINDOW:
            return value
    except ValueError:
        pass
    raise ValidationFailed.at("window", f"seconds, an integer from 1 to {MAX_WINDOW}")


def metric_name(raw: str) -> str:
    if raw not in METRICS:
        raise NotFound(f"unknown metric {raw}", [FieldError("metric", f"one of {', '.join(METRICS)}")])
    return raw


def tags_for(gateway: str, route: str | None, metric: str) -> list[str]:
    tags = [f"gateways:{gateway}", f"metrics:{metric}"]
    return tags + [f"routes:{route}"] if route else tags


def own_values(events: list[dict], route: str | None) -> list[float]:
    """Numbers of the events that belong to this level: a gateway's own figures are the events
    without a route tag (the route-level ones carry the gateway tag too)."""
    out = []
    for e in events:
        has_route = any(t.startswith("routes:") for t in e.get("tags", ()))
        if route is None and has_route:
            continue
        v = e.get("value")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
    return out


def metric_value(metric: str, values: list[float], requests: list[float], window: int) -> float | None:
    """One figure over the window. Counts add up; rate is requests over the window; the mean
    time is the mean of the windows' means; a percentile is the worst window's (conservative)."""
    if metric in ("requests", "errors"):
        return sum(values)
    if metric == "rate":
        return sum(requests) / window
    if not values:
        return None
    if metric == "responseTime":
        return sum(values) / len(values)
    return max(values)


def health(errors: list[float], nodes: Liveness) -> tuple[int, str | None]:
    """Vamp's health, and why it is 0: 0 if any request ended in a 5xx within the window, or no
    gateway node reports (no agent: nobody would see the 5xx), or a node went silent; else 1."""
    if sum(errors) > 0:
        return 0, f"{sum(errors):.0f} requests ended in a 5xx"
    if nodes.silent:
        return 0, f"silent gateway nodes: {', '.join(nodes.silent)}"
    if nodes.reporting == 0:
        return 0, "no gateway node reports for the namespace"
    return 1, None
