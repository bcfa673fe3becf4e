"""Deployments over HTTP (REFERENCE.md section 2): a `Call` in, a `Reply` out.

POST/PUT/DELETE answer 202 with the deployment as stored; synchronisation runs right after the
change (its failures become the services' status, never the response's), and again on the
schedule. `?force=true` on DELETE removes the deployment's record and gateways at once, whatever
its phase; what the driver still runs of it is removed by the next passes.
"""
from __future__ import annotations

import logging

from chalicelib.api import pagination
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.errors import ValidationFailed
from chalicelib.settings import settings

log = logging.getLogger(__name__)


def _store():
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

    return DynamoDBArtifactStore()


def _publish(namespace: str, events: list[dict]) -> None:
    from chalicelib.store.event_backend import event_store

    event_store().publish(namespace, events)


def _one(call: Call) -> object | None:
    docs = call.documents()
    if not docs:
        return None
    if len(docs) != 1:
        raise ValidationFailed.at("body", f"exactly one document expected, got {len(docs)}")
    return docs[0]


def _sync(namespace: str, name: str) -> None:
    from chalicelib.deployments.sync import sync_namespace

    try:
        sync_namespace(namespace, only=name, publish=_publish)
    except Exception:  # noqa: BLE001 - the change is stored; the schedule retries
        log.exception("synchronisation after a change of %s/%s failed", namespace, name)


def _shown(call: Call, store, name: str, version: int) -> Reply:
    from chalicelib.deployments import service

    stored = store.get(call.namespace, service.KIND, name)
    if stored is None:
        return Reply(202, None)
    return Reply(202, service.show(store, call.namespace, stored, call.flag("as_blueprint")),
                 {"ETag": f'"{stored.version}"'})


def list_deployments(call: Call) -> Reply:
    from chalicelib.deployments import service

    page, per_page = pagination.page_params(call.query, settings().per_page_max)
    store = _store()
    result = store.list(call.namespace, service.KIND, page, per_page)
    body = [service.show(store, call.namespace, a, call.flag("as_blueprint")) for a in result.items]
    return Reply(200, body, pagination.page_headers(call.path, call.query, page, per_page, result.total))


def get_deployment(call: Call, name: str) -> Reply:
    from chalicelib.deployments import service

    store = _store()
    stored = service.get(store, call.namespace, decoded_name(name))
    return Reply(200, service.show(store, call.namespace, stored, call.flag("as_blueprint")),
                 {"ETag": f'"{stored.version}"'})


def create_deployment(call: Call) -> Reply:
    return _change(call, None, "merge")


def update_deployment(call: Call, name: str) -> Reply:
    return _change(call, decoded_name(name), "slice" if call.flag("delete") else "merge")


def delete_deployment(call: Call, name: str) -> Reply:
    return _change(call, decoded_name(name), "slice")


def _change(call: Call, name: str | None, mode: str) -> Reply:
    from chalicelib.deployments import service

    data = _one(call)
    if data is None and mode == "merge":
        raise ValidationFailed.at("body", "a blueprint, or a reference to a stored one")
    if name is not None and mode == "merge" and isinstance(data, dict) and "clusters" in data:
        data = {**data, "name": name}  # the deployment is named by the path
    store = _store()
    version, doc = service.change(store, call.namespace, name, data, mode, _publish,
                                  validate_only=call.flag("validate_only"), force=call.flag("force"))
    if call.flag("validate_only") or doc is None:
        return Reply(202, doc)
    _sync(call.namespace, doc["name"])
    return _shown(call, store, doc["name"], version)


def deployment_scale(call: Call, name: str, cluster: str, service_name: str) -> Reply:
    from chalicelib.deployments import service

    data = _one(call) if call.raw_body else None
    store = _store()
    body = service.scale(store, call.namespace, decoded_name(name), decoded_name(cluster),
                         decoded_name(service_name), data, _publish)
    if data is not None:
        _sync(call.namespace, decoded_name(name))
        return Reply(202, body)
    return Reply(200, body)


def deployment_sla(call: Call, name: str, cluster: str, method: str) -> Reply:
    from chalicelib.deployments import service

    data = _one(call) if method in ("POST", "PUT") else None
    if method in ("POST", "PUT") and data is None:
        raise ValidationFailed.at("body", "an sla")
    body = service.sla(_store(), call.namespace, decoded_name(name), decoded_name(cluster), data, method, _publish)
    return Reply(200 if method == "GET" else (204 if method == "DELETE" else 202), body)


def synchronise(_event=None) -> dict:
    """The scheduled pass over every namespace (EventBridge)."""
    from chalicelib.deployments.sync import run_all

    return {ns: {"deployments": p.deployments, "changed": p.changed, "errors": p.errors}
            for ns, p in run_all(_publish).items()}
