"""Workflows' status as Vamp's: `GET|PUT /api/v1/workflows/{name}/status` (the body a status
string: running, suspended, restarting). The workflow itself is an artifact (routes/artifacts.py)."""
from __future__ import annotations

from chalicelib.api.backends import artifact_store, publish_events
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.errors import ValidationFailed
from chalicelib.workflows import lifecycle


def write_gateway(namespace: str, document: dict, expected_version: int) -> None:
    """The canary built-in's gateway writes, through the API's write path (validated, ports and
    the HAProxy configuration published), conditional on the version it read."""
    from chalicelib import artifacts
    from chalicelib.deployments import route_targets

    artifacts.change(artifact_store(), publish_events, namespace, [artifacts.Document("gateways", document)], "upsert",
                     url_name=document["name"], expected_version=expected_version, targets=route_targets.source)


def get_status(call: Call, name: str) -> Reply:
    return Reply(200, lifecycle.status(artifact_store(), call.namespace, decoded_name(name)))


def put_status(call: Call, name: str) -> Reply:
    docs = call.documents()
    if len(docs) != 1:
        raise ValidationFailed.at("status", "one status: running, suspended or restarting")
    request = lifecycle.request_of(docs[0])
    return Reply(202, lifecycle.set_status(artifact_store(), call.namespace, decoded_name(name), request,
                                           publish_events))
