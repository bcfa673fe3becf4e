"""Where a check's figures come from: the metric events the gateway agents post (type `metrics`,
tags `gateways:<g>`, `routes:<r>`, `metrics:<m>`; `metrics:histogram` carries latency buckets).
Only events posted with an agent token count: the API refuses telemetry from other tokens, and
whatever else the store holds (posted before roles, written around the API) is not judged
(docs/decisions/0022)."""
from __future__ import annotations

from typing import Protocol

from chalicelib.releases.analysis import RouteFigures, figures
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery, from_agents

PAGE = 1000


class MetricSource(Protocol):
    def route(self, namespace: str, gateway: str, route: str, since: str, until: str, percentile: int) -> RouteFigures: ...


class EventMetricSource:
    """One event-store query per route and check: every metric of the route in (since, until]."""

    def __init__(self, store=None):
        self._store = store
        self.calls = 0

    @property
    def store(self):
        if self._store is None:
            self._store = event_store()
        return self._store

    def route(self, namespace: str, gateway: str, route: str, since: str, until: str, percentile: int) -> RouteFigures:
        events: list[dict] = []
        page = 1
        while True:
            # The route's own tag first: its partition holds only this route's events.
            q = EventQuery(tags=[f"routes:{route}", f"gateways:{gateway}"], type="metrics", gt=since, lte=until,
                           page=page, per_page=PAGE)
            self.calls += 1
            result = self.store.query(namespace, q)
            events += result.items
            if len(events) >= result.total or not result.items:
                break
            page += 1
        return figures(from_agents(events), percentile)
