"""The agent tests' own fixture: a fake of the control plane's event API (the shared ones, etcd,
backends and agents, are in tests/fixtures/gateways.py)."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.agent.helpers import FakeApi


@pytest.fixture()
def fake_api() -> Iterator[FakeApi]:
    api = FakeApi()
    yield api
    api.stop()
