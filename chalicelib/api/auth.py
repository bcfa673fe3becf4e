"""The HTTP side of API tokens: the Bearer token of an Authorization header. The tokens
themselves are kept by store/tokens.py.

The same check (`DynamoDBTokenStore().authenticate(bearer_token(...))`) runs in the Chalice
authorizer on API Gateway and in the local stack, so a request without a valid token gets 401
everywhere.
"""
from __future__ import annotations


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None
