from __future__ import annotations

from typing import Any

from chalicelib.drivers.base import HealthCheckSpec, PortSpec, ServiceSpec
from tests.agent.helpers import wait_for  # noqa: F401  (the drivers' tests poll with it too)

# A tiny HTTP service that answers its version (and 500 on /fail); used by the local driver tests.
SERVER = (
    "python3 -c \"import http.server,os\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "  def do_GET(self):\n"
    "    b=os.environ.get('VERSION','?').encode(); self.send_response(200); self.end_headers(); self.wfile.write(b)\n"
    "  def log_message(self,*a): pass\n"
    "http.server.HTTPServer(('127.0.0.1',int(os.environ['PORT'])),H).serve_forever()\""
)


def image_spec(**overrides: Any) -> ServiceSpec:
    base = dict(
        deployment="sava", cluster="sava", service="sava:1.0.0", deployable_type="container/docker",
        definition="magneticio/sava:1.0.0", ports=(PortSpec("webport", 8080),), env={"A": "1"},
        cpu=0.2, memory=256.0, instances=2,
        health_checks=(HealthCheckSpec("webport", "/health", "HTTP", 10, 5, 10, 3),),
    )
    base.update(overrides)
    return ServiceSpec(**base)
