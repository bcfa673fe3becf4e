"""The test session: its environment (never real AWS; gateway ports per xdist worker) and the shared
fixtures of tests/fixtures/."""
from __future__ import annotations

import os

# Never reach real AWS from tests, whatever the developer's shell holds.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("AWS_PROFILE", None)

# Gateway ports assigned by the control plane come from a range of their own per xdist worker,
# below the kernel's ephemeral range (32768+, where free_port() and every client socket land):
# otherwise two workers' HAProxies, or a test server and a gateway, can want the same port.
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
os.environ["VAMP_GATEWAY_PORTS"] = f"{20000 + 1000 * _worker}-{20000 + 1000 * _worker + 999}"

# As the local stack: loopback admitted by the egress policy (the tests' backends and webhooks
# listen there). The egress tests set the policy they attack (tests/gateways/test_egress_*.py).
os.environ["VAMP_EGRESS_ALLOW"] = "127.0.0.0/8,::1"
# Agents apply only configurations signed with a key they hold (docs/decisions/0023): the tests'
# control plane signs and their agents verify with this one, unless a test says otherwise.
TEST_SIGNING_KEY = "vamp-tests-gateway-signing-key-0123456789abcdef"
os.environ.setdefault("VAMP_GATEWAY_SIGNING_KEY", TEST_SIGNING_KEY)
os.environ.setdefault("VAMP_AGENT_SIGNING_KEY", TEST_SIGNING_KEY)


# tests.aws_calls first: it hooks botocore before any fixture makes a client (docs/decisions/0038).
pytest_plugins = ["tests.aws_calls", "tests.fixtures.aws", "tests.fixtures.api", "tests.fixtures.gateways", "tests.fixtures.fakes"]
