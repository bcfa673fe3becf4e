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


def scale_service(namespace: str, deployment: str, cluster: str, service: str, instances: int) -> None:
    """The autoscale built-in's writes: the scale PUT's path, then the deployment synchronised."""
    from chalicelib.api.routes.deployments import _sync
    from chalicelib.deployments import operations

    store = artifact_store()
    scale = operations.scale(store, namespace, deployment, cluster, service, None, publish_events)
    if scale.get("instances") != instances:
        operations.scale(store, namespace, deployment, cluster, service, {**scale, "instances": instances},
                         publish_events)
        _sync(namespace, deployment)


def releasing(namespace: str, gateway: str) -> str | None:
    from chalicelib.releases.model import ReleaseState
    from chalicelib.store.dynamodb_releases import DynamoDBReleaseStore

    return DynamoDBReleaseStore(ReleaseState).holder(namespace, gateway)


def writers():
    """What the built-ins change, through the API's paths (chalicelib/workflows/builtin_runs.Writers)."""
    from chalicelib.workflows.builtin_runs import Writers

    return Writers(write_gateway, scale_service, releasing)


def get_status(call: Call, name: str) -> Reply:
    return Reply(200, lifecycle.status(artifact_store(), call.namespace, decoded_name(name)))


def put_status(call: Call, name: str) -> Reply:
    docs = call.documents()
    if len(docs) != 1:
        raise ValidationFailed.at("status", "one status: running, suspended or restarting")
    request = lifecycle.request_of(docs[0])
    return Reply(202, lifecycle.set_status(artifact_store(), call.namespace, decoded_name(name), request,
                                           publish_events))
