"""Fakes of outside systems that cannot run on these machines (their fixtures: tests/fixtures/fakes.py)."""
from __future__ import annotations

from tests.fakes.kubernetes_server import FakeKubernetes
from tests.fakes.opensearch_server import FakeOpenSearch

__all__ = ["FakeKubernetes", "FakeOpenSearch"]
