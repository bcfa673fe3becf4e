"""The table module's own helpers and the namespace registry on its Query."""
from __future__ import annotations

from chalicelib.store import namespaces


def test_the_namespace_registry_is_idempotent_and_per_purpose(aws):
    for ns in ("b", "a", "b"):
        namespaces.register("gateways", ns)
    namespaces.register("deployments", "c")
    assert namespaces.registered("gateways") == ["a", "b"]
    assert namespaces.registered("deployments") == ["c"]
    assert namespaces.registered("nothing") == []
