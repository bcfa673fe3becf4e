from __future__ import annotations

import time
from typing import Any, Callable

from chalicelib.drivers.base import HealthCheckSpec, PortSpec, ServiceSpec

# A tiny HTTP service that answers its version (and 500 on /fail); used by the local driver tests.
SERVER = (
    "python3 -c \"import http.server,os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "  def do_GET(self):\n"
    "    b=os.environ.get('VERSION','?').encode(); self.send_response(200); self.end_headers(); self.wfile.write(b)\n"
    "  def log_message(self,*a): pass\n"
    "http.server.HTTPServer(('127.0.0.1',int(os.environ['PORT'])),H).serve_forever()\""
)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def image_spec(**overrides: Any) -> ServiceSpec:
    base = dict(
        deployment="sava", cluster="sava", service="sava:1.0.0", deployable_type="container/docker",
        definition="magneticio/sava:1.0.0", ports=(PortSpec("webport", 8080),), env={"A": "1"},
        cpu=0.2, memory=256.0, instances=2,
        health_checks=(HealthCheckSpec("webport", "/health", "HTTP", 10, 5, 10, 3),),
    )
    base.update(overrides)
    return ServiceSpec(**base)
