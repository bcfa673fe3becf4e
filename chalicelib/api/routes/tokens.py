"""API tokens: `GET|POST /api/v1/tokens`, `DELETE /api/v1/tokens/<name>` (shown once, stored hashed)."""
from __future__ import annotations

from chalicelib.api.backends import token_store
from chalicelib.api.http import Call, Reply, decoded_name
from chalicelib.errors import FieldError, ValidationFailed


def _token_view(p) -> dict:
    return {"name": p.name, "created": p.created}


def list_tokens(call: Call) -> Reply:
    return Reply(200, [_token_view(p) for p in token_store().list()])


def create_token(call: Call) -> Reply:
    docs = call.documents()
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ValidationFailed.at("body", "one map: {name: <token name>}")
    unknown = set(docs[0]) - {"name"}
    if unknown:
        raise ValidationFailed("Invalid input", [FieldError(k, "unknown field") for k in sorted(unknown)])
    token, stored = token_store().create(docs[0].get("name"))
    # The only time the token is ever shown: only its hash is stored.
    return Reply(201, {**_token_view(stored), "token": token})


def revoke_token(call: Call, name: str) -> Reply:
    token_store().revoke(decoded_name(name))
    return Reply(204, None)
