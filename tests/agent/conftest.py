"""Fixtures for the agent tests: real etcd, two backends, an agent in-process per test."""
from __future__ import annotations

import uuid
from typing import Any, Callable, Iterator

import pytest
import requests

from agent.app import Agent
from agent.settings import AgentSettings
from tests.agent.helpers import Backend, EtcdServer, FakeApi, free_port, sample, wait_for
from tests.fakes import fake_opensearch  # noqa: F401  (fixture)


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path_factory.mktemp("etcd") / "data").start()
    yield server
    server.stop()


@pytest.fixture()
def live_etcd(etcd: EtcdServer) -> EtcdServer:
    """The session etcd, restarted if an earlier test left it stopped."""
    if not etcd.healthy():
        etcd.start()
    return etcd


@pytest.fixture(scope="session")
def backends() -> Iterator[tuple[Backend, Backend]]:
    a, b = Backend("A"), Backend("B")
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture()
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    yield api
    api.stop()


class RunningAgent:
    def __init__(self, agent: Agent, etcd: EtcdServer) -> None:
        self.agent = agent
        self.etcd = etcd
        self.key = agent.settings.config_key
        self.url = agent.http.url

    def put(self, config: str) -> None:
        self.etcd.put(self.key, config)

    def healthz(self) -> tuple[int, dict[str, Any]]:
        r = requests.get(self.url + "/healthz", timeout=5)
        return r.status_code, r.json()

    def metric(self, name: str) -> float:
        text = requests.get(self.url + "/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)

    def wait_reloads(self, count: int, timeout: float = 15.0) -> None:
        wait_for(lambda: sample(self.agent.metrics, "vamp_agent_reloads_total") >= count, timeout,
                 what=f"{count} reloads")


@pytest.fixture()
def start_agent(live_etcd: EtcdServer, tmp_path) -> Iterator[Callable[..., RunningAgent]]:  # type: ignore[no-untyped-def]
    started: list[Agent] = []

    def start(**overrides: Any) -> RunningAgent:
        work = tmp_path / f"agent{len(started)}"
        settings = AgentSettings(**{
            "etcd_endpoint": live_etcd.endpoint,
            "namespace": f"t{uuid.uuid4().hex[:10]}",
            "work_dir": work,
            "listen": f"127.0.0.1:{free_port()}",
            "aggregate_interval": 3600.0,
            "backoff_max": 1.0,
            **overrides,
        })
        agent = Agent(settings)
        agent.start()
        started.append(agent)
        return RunningAgent(agent, live_etcd)

    yield start
    for agent in started:
        agent.stop()
