"""API tokens: `GET|POST /api/v1/tokens`, `DELETE /api/v1/tokens/<name>` (shown once, stored
hashed), each with a role and namespaces no wider than its creator's; a caller sees and revokes
only tokens within its own namespaces (docs/decisions/0022)."""
from __future__ import annotations

from chalicelib.api import auth, authorization
from chalicelib.api.backends import token_store
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.errors import FieldError, Forbidden, NotFound, ValidationFailed

FIELDS = {"name", "role", "namespaces"}


def _token_view(p) -> dict:
    view = {"name": p.name, "role": p.role, "namespaces": list(p.namespaces), "created": p.created}
    if p.workflow is not None:  # a workflow run's token (0044)
        view["workflow"] = p.workflow
    if p.expires_at is not None:
        view["expires_at"] = p.expires_at
    return view


def _caller(call: Call) -> authorization.Caller:
    if call.caller is None:  # the middleware always sets it: without it, nobody's scope is known
        raise Forbidden.at("Authorization", "no caller")
    return call.caller


def list_tokens(call: Call) -> Reply:
    caller = _caller(call)
    return Reply(200, [_token_view(p) for p in token_store().list() if authorization.within(caller, p.namespaces)])


def create_token(call: Call) -> Reply:
    caller = _caller(call)
    docs = call.documents()
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ValidationFailed.at("body", "one map: {name, role, namespaces: [...]}")
    doc = docs[0]
    unknown = set(doc) - FIELDS
    if unknown:
        raise ValidationFailed("Invalid input", [FieldError(k, "unknown field") for k in sorted(unknown)])
    if "role" not in doc:
        raise ValidationFailed.at("role", f"required: one of {', '.join(authorization.ROLES)}")
    # Without namespaces: the namespace the token is created in.
    role, namespaces = authorization.checked_grant(doc["role"], doc.get("namespaces", [call.namespace]))
    refused = authorization.grant_refusal(caller, role, namespaces)
    if refused is not None:
        raise refused
    token, stored = token_store().create(doc.get("name"), role=role, namespaces=namespaces)
    # The only time the token is ever shown: only its hash is stored.
    return Reply(201, {**_token_view(stored), "token": token})


def revoke_token(call: Call, name: str) -> Reply:
    caller, name = _caller(call), decoded_name(name)
    store = token_store()
    found = store.named(name)
    # A token beyond the caller's namespaces is not there for it (as in the list).
    if found is None or not authorization.within(caller, found.namespaces):
        raise NotFound(f"no token named {name}", [FieldError("name", "not found")])
    store.revoke(name)
    auth.VERIFIED.forget()  # this process stops accepting it at once; the others within seconds
    return Reply(204, None)
