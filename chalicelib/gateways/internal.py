"""Vamp's rule for internal gateways (`deployment/cluster/port`): they belong to their deployment.

Through the gateway API their weights, conditions, rewrites and stickiness change, but their set
of routes is the deployment's services, and they cannot be deleted while the deployment exists.
The deployment's own writes (merge, slice, synchronisation) and a release's weight changes do not
come through here.
"""
from __future__ import annotations

from dataclasses import replace

from chalicelib.errors import Conflict, FieldError, ValidationFailed
from chalicelib.store.artifact_store import Write


def owner(store, namespace: str, name: str) -> tuple[dict, str] | None:
    """(stored document, deployment) when `name` is an internal gateway of an existing deployment."""
    if name.count("/") != 2:
        return None
    stored = store.get(namespace, "gateways", name)
    deployment = (stored.document.get("metadata") or {}).get("deployment") if stored else None
    if not deployment or store.get(namespace, "deployments", deployment) is None:
        return None
    return stored.document, deployment


def guard(store, namespace: str, writes: list[Write]) -> list[Write]:
    """The API's writes, checked against the rule; an internal gateway keeps its deployment link."""
    out = []
    for w in writes:
        found = owner(store, namespace, w.name) if w.kind == "gateways" else None
        if found is None:
            out.append(w)
            continue
        stored, deployment = found
        if w.document is None:
            raise Conflict(f"gateways/{w.name} belongs to deployment {deployment}",
                           [FieldError("name", f"an internal gateway cannot be deleted while deployment "
                                               f"{deployment} exists; undeploy or slice the deployment")])
        routes, kept = set(w.document.get("routes") or {}), set(stored.get("routes") or {})
        if routes != kept:
            raise ValidationFailed.at("routes", f"an internal gateway's routes are deployment {deployment}'s "
                                                f"services ({', '.join(sorted(kept))}): their weights and conditions "
                                                "change, the set does not")
        metadata = {**(w.document.get("metadata") or {}), "deployment": deployment}
        out.append(replace(w, document={**w.document, "metadata": metadata}))
    return out
