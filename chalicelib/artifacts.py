"""Artifact use cases: validate documents with the DSL, write them all-or-nothing, archive them.

The API layer hands over parsed request documents; nothing here knows about HTTP.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Literal

from chalicelib.errors import FieldError, NotFound, ValidationFailed, VampError
from chalicelib.gateways import writes as gateway_writes
from chalicelib.gateways.internal import guard
from chalicelib.gateways.publisher import RouteTargets
from chalicelib.kinds import normalize_kind
from chalicelib.store.artifact_store import (
    ArtifactPage,
    ArtifactStore,
    StoredArtifact,
    Write,
)
from chalicelib.workflows import lifecycle as workflow_lifecycle

log = logging.getLogger(__name__)

Mode = Literal["create", "upsert", "delete"]
ARCHIVE_ACTION = {"create": "create", "upsert": "update", "delete": "delete"}


@dataclass(frozen=True)
class Document:
    """One document of a request: its kind (from the URL or its own `kind`) and its data."""

    kind: str
    data: Any
    path: str = ""  # where it sits in the request, for error paths ("" for a single document)


@dataclass(frozen=True)
class Outcome:
    kind: str
    name: str
    artifact: StoredArtifact | None  # None after a delete
    document: dict


class Resolver:
    """Looks names up in the request's own documents first, then in the store (memoised)."""

    def __init__(self, store: ArtifactStore, namespace: str, pending: dict[tuple[str, str], dict]):
        self._store, self._namespace, self._pending = store, namespace, pending
        self._cache: dict[tuple[str, str], dict | None] = {}

    def __call__(self, kind: str, name: str) -> dict | None:
        kind = normalize_kind(kind)
        key = (kind, name)
        if key in self._pending:
            return self._pending[key]
        if key not in self._cache:
            found = self._store.get(self._namespace, kind, name)
            self._cache[key] = found.document if found else None
        return self._cache[key]


def _prefixed(error: VampError, prefix: str) -> list[FieldError]:
    if not prefix:
        return list(error.errors)
    return [FieldError(f"{prefix}.{e.path}" if e.path else prefix, e.reason) for e in error.errors]


def _name_of(doc: Document) -> str:
    if not isinstance(doc.data, dict) or not isinstance(doc.data.get("name"), str):
        raise ValidationFailed.at(f"{doc.path}.name" if doc.path else "name", "a name is required")
    return doc.data["name"]


def change(
    store: ArtifactStore,
    publish: Callable[[str, list[dict]], None],
    namespace: str,
    documents: list[Document],
    mode: Mode,
    *,
    validate_only: bool = False,
    url_name: str | None = None,
    expected_version: int | None = None,
    targets: RouteTargets,
) -> list[Outcome]:
    """Validate every document, then write them all in one transaction (or none), then archive.
    `targets`: who serves deployment routes, for rendering when the batch touches gateways."""
    from chalicelib import dsl  # the models are built on the first write, not at cold start

    if not documents:
        raise ValidationFailed.at("body", "no document given")
    errors: list[FieldError] = []
    named: list[tuple[Document, str, str]] = []
    for doc in documents:
        try:
            kind = normalize_kind(doc.kind)
            name = _name_of(doc)
            if url_name is not None and name != url_name:
                raise ValidationFailed.at("name", f"'{name}' does not match '{url_name}' in the path")
            named.append((doc, kind, name))
        except ValidationFailed as e:
            errors += _prefixed(e, doc.path)
    if errors:
        raise ValidationFailed("Invalid input", errors)

    pending = {} if mode == "delete" else {(k, n): d.data for d, k, n in named}
    resolve = Resolver(store, namespace, pending)
    writes: list[Write] = []
    canonical: list[dict] = []
    for doc, kind, name in named:
        if mode == "delete":
            canonical.append(doc.data)
            writes.append(Write(kind, name, None, expected_version or 0))
            continue
        try:
            model = dsl.parse(kind, doc.data, resolve=resolve)
        except ValidationFailed as e:
            errors += _prefixed(e, doc.path)
            continue
        if kind == "release-policies":  # webhooks the egress policy refuses: 400, nothing written
            errors += [FieldError(f"{doc.path}.{e.path}" if doc.path else e.path, e.reason)
                       for e in webhook_egress_errors(model.webhooks)]
        dumped = dsl.dump(model)
        if kind == "workflows":  # --- workflows (0039): the breed runs, the schedule can be made
            errors += workflow_lifecycle.check(dumped, doc.path, resolve)
            from chalicelib.workflows.script_runs import argument_problems  # their arguments on the driver

            errors += [FieldError(f"{doc.path}.{path}" if doc.path else path, reason)
                       for path, reason in argument_problems(namespace, dumped, resolve)]
        canonical.append(dumped)
        expected = None if mode == "create" else (expected_version or 0)
        writes.append(Write(kind, name, dumped, expected))
    if errors:
        raise ValidationFailed("Invalid input", errors)
    # --- workflows (0039): updated only while suspended, stored with their status
    writes = workflow_lifecycle.prepare(store, namespace, writes, mode)
    canonical = [w.document if w.kind == "workflows" and w.document is not None else d
                 for w, d in zip(writes, canonical)]
    # Batches that touch gateways or what they refer to take the gateway write path.
    gateways = gateway_writes.involved(writes)
    if gateways:
        writes = guard(store, namespace, writes)  # a deployment's gateways keep its routes
        canonical = [w.document if w.document is not None else d for w, d in zip(writes, canonical)]
    if gateways and mode != "delete":  # what HAProxy would refuse is a 400 too
        gateway_writes.check(writes, [doc.path for doc, _, _ in named], resolve)
    if validate_only:
        return [Outcome(w.kind, w.name, None, d) for w, d in zip(writes, canonical)]

    # Gateways: port claims and the namespace's generation go in the same transaction.
    results = gateway_writes.apply(store, namespace, writes) if gateways else store.apply(namespace, writes)
    outcomes = [Outcome(w.kind, w.name, r, r.document if r is not None else d)
                for w, r, d in zip(writes, results, canonical)]
    _archive(publish, namespace, mode, outcomes)
    workflow_lifecycle.after(store, namespace, list(zip(writes, results)), publish)  # --- workflows (0039)
    if gateways:  # re-render and publish the namespace's HAProxy configuration
        gateway_writes.after(store, namespace, outcomes, publish, targets)
    return outcomes


def webhook_egress_errors(hooks, path: str = "webhooks") -> list[FieldError]:
    """`webhooks[i].url` of the hooks (dsl Webhook models or plan Webhooks) the egress policy
    refuses, with the reason (docs/decisions/0025). Checked again at every call."""
    from chalicelib.gateways import egress

    errors = []
    for i, hook in enumerate(hooks):
        try:
            egress.check_url(hook.url)
        except egress.Refused as refused:
            errors.append(FieldError(f"{path}[{i}].url", str(refused)))
        except ValueError as e:
            errors.append(FieldError(f"{path}[{i}].url", f"refused: {e}"))
    return errors


def _archive(publish: Callable[[str, list[dict]], None], namespace: str, mode: Mode, outcomes: list[Outcome]) -> None:
    # PyYAML and the event model (pydantic): writes only, never on a read's cold start.
    import yaml

    from chalicelib.dsl.secrets import redact
    from chalicelib.store.event_store import new_event

    action = ARCHIVE_ACTION[mode]
    # Kept for 30 days after the artifact is gone: never an environment value or a webhook's
    # credentials (redacted; secrets belong in SSM or Secrets Manager, referenced: dsl/secrets.py).
    events = [
        new_event(
            tags=[f"archive:{action}", f"{o.kind}:{o.name}"],
            value=yaml.safe_dump(redact(o.document), sort_keys=False) if mode != "delete" else "",
            type="archive",
        )
        for o in outcomes
    ]
    try:
        publish(namespace, events)
    except Exception:  # the write is done; a lost archive event must not turn it into a 500
        log.exception("archive events not published for %s", [(o.kind, o.name) for o in outcomes])


def get(store: ArtifactStore, namespace: str, kind: str, name: str) -> StoredArtifact:
    kind = normalize_kind(kind)
    found = store.get(namespace, kind, name)
    if found is None:
        raise NotFound(f"{kind}/{name} does not exist", [FieldError("name", "not found")])
    return found


def list_page(store: ArtifactStore, namespace: str, kind: str, page: int, per_page: int) -> ArtifactPage:
    return store.list(namespace, normalize_kind(kind), page, per_page)


def shape(store: ArtifactStore, namespace: str, kind: str, document: dict, *, expand: bool, only: bool) -> dict:
    """Apply `expand_references` / `only_references` to a stored document."""
    if not (only or expand):
        return document
    from chalicelib import dsl  # pydantic: plain reads never load it

    if only:
        return dsl.only_references(kind, document)
    return dsl.expand_references(kind, document, Resolver(store, namespace, {}))
