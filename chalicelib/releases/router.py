"""The traffic router: sets the stable and canary routes' weights on a gateway artifact.

Every write is conditional on the gateway version just read, and is preceded by a `fence` check
of the release state: a task that lost a race with an abort (which changes the release
state *before* the gateway) either sees the abort, or finds the gateway changed under it and
reads again, so a late weight can never land after a rollback. A change is published through
the gateway write path (etcd, then every HAProxy).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import yaml

from chalicelib import dsl
from chalicelib.artifacts import Outcome
from chalicelib.deployments import route_targets
from chalicelib.dsl import fill_weights
from chalicelib.errors import Conflict, FieldError, NotFound, ValidationFailed
from chalicelib.gateways import publisher, snapshot
from chalicelib.gateways import writes as gateway_writes
from chalicelib.releases.decisions import split
from chalicelib.releases.model import ReleaseState
from chalicelib.retry import STATE_RACE, retry_on
from chalicelib.settings import settings
from chalicelib.store.artifact_store import ArtifactStore, StoredArtifact, Write
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventStore, new_event

log = logging.getLogger(__name__)


class Fenced(Exception):
    """The release no longer allows this change (aborted, finished, superseded)."""


@dataclass(frozen=True)
class WeightChange:
    """What a set_weight did: whether it wrote the gateway, the namespace generation that carries
    the weights (the write's, or the current one when they already were so), and why etcd did
    not get it (None: published, or publishing is off)."""

    written: bool
    generation: int
    publish_error: str | None = None


def _weight(route) -> int | None:
    if isinstance(route, dict) and route.get("weight") is not None:
        return int(str(route["weight"]).rstrip("%"))
    return None


def effective(routes: dict) -> dict[str, int]:
    keys = list(routes)
    return dict(zip(keys, fill_weights([_weight(routes[k]) for k in keys])))


class GatewayRouter:
    def __init__(self, store: ArtifactStore | None = None, publish: Callable[[str, str], None] | None = None,
                 events: EventStore | None = None):
        self.store = store or DynamoDBArtifactStore()
        self.publish = publish  # an extra hook (tests); the gateway write path publishes itself
        self._events = events
        self.writes = 0

    def snapshot(self, namespace: str, gateway: str, stable: str, canary: str) -> dict:
        """What a release needs of the gateway at its start: both routes (inline) and their pool."""
        found = self.store.get(namespace, "gateways", gateway)
        if found is None:
            raise NotFound(f"gateway {gateway} does not exist", [FieldError("gateway", "not found")])
        routes = found.document.get("routes") or {}
        errors = []
        for field, key in (("stable", stable), ("canary", canary)):
            if key not in routes:
                errors.append(FieldError(field, f"gateway {gateway} has no route {key!r}"))
            elif not isinstance(routes[key], dict):
                errors.append(FieldError(field, f"route {key!r} is a reference: releases need inline routes"))
        if errors:
            raise ValidationFailed("Invalid release", errors)
        weights = effective(routes)
        pool = weights[stable] + weights[canary]
        if pool <= 0:
            raise ValidationFailed.at("gateway", f"routes {stable!r} and {canary!r} have no weight between them")
        return {"stable": routes[stable], "canary": routes[canary], "pool": pool, "version": found.version,
                "weights": weights}

    def set_weight(self, namespace: str, release: ReleaseState, canary_percent: int, fence: Callable[[], None],
                   *, promote: bool = False, rollback: bool = False) -> WeightChange:
        """Give the canary `canary_percent` of the pool. `promote`: canary takes the pool and the
        stable route goes; `rollback`: the stable route is restored as it was, at the whole pool."""
        gateway = release.gateway
        try:
            stored, doc, written, generation = retry_on(
                Conflict, lambda: self._write_weights(namespace, release, canary_percent, fence, promote, rollback),
                STATE_RACE)
        except Conflict:
            raise Conflict(f"gateway {gateway} is changing too often; retry", []) from None
        if written:
            self.writes += 1
            self._archive(namespace, gateway, doc, release)
        # Not written (a retried step, a rollback retried until applied): publishing again is
        # harmless, and it is what gets a write made while etcd was away out to the nodes.
        failed = self._publish(namespace, gateway, stored, doc)
        return WeightChange(written, generation, failed.error if failed else None)

    def _write_weights(self, namespace: str, release: ReleaseState, canary_percent: int, fence: Callable[[], None],
                       promote: bool, rollback: bool) -> tuple[StoredArtifact, dict, bool, int]:
        """One attempt: read the gateway, write its new weights conditionally on the version read
        (Conflict: it changed meanwhile). (what is stored, its document, whether this wrote it,
        the generation carrying it)."""
        gateway, stable, canary, snap = release.gateway, release.stable, release.canary, release.snapshot
        pool = snap.pool
        found = self.store.get(namespace, "gateways", gateway)
        if found is None:
            raise NotFound(f"gateway {gateway} does not exist", [FieldError("gateway", "not found")])
        doc = found.document
        routes = dict(doc.get("routes") or {})
        weights = effective(routes)
        if rollback:
            routes[stable] = dict(snap.stable)
        if canary not in routes:
            routes[canary] = dict(snap.canary)
        s, c = split(pool, canary_percent)
        internal = gateway.count("/") == 2  # an internal gateway's set of routes is fixed
        new_routes = {}
        for key, route in {**routes}.items():
            w = weights.get(key, 0)
            if key == stable:
                w = 0 if promote else s
            elif key == canary:
                w = pool if promote else c
            new_routes[key] = {**route, "weight": f"{w}%"}
        if promote and not internal:
            new_routes.pop(stable, None)
        if rollback and not internal:
            new_routes[canary] = {**new_routes[canary], "weight": "0%"}
        new_doc = {**doc, "routes": new_routes}
        if new_doc == doc:  # already so: the current generation carries it (or a later one does)
            return found, doc, False, snapshot.generation(self.store, namespace)
        fence()
        new_doc = self._validated(new_doc)
        write = Write("gateways", gateway, new_doc, found.version)
        # The gateway write path: port claims and the namespace generation in the same transaction.
        stored, generation = gateway_writes.apply_counted(self.store, namespace, [write])
        return stored[0], new_doc, True, generation

    @staticmethod
    def _validated(doc: dict) -> dict:
        return dsl.dump(dsl.parse("gateways", doc))

    def republish(self, namespace: str) -> str | None:
        """Publish the namespace again if etcd is behind the store (a write made while etcd was
        away); None when done or nothing to do, else why not."""
        if not publisher.publishing(settings()):
            return None
        try:
            publisher.republish_if_behind(self.store, namespace, route_targets.source)
        except Exception as e:  # noqa: BLE001 - etcd still away: the release keeps waiting
            return f"{type(e).__name__}: {str(e)[:300]}"
        return None

    def _publish(self, namespace: str, gateway: str, stored, doc: dict) -> gateway_writes.PublishFailed | None:
        events = self._events or event_store()
        result = gateway_writes.after(self.store, namespace, [Outcome("gateways", gateway, stored, doc)],
                                      events.publish, route_targets.source)
        if self.publish:
            self.publish(namespace, gateway)
        return result if isinstance(result, gateway_writes.PublishFailed) else None

    def _archive(self, namespace: str, gateway: str, doc: dict, release: ReleaseState) -> None:
        try:
            (self._events or event_store()).publish(namespace, [new_event(
                tags=["archive:update", f"gateways:{gateway}", f"releases:{release.name}"],
                value=yaml.safe_dump(doc, sort_keys=False), type="archive")])
        except Exception:
            log.exception("archive event for gateway %s not published", gateway)
