"""Webhooks that gate a release (before rollout, before each increase, before promotion) or are
told of a rollback. A 2xx answer advances; anything else, a timeout or a refused connection is a
failed check. Only http and https, short timeouts, no redirects followed, the answer unread
beyond 4 KB. The body is Flagger's: {name, namespace, phase, checksum, metadata}.

Egress (docs/decisions/0025-egress-policy.md): the host is resolved once, every address checked
against the egress policy, and the connection made to the address checked (the name goes in the
Host header and TLS's SNI and certificate check): DNS answering differently a moment later
changes nothing. What the release shows of a call is `ok`, `failed` or `refused by policy: ...`,
never what the network said (refused, timed out, HTTP 418): a release is not a port scanner.
The detail goes to the control plane's log."""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import socket
import ssl
from dataclasses import dataclass

from chalicelib.dsl.secrets import redact_url
from chalicelib.gateways import egress
from chalicelib.releases.model import ReleaseState
from chalicelib.releases.plan import Webhook

log = logging.getLogger(__name__)

PHASES = {"before_rollout": "pre-rollout", "before_increase": "confirm-traffic-increase",
          "before_promotion": "confirm-promotion", "on_rollback": "rollback"}
MAX_TIMEOUT = 30
OK, FAILED = "ok", "failed"


@dataclass(frozen=True)
class HookResult:
    name: str
    ok: bool
    status: int | None  # the HTTP status of a 2xx answer; None otherwise (see the module doc)
    reason: str  # ok | failed | refused by policy: <class> | refused: <why the URL cannot be used>

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "status": self.status, "reason": self.reason}


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a given address, with the URL's name as SNI and for the certificate check."""

    def __init__(self, address: str, port: int, server_hostname: str, timeout: float, context: ssl.SSLContext):
        super().__init__(address, port, timeout=timeout, context=context)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_hostname)


def tls_context() -> ssl.SSLContext:
    """The system's trust store (tests replace this to trust their own certificate)."""
    return ssl.create_default_context()


def _host_header(target: egress.Destination) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def post(target: egress.Destination, payload: dict, timeout: float) -> int:
    """POST to the address checked (never the name again); the HTTP status, or OSError and
    http.client's errors."""
    # Every address was checked; IPv4 first (Lambda's egress often has no IPv6 route).
    address = str(min(target.addresses, key=lambda a: a.version))
    if target.scheme == "https":
        conn: http.client.HTTPConnection = _PinnedHTTPS(address, target.port, target.host, timeout, tls_context())
    else:
        conn = http.client.HTTPConnection(address, target.port, timeout=timeout)
    headers = {"Host": _host_header(target), "Content-Type": "application/json", "User-Agent": "vamp-release",
               "Connection": "close"}
    if target.username is not None:  # credentials in the URL's user info: Basic
        pair = f"{target.username}:{target.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    try:
        conn.request("POST", target.path, body=json.dumps(payload).encode(), headers=headers)
        response = conn.getresponse()
        response.read(4096)
        return response.status
    finally:
        conn.close()


def body(hook: Webhook, release: ReleaseState) -> dict:
    checksum = hashlib.sha256(json.dumps(release.spec, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "name": release.name,
        "namespace": release.namespace,
        "phase": PHASES[hook.type],
        "checksum": checksum,
        "metadata": {**{str(k): str(v) for k, v in hook.metadata.items()},
                     "gateway": release.gateway, "stable": release.stable, "canary": release.canary,
                     "step": str(release.step), "weight": str(release.weight), "release_id": release.id},
    }


def call(hook: Webhook, payload: dict, *, resolve: egress.Resolver | None = None) -> HookResult:
    where = f"release {payload.get('namespace')}/{payload.get('name')} webhook {hook.name} ({redact_url(hook.url)})"
    try:
        target = egress.check_url(hook.url, resolve=resolve)
    except egress.Refused as e:
        log.warning("%s: %s", where, e)
        return HookResult(hook.name, False, None, str(e))
    except ValueError as e:
        return HookResult(hook.name, False, None, f"refused: {e}")
    try:
        status = post(target, payload, min(max(hook.timeout, 1), MAX_TIMEOUT))
    except (OSError, http.client.HTTPException, ValueError) as e:
        log.warning("%s at %s: no answer: %s", where, [str(a) for a in target.addresses], e)
        return HookResult(hook.name, False, None, FAILED)
    if not 200 <= status < 300:
        log.warning("%s at %s: HTTP %d", where, [str(a) for a in target.addresses], status)
        return HookResult(hook.name, False, None, FAILED)
    return HookResult(hook.name, True, status, OK)


def run(hooks: list[Webhook], release: ReleaseState, caller=call) -> list[HookResult]:
    """Every hook of one kind, in order; each is called (even after one fails) so all are reported."""
    return [caller(h, body(h, release)) for h in hooks]
