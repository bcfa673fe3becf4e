"""The HTTP client: one `Api` per invocation, paths relative to the namespace's /api/v1.

Non-2xx replies raise ApiError with the API's message and its `[{path, reason}]` errors, so every
command reports a 4xx the same way (the field and the reason) and exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from vamp_cli import __version__

TIMEOUT = 30.0  # seconds per request; long polls pass their own


@dataclass
class Reply:
    status: int
    data: Any  # decoded JSON, else the text (None when empty)
    headers: dict = field(default_factory=dict)


class ApiError(Exception):
    """A non-2xx reply (status > 0) or no reply at all (status 0: connection refused, timeout)."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []

    def __str__(self) -> str:
        lines = [self.message]
        for e in self.errors:
            where = e.get("path") or ""
            lines.append(f"  {where}: {e.get('reason', '')}" if where else f"  {e.get('reason', '')}")
        return "\n".join(lines)


def seg(name: str) -> str:
    """One path segment, URL-encoded (gateway names hold a slash: sava/9050 -> sava%2F9050)."""
    return quote(str(name), safe="")


def _decode(resp: requests.Response) -> Any:
    if not resp.content:
        return None
    if "json" in resp.headers.get("content-type", ""):
        try:
            return resp.json()
        except ValueError:
            pass
    return resp.text


def _message(status: int, data: Any) -> tuple[str, list[dict]]:
    errors: list[dict] = []
    message = ""
    if isinstance(data, dict):
        message = str(data.get("message") or data.get("error") or data.get("Message") or "")
        raw = data.get("errors") or []
        if isinstance(raw, list):
            errors = [e if isinstance(e, dict) else {"path": "", "reason": str(e)} for e in raw]
    elif isinstance(data, str):
        message = data.strip()[:500]
    if status == 401:
        message = message or "unauthorized"
        message = f"401 {message}: the token is missing, wrong or revoked (vamp login, --token or VAMP_TOKEN)"
    elif status == 403:
        message = f"403 forbidden: {message or 'the token may not do this'}"
    else:
        message = f"{status} {message or requests.status_codes._codes.get(status, ('error',))[0]}"
    return message, errors


class Api:
    """requests.Session against `<host>[/<namespace>]/api/v1` with the Bearer token."""

    def __init__(self, host: str, token: str | None = None, namespace: str | None = None, *, timeout: float = TIMEOUT):
        self.host = host.rstrip("/")
        self.token = token
        self.namespace = namespace or "default"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"vamp-cli/{__version__}"
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    @property
    def base(self) -> str:
        prefix = "" if self.namespace == "default" else "/" + seg(self.namespace)
        return f"{self.host}{prefix}/api/v1"

    def url(self, path: str) -> str:
        return self.base + ("/" + path.lstrip("/") if path and path != "/" else "")

    def request(self, method: str, path: str, *, params=None, json=None, data=None, content_type=None,
                headers: dict | None = None, timeout: float | None = None) -> Reply:
        hdrs = dict(headers or {})
        if content_type:
            hdrs["Content-Type"] = content_type
        try:
            resp = self.session.request(method, self.url(path), params=params, json=json, data=data, headers=hdrs,
                                        timeout=timeout or self.timeout)
        except requests.ConnectionError as e:
            raise ApiError(0, f"cannot reach the Vamp API at {self.host} (is it running? --host or VAMP_HOST): "
                              f"{type(e).__name__}") from None
        except requests.Timeout:
            raise ApiError(0, f"the Vamp API at {self.host} did not answer within {timeout or self.timeout:g} s") from None
        body = _decode(resp)
        if not 200 <= resp.status_code < 300:
            message, errors = _message(resp.status_code, body)
            raise ApiError(resp.status_code, message, errors)
        return Reply(resp.status_code, body, dict(resp.headers))

    def get(self, path: str, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> Reply:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> Reply:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw) -> Reply:
        return self.request("DELETE", path, **kw)

    def events(self, params: dict | None = None) -> list[dict]:
        """GET /events (tag, type, page, per_page)."""
        data = self.get("/events", params=params).data
        return data if isinstance(data, list) else (data or {}).get("events", [])

    def stream(self, params: dict | None = None, *, wait: float = 20.0):
        """Follow /events/stream by long poll ({events, cursor, more}; after=cursor): yields events."""
        params = dict(params or {})
        while True:
            reply = self.get("/events/stream", params={**params, "wait": int(wait)}, timeout=wait + 15)
            page = reply.data or {}
            yield from page.get("events", [])
            if page.get("cursor"):
                params["after"] = page["cursor"]
