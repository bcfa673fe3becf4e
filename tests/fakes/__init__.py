"""Fakes of outside systems that cannot run on these machines, and their pytest fixtures.

    from tests.fakes import fake_opensearch  # noqa: F401  (then take `fake_opensearch` as an argument)
"""
from __future__ import annotations

import pytest

from tests.fakes.kubernetes_server import FakeKubernetes
from tests.fakes.opensearch_server import FakeOpenSearch

__all__ = ["FakeKubernetes", "FakeOpenSearch", "fake_kubernetes", "fake_opensearch"]


@pytest.fixture()
def fake_kubernetes():
    """A started FakeKubernetes (an API server subset) with nothing in it; stopped afterwards."""
    fake = FakeKubernetes().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture()
def fake_opensearch():
    """A started FakeOpenSearch with nothing in it, on a port of its own; stopped afterwards."""
    fake = FakeOpenSearch().start()
    try:
        yield fake
    finally:
        fake.stop()
