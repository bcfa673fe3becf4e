"""A tiny HTTP server answering its own name, in a thread: the demo's gateway step splits
traffic between two of them, and the gateway and agent tests do the same. And the traffic that
tells them apart through a gateway, remembered request by request (the fault tests and bench)."""
from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Named(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = self.server.name.encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # HAProxy's health checks and reloads close connections: not news


class Backend:
    """Answers its name on 127.0.0.1 at `.port` until `stop()`."""

    def __init__(self, name: str) -> None:
        self.server = QuietServer(("127.0.0.1", 0), _Named)
        self.server.name = name  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class RecordedTraffic:
    """One request at a time to 127.0.0.1:`port` in a thread (a context manager), each kept as
    (wall time, the backend's name or "error ..."): what a gateway really did, to hold a
    release's decisions against. The canary is the backend named "B"."""

    def __init__(self, port: int, pause: float = 0.005) -> None:
        self.port, self.pause, self.seen = port, pause, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _one(self) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            response = conn.getresponse()
            body = response.read().decode()
            return body if response.status == 200 else f"error {response.status}"
        finally:
            conn.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.seen.append((time.time(), self._one()))
            except OSError as e:
                self.seen.append((time.time(), f"error {type(e).__name__}"))
                time.sleep(0.05)
            time.sleep(self.pause)

    def __enter__(self) -> "RecordedTraffic":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(10)

    def between(self, start: float, end: float = float("inf")) -> Counter:
        return Counter(body for t, body in list(self.seen) if start <= t <= end)

    def canary_share(self, start: float, end: float = float("inf")) -> tuple[float, int]:
        """(percent of the answered requests that B answered, how many were answered); nan if none."""
        counts = self.between(start, end)
        served = counts["A"] + counts["B"]
        return (100 * counts["B"] / served if served else float("nan")), served

    def saw_weight(self, weight: int, start: float, end: float) -> tuple[bool, float, int]:
        """Whether B's share of the requests answered in [start, end] is `weight` percent, within
        5 binomial standard deviations (at least 3 points) and over more than 20 requests:
        (that, the share, how many). A check that passed at a weight must have seen it."""
        share, served = self.canary_share(start, end)
        sd = 100 * (weight / 100 * (1 - weight / 100) / max(served, 1)) ** 0.5
        return served > 20 and abs(share - weight) <= max(5 * sd, 3), share, served

    def failed(self) -> int:
        return sum(1 for _, body in list(self.seen) if body.startswith("error"))
