"""A release's state: what the tasks decide on and the API shows, stored as one JSON document.

`model_dump(mode="json")` is the stored document. Keys a release only gains on its way (its
execution, the last check, the gate it waits at, when it finished) stay out of the document
until they are set, so the JSON is what the releases stored before this model existed. Models
here are built at import (not deferred as the DSL's are): the tasks validate on moto's threads
locally, and pydantic's first build is not thread-safe.
"""
from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.releases.plan import Plan

HISTORY = 50  # checks kept in the state (every check is also an event)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Phase(StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"
    AWAITING_APPROVAL = "awaiting_approval"
    PROMOTING = "promoting"
    ROLLING_BACK = "rolling_back"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


# The state machine is checking (or waiting at a gate): tasks and the API may still move it.
ACTIVE: frozenset[Phase] = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.AWAITING_APPROVAL})
# The gateway is being set to the outcome.
FINISHING: frozenset[Phase] = frozenset({Phase.PROMOTING, Phase.ROLLING_BACK})
TERMINAL: frozenset[Phase] = frozenset({Phase.PROMOTED, Phase.ROLLED_BACK, Phase.FAILED})

GateKind = Literal["approval", "pause"]


def _until_set() -> Any:
    """A key the document has only once it is set (left out while None)."""
    return Field(None, exclude_if=lambda value: value is None)


class StoredModel(BaseModel):
    # Lenient where the DSL is strict: a key this code does not know (a newer version wrote it)
    # survives a transition, as it did when the state was a plain dict.
    model_config = ConfigDict(extra="allow")


class RouteSummary(StoredModel):
    """One route's figures over a check (analysis.RouteFigures.as_dict)."""

    requests: int
    errors: int
    success_rate: float | None
    latency: float | None
    samples: int


class MetricResult(StoredModel):
    metric: str
    verdict: str
    value: float | None
    threshold: float | None
    reason: str


class HookOutcome(StoredModel):
    """A gating webhook's answer (webhooks.HookResult.as_dict)."""

    name: str
    ok: bool
    status: int | None
    reason: str


class Check(StoredModel):
    """One check as the history and the `release:check` event record it."""

    number: int
    step: int
    weight: int
    since: str
    until: str
    verdict: str
    reason: str
    canary: RouteSummary | None = _until_set()  # none before the rollout
    stable: RouteSummary | None = _until_set()
    results: list[MetricResult] = []
    webhooks: list[HookOutcome] | None = _until_set()  # only when a gate was called
    failures: int
    decision: str
    decision_reason: str


class CheckOutcome(StoredModel):
    """What the analyse task returned for a check: a retried invocation returns it again."""

    step: int
    check: int
    next: str


class LastCheck(StoredModel):
    check: int
    out: CheckOutcome


class Snapshot(StoredModel):
    """The stable and canary routes (inline documents) and their pool when the release started;
    a rollback restores the stable route as it was."""

    stable: dict[str, Any]
    canary: dict[str, Any]
    pool: int


class ReleaseState(StoredModel):
    id: str
    name: str
    namespace: str
    spec: dict[str, Any]  # the release as started (canonical form)
    plan: Plan
    gateway: str
    stable: str
    canary: str
    snapshot: Snapshot
    phase: Phase
    step: int = 0
    weight: int = 0
    checks: int = 0  # the number of the last check recorded
    failures: int = 0
    inconclusive: int = 0  # inconclusive checks in a row
    approved: bool = False
    token: str | None = None  # the task token of the gate the execution waits at
    since: str  # start of the window the next check judges
    started: str
    history: list[Check] = []
    reason: str | None = None
    updated: str | None = _until_set()
    execution: str | None = _until_set()
    last: LastCheck | None = _until_set()
    token_kind: GateKind | None = _until_set()
    finished: str | None = _until_set()
    # Liveness (docs/decisions/0018): the namespace generation the current weight (or the
    # promotion, the rollback) was written at, when the nodes had all applied it (None: not
    # yet), what is awaited meanwhile, and the last publish failure (etcd away).
    generation: int | None = _until_set()
    live_since: str | None = _until_set()
    waiting: str | None = _until_set()
    publish_error: str | None = _until_set()
    # The stored item's version, which every write is conditional on; not part of the document.
    version: int = Field(0, exclude=True)

    @property
    def holds_gateway(self) -> bool:
        """Until it has finished, a release keeps other releases off its gateway (the store's
        lock: docs/decisions/0019-no-lost-generation.md)."""
        return self.phase not in TERMINAL

    def record(self, check: Check) -> None:
        self.history = self.history[-(HISTORY - 1):] + [check]
