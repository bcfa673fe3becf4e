"""Shared fixtures: a real moto server on a loopback port the fixture picks, and a fresh table per test."""
from __future__ import annotations

import os
import uuid

import pytest

from local.stack import free_port  # noqa: F401  (the fixtures' port picker)

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




@pytest.fixture(scope="session")
def moto_server():
    """moto's server, in-process, on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    from local import moto_speedups

    # As the local stack runs moto: transactions back up only what they touch, one at a time
    # (moto's own deep-copies whole tables, which races with other threads writing them).
    moto_speedups.apply()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["MOTO_PORT"] = str(port)
    yield endpoint
    server.stop()


@pytest.fixture()
def aws(moto_server, monkeypatch):
    """Point the project at moto with a table of its own, so tests never see each other's data."""
    from chalicelib.store import table

    monkeypatch.setenv("VAMP_AWS_ENDPOINT", moto_server)
    monkeypatch.setenv("VAMP_TABLE_NAME", f"vamp-test-{uuid.uuid4().hex[:12]}")
    table.reset_clients()
    table.ensure_table()
    yield moto_server
    table.client().delete_table(TableName=table.table_name())
    table.reset_clients()


@pytest.fixture(scope="session", autouse=True)
def _models_built():
    """Build the DSL's deferred models before any test: tests validate on several threads (the
    API in the test thread, release tasks in moto's), and pydantic's first build is not
    thread-safe."""
    from chalicelib import dsl

    dsl.build_models()
