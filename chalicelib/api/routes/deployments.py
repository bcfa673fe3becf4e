"""Deployments over HTTP (Vamp's `/api/v1/deployments`): a `Call` in, a `Reply` out.

POST/PUT/DELETE answer 202 with the deployment as stored; synchronisation runs right after the
change (its failures become the services' status, never the response's), and again on the
schedule. `?force=true` on DELETE removes the deployment's record and gateways at once, whatever
its phase; what the driver still runs of it is removed by the next passes.
"""
from __future__ import annotations

import logging

from chalicelib.api import pagination
from chalicelib.api.backends import artifact_store, publish_events
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings

log = logging.getLogger(__name__)


def _one(call: Call) -> object | None:
    docs = call.documents()
    if not docs:
        return None
    if len(docs) != 1:
        raise ValidationFailed.at("body", f"exactly one document expected, got {len(docs)}")
    return docs[0]


def _sync(namespace: str, name: str) -> None:
    from chalicelib.deployments import sync  # pydantic models: not at cold start

    try:
        sync.sync_namespace(namespace, only=name, publish=publish_events)
    except Exception:  # noqa: BLE001 - the change is stored; the schedule retries
        log.exception("synchronisation after a change of %s/%s failed", namespace, name)


def _shown(call: Call, store, name: str, version: int) -> Reply:
    from chalicelib.deployments import operations  # pydantic models: not at cold start

    stored = store.get(call.namespace, operations.KIND, name)
    if stored is None:
        return Reply(202, None)
    return Reply(202, operations.show(store, call.namespace, stored, call.flag("as_blueprint")),
                 {"ETag": f'"{stored.version}"'})


def list_deployments(call: Call) -> Reply:
    from chalicelib.deployments import operations  # pydantic models: not at cold start

    page, per_page = pagination.page_params(call.query, settings().per_page_max)
    store = artifact_store()
    result = store.list(call.namespace, operations.KIND, page, per_page)
    body = [operations.show(store, call.namespace, a, call.flag("as_blueprint")) for a in result.items]
    return Reply(200, body, pagination.page_headers(call.path, call.query, page, per_page, result.total))


def get_deployment(call: Call, name: str) -> Reply:
    from chalicelib.deployments import operations  # pydantic models: not at cold start

    store = artifact_store()
    stored = operations.get(store, call.namespace, decoded_name(name))
    return Reply(200, operations.show(store, call.namespace, stored, call.flag("as_blueprint")),
                 {"ETag": f'"{stored.version}"'})


def create_deployment(call: Call) -> Reply:
    return _change(call, None, "merge")


def update_deployment(call: Call, name: str) -> Reply:
    return _change(call, decoded_name(name), "slice" if call.flag("delete") else "merge")


def delete_deployment(call: Call, name: str) -> Reply:
    return _change(call, decoded_name(name), "slice")


def _change(call: Call, name: str | None, mode: str) -> Reply:
    from chalicelib.deployments import operations  # pydantic models: not at cold start

    data = _one(call)
    if data is None and mode == "merge":
        raise ValidationFailed.at("body", "a blueprint, or a reference to a stored one")
    if name is not None and mode == "merge" and isinstance(data, dict) and "clusters" in data:
        data = {**data, "name": name}  # the deployment is named by the path
    store = artifact_store()
    version, doc = operations.change(store, call.namespace, name, data, mode, publish_events,
                                  validate_only=call.flag("validate_only"), force=call.flag("force"))
    if call.flag("validate_only") or doc is None:
        return Reply(202, doc)
    _sync(call.namespace, doc["name"])
    return _shown(call, store, doc["name"], version)


def deployment_scale(call: Call, name: str, cluster: str, service_name: str) -> Reply:
    from chalicelib.deployments import operations  # pydantic models: not at cold start

    data = _one(call) if call.raw_body else None
    store = artifact_store()
    body = operations.scale(store, call.namespace, decoded_name(name), decoded_name(cluster),
                         decoded_name(service_name), data, publish_events)
    if data is not None:
        _sync(call.namespace, decoded_name(name))
        return Reply(202, body)
    return Reply(200, body)


def deployment_sla(call: Call, name: str, cluster: str, method: str) -> Reply:
    from chalicelib.deployments import operations  # pydantic models: not at cold start

    data = _one(call) if method in ("POST", "PUT") else None
    if method in ("POST", "PUT") and data is None:
        raise ValidationFailed.at("body", "an sla")
    body = operations.sla(artifact_store(), call.namespace, decoded_name(name), decoded_name(cluster), data, method, publish_events)
    return Reply(200 if method == "GET" else (204 if method == "DELETE" else 202), body)

