"""GET /healthz and GET /metrics on the agent's status address (loopback by default).

/metrics is prometheus_client's own handler (its text format, or OpenMetrics for a scraper that
asks for it); /healthz and the 404 are the agent's. With a status token (required beyond
loopback: agent/settings.py), every path wants `Authorization: Bearer <token>` and answers 401
without it: /healthz tells which configuration a node refused and why.
"""
from __future__ import annotations

import hmac
import json
import logging
import threading
from http.server import ThreadingHTTPServer
from typing import Any, Callable

from prometheus_client import CollectorRegistry, MetricsHandler

log = logging.getLogger("agent.http")


class StatusServer:
    def __init__(self, host: str, port: int, health: Callable[[], tuple[bool, dict[str, Any]]],
                 registry: CollectorRegistry, token: str | None = None) -> None:
        expected = f"Bearer {token}".encode() if token else None

        class Handler(MetricsHandler.factory(registry)):  # type: ignore[misc]
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                given = (self.headers.get("Authorization") or "").encode()
                if expected is not None and not hmac.compare_digest(given, expected):
                    self._send(401, b'{"error":"a status token is required (Authorization: Bearer)"}',
                               {"WWW-Authenticate": "Bearer"})
                elif path == "/metrics":
                    super().do_GET()
                elif path == "/healthz":
                    ok, body = health()
                    self._send(200 if ok else 503, json.dumps(body).encode())
                else:
                    self._send(404, b'{"error":"not found"}')

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: Any) -> None:  # probes every few seconds: quiet
                log.debug(fmt, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="status-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
