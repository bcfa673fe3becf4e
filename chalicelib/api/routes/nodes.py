"""Gateway nodes (Vamp's "vga": Vamp gateway agent): `PUT /vga/nodes/<node>` is an agent's
acknowledgement (what it applied, a heartbeat), `GET /vga/nodes` the namespace's nodes: which
generation each runs, which are stale or silent (docs/decisions/0018)."""
from __future__ import annotations

import time

from chalicelib.api.backends import artifact_store, node_store
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.contract import acknowledgement
from chalicelib.errors import ValidationFailed
from chalicelib.gateways import nodes
from chalicelib.settings import settings


def report_node(call: Call, node: str) -> Reply:
    docs = call.documents()
    if len(docs) != 1:
        raise ValidationFailed.at("body", f"exactly one acknowledgement expected, got {len(docs)}")
    try:
        ack = acknowledgement.parse(docs[0], call.namespace, decoded_name(node))
    except acknowledgement.InvalidAcknowledgement as e:
        raise ValidationFailed.at(e.field, e.reason) from None
    kept = node_store().report(ack, time.time())
    return Reply(200, {"node": ack.node, "generation": ack.generation, "kept": kept})


def namespace_view(namespace: str, gateway: str | None = None) -> dict:
    """The read-only `nodes` section (GET /vga/nodes, and inside GET /gateways/<name>, with the
    nodes that refused a configuration naming that gateway)."""
    views, generation = nodes.read(node_store(), artifact_store(), namespace, time.time(),
                                   settings().node_silent_after)
    return nodes.summary(views, generation, gateway)


def list_nodes(call: Call) -> Reply:
    return Reply(200, namespace_view(call.namespace))
