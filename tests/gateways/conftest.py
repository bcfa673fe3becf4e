"""Gateway tests: the API (chalice test client on moto) publishing to a real etcd, agents with
a real HAProxy, tiny HTTP backends. Fixtures of the agent and API tests are reused."""
from __future__ import annotations

import uuid
from typing import Iterator

import pytest

from tests.agent.conftest import backends, etcd, live_etcd, start_agent  # noqa: F401  (fixtures)
from tests.agent.helpers import free_port
from tests.api.conftest import Api, api  # noqa: F401  (fixture)


@pytest.fixture()
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture()
def publishing(aws, live_etcd, monkeypatch) -> Iterator[dict]:  # noqa: F811
    """The API publishes to the session's etcd; its own virtual-hosts port (nothing shared)."""
    from chalicelib.settings import settings

    values = {"VAMP_ETCD_ENDPOINT": live_etcd.endpoint, "VAMP_VIRTUAL_HOSTS_PORT": str(free_port())}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    settings.cache_clear()
    yield values
    settings.cache_clear()


@pytest.fixture()
def gw_api(publishing, api) -> Api:  # noqa: F811
    return api
