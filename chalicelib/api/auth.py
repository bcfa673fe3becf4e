"""Who is calling and whether they may: the Bearer token of the Authorization header, checked
against the token store (store/tokens.py keeps the tokens, hashed, with their role and
namespaces), then the route's permission (api/authorization.py).

The same token check runs in the Chalice authorizer on API Gateway (`authorize_token`) and in the
middleware everywhere (`refusal`), so a request without a valid token gets 401 everywhere. The
middleware never trusts the authorizer's cached verdict: it asks the store again (through
`VerifiedTokens`, at most VERIFIED_FOR seconds old), so a revoked token stops working within
seconds, and role and namespaces always come from the store (docs/decisions/0022).
"""
from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache
from typing import Callable
from urllib.parse import unquote

from chalicelib.api.authorization import Caller, iam_caller, iam_principals
from chalicelib.api.authorization import refusal as route_refusal
from chalicelib.api.http import CALLER, busy_reply
from chalicelib.errors import FieldError, VampError
from chalicelib.settings import settings
from chalicelib.store.tokens import DynamoDBTokenStore, StoredToken, hash_token

log = logging.getLogger(__name__)

VERIFIED_FOR = 2.0  # seconds a process trusts the store's last answer about a token


class VerifiedTokens:
    """Tokens the store confirmed in the last `ttl` seconds, with their role and namespaces: one
    store read per token and `ttl` per process at most, and a revocation reaches every process
    within `ttl`. Only successes are kept (a token created a moment ago works at once)."""

    def __init__(self, ttl: float = VERIFIED_FOR, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.clock = ttl, clock
        self._seen: dict[tuple[str, str], tuple[float, StoredToken]] = {}
        self._lock = threading.Lock()

    def check(self, token: str | None, load: Callable[[str | None], StoredToken | None]) -> StoredToken | None:
        if not token or len(token) > 200:
            return None
        s = settings()
        key = (f"{s.aws_endpoint}/{s.table_name}", hash_token(token))  # tests switch tables
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.ttl:
            return seen[1]
        found = load(token)
        with self._lock:
            if found is None:
                self._seen.pop(key, None)
            else:
                if len(self._seen) > 10_000:  # bounded: drop what has aged out
                    self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.ttl}
                self._seen[key] = (now, found)
        return found

    def forget(self) -> None:
        """A token was revoked through this process: no grace period here."""
        with self._lock:
            self._seen.clear()


VERIFIED = VerifiedTokens()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def _iam_principals() -> dict:
    return _principals_of(settings().iam_principals)


@lru_cache(maxsize=4)
def _principals_of(text: str | None) -> dict:
    """VAMP_IAM_PRINCIPALS parsed once per value, not on every request (read-only after)."""
    try:
        return iam_principals(text)
    except ValueError as e:  # fail closed: nobody is mapped
        log.error("%s: every IAM caller is refused", e)
        return {}


def authenticate(request) -> Caller | None:
    """The caller, or None. With auth_mode iam, the identity API Gateway's IAM authorizer
    verified (SigV4), with the role VAMP_IAM_PRINCIPALS gives it; otherwise the Bearer token,
    checked against the store even when API Gateway's token authorizer already ran (its verdict
    is cached for minutes' worth of requests; the store's is at most VERIFIED_FOR seconds old)."""
    context = request.context or {}
    if settings().auth_mode == "iam":
        identity = context.get("identity") or {}
        arn = identity.get("userArn") or identity.get("caller")
        return iam_caller(arn, _iam_principals()) if arn else None
    found = VERIFIED.check(bearer_token((request.headers or {}).get("authorization")),
                           DynamoDBTokenStore().authenticate)
    return None if found is None else Caller(found.name, found.role, found.namespaces, found.workflow, found.chain)


def namespace_in(request) -> str:
    """The namespace a request addresses: its path's (as the handler will read it), else the
    default one."""
    raw = (request.uri_params or {}).get("namespace")
    return settings().default_namespace if raw is None else unquote(raw)


def refusal(request) -> tuple[int, dict, dict[str, str]] | None:
    """Why the middleware stops a request before its handler, as (status, body, headers): 401
    without valid credentials, 403 when the caller's role or namespaces do not cover the route,
    503 while the token store is throttled or timing out; None lets the request through (and
    leaves the caller in the request's context for the handler)."""
    try:
        caller = authenticate(request)
    except Exception as error:
        reply = busy_reply(error)
        if reply is None:
            raise
        return reply.status, reply.body, reply.headers
    if caller is None:
        return 401, unauthorized_body(), {"WWW-Authenticate": 'Bearer realm="vamp"'}
    context = request.context if request.context is not None else {}
    params = {k: unquote(v) for k, v in (request.uri_params or {}).items() if isinstance(v, str)}
    refused = route_refusal(caller, request.method, context.get("resourcePath"), namespace_in(request), params)
    if refused is not None:
        return refused.status, refused.body(), {}
    context[CALLER] = caller
    return None


def authorize_token(authorization: str | None) -> str | None:
    """The API Gateway token authorizer's check (same store, same rules). Its verdict only
    opens the gate: the middleware checks the token and its scope again on every request."""
    found = DynamoDBTokenStore().authenticate(bearer_token(authorization))
    return found.name if found else None


def unauthorized_body() -> dict:
    return VampError("authentication required", [FieldError("Authorization", "a valid Bearer token is required")]).body()
