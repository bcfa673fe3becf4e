"""Who is calling: the Bearer token of the Authorization header, checked against the token store
(store/tokens.py keeps the tokens, hashed).

The same check runs in the Chalice authorizer on API Gateway (`authorize_token`) and in the
middleware everywhere (`authenticate`), so a request without a valid token gets 401 everywhere.
"""
from __future__ import annotations

from chalicelib.api.http import busy_reply
from chalicelib.errors import FieldError, VampError
from chalicelib.settings import settings
from chalicelib.store.tokens import DynamoDBTokenStore


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def authenticate(request) -> str | None:
    """The caller's principal, or None. Trusts API Gateway's verdict when an authorizer already
    ran (token authorizer or IAM/SigV4); otherwise checks the Bearer token itself, so the
    local stack and tests enforce exactly what the authorizer enforces on AWS."""
    context = request.context or {}
    principal = (context.get("authorizer") or {}).get("principalId")
    if principal:
        return principal
    if settings().auth_mode == "iam":
        identity = context.get("identity") or {}
        return identity.get("userArn") or identity.get("caller")
    found = DynamoDBTokenStore().authenticate(bearer_token((request.headers or {}).get("authorization")))
    if found is None:
        return None
    context.setdefault("authorizer", {})["principalId"] = found.name
    return found.name


def refusal(request) -> tuple[int, dict, dict[str, str]] | None:
    """Why the middleware stops a request before its handler, as (status, body, headers): 401
    without valid credentials, 503 while the token store is throttled or timing out; None lets
    the request through."""
    try:
        principal = authenticate(request)
    except Exception as error:
        reply = busy_reply(error)
        if reply is None:
            raise
        return reply.status, reply.body, reply.headers
    if principal is None:
        return 401, unauthorized_body(), {"WWW-Authenticate": 'Bearer realm="vamp"'}
    return None


def authorize_token(authorization: str | None) -> str | None:
    """The API Gateway token authorizer's check (same store, same rules)."""
    found = DynamoDBTokenStore().authenticate(bearer_token(authorization))
    return found.name if found else None


def unauthorized_body() -> dict:
    return VampError("authentication required", [FieldError("Authorization", "a valid Bearer token is required")]).body()
