"""The bridge between Chalice requests and the core: a `Call` in, a `Reply` out, errors as
Vamp's JSON `{"message", "errors": [{"path", "reason"}]}` with the right status."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote

from chalicelib import aws
from chalicelib.api import negotiation
from chalicelib.api.authorization import NAMESPACE, Caller
from chalicelib.errors import FieldError, Unavailable, ValidationFailed, VampError
from chalicelib.settings import settings

log = logging.getLogger(__name__)

# Query flags as people write them (`?validate_only`, `=on`, `=Y`); anything else is a 400, never a
# silent false: `validate_only=on` once wrote what it meant to check.
TRUE = {"true", "1", "yes", "y", "on", ""}
FALSE = {"false", "0", "no", "n", "off"}
# A query string longer than this is refused: it would be copied into every Link header.
MAX_QUERY = 4096
CALLER = "vamp.caller"  # where the middleware leaves the Caller in a request's context


@dataclass
class Call:
    """What a handler needs of a request, without Chalice."""

    namespace: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    multi_query: dict[str, list[str]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes = b""
    # Who calls, as the middleware found them in the token store (api/auth.py); None only for
    # a request the middleware did not see, which a handler needing the caller refuses.
    caller: Caller | None = None

    @property
    def principal(self) -> str | None:
        return self.caller.name if self.caller else None

    def flag(self, name: str) -> bool:
        value = self.query.get(name)
        if value is None or value.lower() in FALSE:
            return False
        if value.lower() in TRUE:
            return True
        raise ValidationFailed.at(name, f"{value[:40]!r} is not a flag: true/false, yes/no, on/off, 1/0")

    def documents(self) -> list[Any]:
        return negotiation.read_body(self.raw_body, self.headers.get("content-type"), settings().max_body_bytes)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Text:
    """A body sent as it is (e.g. an HAProxy configuration), not rendered as JSON or YAML."""

    text: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def namespace_of(raw: str | None) -> str:
    if raw is None:
        return settings().default_namespace
    ns = unquote(raw)
    if not NAMESPACE.fullmatch(ns):  # `match` let "default\n" through (`$` matches before a final newline)
        raise ValidationFailed.at("namespace", "lowercase letters, digits and '-', at most 63 characters")
    return ns


def build_call(request, namespace: str | None) -> Call:
    qp = request.query_params or {}
    multi = {k: qp.getlist(k) for k in qp} if qp else {}
    length = sum(len(k) + sum(len(v) + 2 for v in vs) for k, vs in multi.items())
    if length > MAX_QUERY:
        raise ValidationFailed.at("query", f"longer than {MAX_QUERY} characters")
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    return Call(
        namespace=namespace_of(namespace),
        path=request.context.get("path", "") if request.context else "",
        query={k: v[-1] for k, v in multi.items()},
        multi_query=multi,
        headers=headers,
        raw_body=request.raw_body or b"",
        caller=(request.context or {}).get(CALLER),
    )


def error_reply(error: VampError) -> Reply:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, Unavailable) else {}
    return Reply(status=error.status, body=error.body(), headers=headers)


def busy_reply(error: BaseException) -> Reply | None:
    """503 with Retry-After for a backend still throttled or timing out after its client's
    retries (the client may send the same request again), else None."""
    reason = aws.busy(error)
    if reason is None:
        return None
    log.warning("backend busy: %r", error)
    return error_reply(Unavailable("the service is busy; retry later", [FieldError("backend", reason)]))


def _unexpected(error: Exception) -> Reply:
    """Busy backends as busy_reply says; anything else a 500 in the same shape, details in the
    log (called while handling `error`)."""
    reply = busy_reply(error)
    if reply is None:
        log.exception("unhandled error")
        reply = Reply(500, {"message": "internal error", "errors": []})
    return reply


def dispatch(request, namespace: str | None, handler: Callable[[Call], Reply]) -> tuple[int, str | None, dict[str, str]]:
    """Run a handler; returns (status, body text, headers) ready for a chalice Response."""
    accept = (request.headers or {}).get("accept")
    try:
        if request.method not in ("GET", "HEAD"):  # a 406 before a write: it must not do what it cannot answer
            negotiation.wants_yaml(accept)  # (reads may answer text themselves: the VGA configuration)
        reply = handler(build_call(request, namespace))
    except VampError as e:
        reply = error_reply(e)
    except Exception as e:
        reply = _unexpected(e)
    headers = dict(reply.headers)
    if reply.body is None:
        return reply.status, None, headers
    if isinstance(reply.body, Text):
        headers["Content-Type"] = reply.body.content_type
        return reply.status, reply.body.text, headers
    try:
        text, content_type = negotiation.render(reply.body, accept)
    except VampError as e:  # 406: answer the refusal in JSON
        text, content_type = negotiation.render(e.body(), None)
        return e.status, text, {"Content-Type": content_type}
    headers["Content-Type"] = content_type
    return reply.status, text, headers


def decoded_name(raw: str) -> str:
    """Path names arrive URL-encoded (gateway names carry '/' as %2F); bytes that are not UTF-8
    (`%C3%28`) are a 400, not a name holding U+FFFD."""
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError as e:
        raise ValidationFailed.at("name", f"not UTF-8 once decoded: {e.reason}") from None
