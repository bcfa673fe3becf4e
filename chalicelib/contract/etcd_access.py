"""How the control plane (gateways/publisher.py) and the agents (agent/watcher.py) reach etcd:
its endpoint, TLS, and etcd v3 authentication. The same settings on both sides
(VAMP_ETCD_* for the control plane, VAMP_AGENT_ETCD_* for an agent; docs/decisions/0023).

- endpoint: "host:port", or "https://host:port" / "http://host:port". TLS when the scheme says
  https or a CA or client certificate is given: `ca_file` verifies etcd's certificate (else the
  system's CAs), `cert_file` + `key_file` are the client certificate (etcd --client-cert-auth).
- username + password: etcd v3 auth. `POST /v3/auth/authenticate` gives a token sent in the
  `Authorization` header of every request; etcd answers 401 ("invalid auth token") once the
  token expired (simple tokens after --auth-token-ttl, JWTs at their exp), and TokenAuth then
  authenticates again and repeats the request, once.

Standard library only (docs/decisions/0015): TokenAuth is a requests auth by duck typing (a
callable taking the request, with a response hook), so the contract imports no requests.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EtcdAccess:
    endpoint: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("etcd: a client certificate needs both its cert file and its key file")
        if self.username and self.password is None:
            raise ValueError(f"etcd: user {self.username!r} has no password (set the password or its file)")
        self.address  # noqa: B018 - refuse a bad endpoint now, not on first use

    @property
    def address(self) -> tuple[str, str, int]:
        """(scheme, host, port)."""
        rest = self.endpoint
        scheme = "http"
        if "://" in rest:
            scheme, rest = rest.split("://", 1)
            if scheme not in ("http", "https"):
                raise ValueError(f"etcd endpoint {self.endpoint!r}: http:// or https://")
        host, _, port = rest.rstrip("/").rpartition(":")
        if not port.isdigit():
            raise ValueError(f"etcd endpoint {self.endpoint!r}: host:port")
        if self.ca_file or self.cert_file:
            scheme = "https"
        return scheme, host.strip("[]") or "127.0.0.1", int(port)

    @property
    def base_url(self) -> str:
        scheme, host, port = self.address
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    def client_options(self) -> dict[str, Any]:
        """etcd3gw.Etcd3Client's keyword arguments for this access."""
        scheme, host, port = self.address
        return {"host": host, "port": port, "protocol": scheme, "ca_cert": self.ca_file,
                "cert_cert": self.cert_file, "cert_key": self.key_file}

    def auth(self, session: Any) -> "TokenAuth | None":
        """What to set as `session.auth` (None: etcd without authentication)."""
        if not self.username:
            return None
        return TokenAuth(self, session)

    def configure(self, session: Any) -> Any:
        """A requests session (etcd3gw's client's) made to reach etcd as these settings say. The
        process environment is not trusted for it: requests lets REQUESTS_CA_BUNDLE override a
        session's CA, and a proxy variable would send etcd's traffic (tokens) through a proxy."""
        session.trust_env = False
        scheme, _, _ = self.address
        if scheme == "https":
            session.verify = self.ca_file or True
            if self.cert_file and self.key_file:
                session.cert = (self.cert_file, self.key_file)
        session.auth = self.auth(session)
        return session


def _unchanged(request: Any) -> Any:
    return request


class TokenAuth:
    """etcd v3 authentication for a requests session: the token in `Authorization`, fetched on
    first use, fetched again when etcd answers 401, shared by the session's threads."""

    def __init__(self, access: EtcdAccess, session: Any, timeout: float = 5.0) -> None:
        self.access, self.session, self.timeout = access, session, timeout
        self._token: str | None = None
        self._lock = threading.Lock()
        self.authentications = 0

    def token(self, stale: str | None = None) -> str:
        """The current token; a new one if `stale` is still the current one (it was refused)."""
        with self._lock:
            if self._token is None or self._token == stale:
                self._token = self._authenticate()
            return self._token

    def _authenticate(self) -> str:
        response = self.session.post(self.access.base_url + "/v3/auth/authenticate", auth=_unchanged,
                                     json={"name": self.access.username, "password": self.access.password},
                                     timeout=self.timeout)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not body.get("token"):
            reason = body.get("message") or body.get("error") or f"HTTP {response.status_code}"
            raise PermissionError(f"etcd refused user {self.access.username!r}: {reason}")
        self.authentications += 1
        return body["token"]

    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = self.token()
        request.register_hook("response", self._again_if_expired)
        return request

    def _again_if_expired(self, response: Any, **send: Any) -> Any:
        if response.status_code != 401 or getattr(response.request, "vamp_retried", False):
            return response
        refused = response.request.headers.get("Authorization")
        response.content  # noqa: B018 - read it, so the connection can be reused
        response.close()
        again = response.request.copy()
        again.vamp_retried = True
        again.headers["Authorization"] = self.token(stale=refused)
        retried = response.connection.send(again, **send)
        retried.history.append(response)
        retried.request = again
        return retried
