"""Release endpoints: `Call` in, `Reply` out (routes in app.py).

POST /releases (start; `validate_only`), GET /releases, GET /releases/<name> (status),
POST /releases/<name>/<pause|resume|approve|promote|abort>, DELETE /releases/<name> (a finished one).
"""
from __future__ import annotations

from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.artifacts import Resolver
from chalicelib.errors import ValidationFailed


def _deps():
    from chalicelib.releases import operations  # pydantic models: not at cold start

    return operations, operations.deps()


def start(call: Call) -> Reply:
    service, d = _deps()
    docs = call.documents()
    if len(docs) != 1:
        raise ValidationFailed.at("body", f"exactly one release expected, got {len(docs)}")
    resolve = Resolver(d.router.store, call.namespace, {})
    body = service.start(d, call.namespace, docs[0], resolve, validate_only=call.flag("validate_only"))
    return Reply(200 if call.flag("validate_only") else 202, body)


def list_releases(call: Call) -> Reply:
    service, d = _deps()
    return Reply(200, service.listing(d, call.namespace))


def status(call: Call, name: str) -> Reply:
    service, d = _deps()
    return Reply(200, service.status(d, call.namespace, decoded_name(name)))


def act(call: Call, name: str, action: str) -> Reply:
    service, d = _deps()
    return Reply(202, service.act(d, call.namespace, decoded_name(name), action))


def delete(call: Call, name: str) -> Reply:
    service, d = _deps()
    service.delete(d, call.namespace, decoded_name(name))
    return Reply(204, None)
