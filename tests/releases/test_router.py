"""The traffic router's conditional gateway write: a lost race reads again, and gives up in time."""
from __future__ import annotations

import pytest

from chalicelib.errors import Conflict
from chalicelib.releases import router as router_module
from chalicelib.releases.model import Phase, ReleaseState, Snapshot
from chalicelib.releases.plan import Plan
from chalicelib.releases.router import GatewayRouter
from chalicelib.retry import STATE_RACE
from chalicelib.store.artifact_store import Write
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

from .conftest import CANARY, GATEWAY, STABLE


@pytest.fixture()
def release(aws) -> ReleaseState:
    store = DynamoDBArtifactStore()
    routes = {STABLE: {"weight": "100%"}, CANARY: {"weight": "0%"}}
    store.apply("default", [Write("gateways", GATEWAY, {"name": GATEWAY, "port": "9050/http", "routes": routes}, None)])
    return ReleaseState(id="x", name="r1", namespace="default", spec={}, gateway=GATEWAY, stable=STABLE, canary=CANARY,
                        plan=Plan(weights=[50], interval=1, failures=1, minimum_requests=1, inconclusive_limit=1),
                        snapshot=Snapshot(stable=routes[STABLE], canary=routes[CANARY], pool=100),
                        phase=Phase.PROGRESSING, since="t", started="t")


def losing(store: DynamoDBArtifactStore, races: int):
    """The store, whose first `races` writes lose to someone else's."""
    real, lost = store.apply, []

    def apply(namespace, writes):
        if len(lost) < races:
            lost.append(writes)
            raise Conflict("gateways/shop was changed by someone else", [])
        return real(namespace, writes)

    store.apply = apply
    return lost


class StraightToTheStore:
    """The gateway write path without its own retries and publishing: the router's race alone."""

    PublishFailed = router_module.gateway_writes.PublishFailed

    @staticmethod
    def apply_counted(store, namespace, writes):
        return store.apply(namespace, writes), 0

    @staticmethod
    def after(*args):
        return None


def test_a_lost_race_reads_again_and_writes_once(release, monkeypatch):
    monkeypatch.setattr(router_module, "gateway_writes", StraightToTheStore)
    router = GatewayRouter()
    lost = losing(router.store, 2)
    assert router.set_weight("default", release, 50, lambda: None).written is True
    assert len(lost) == 2 and router.writes == 1
    routes = router.store.get("default", "gateways", GATEWAY).document["routes"]
    assert (routes[STABLE]["weight"], routes[CANARY]["weight"]) == ("50%", "50%")
    assert router.set_weight("default", release, 50, lambda: None).written is False  # already so


def test_a_gateway_changing_on_every_attempt_is_given_up(release, monkeypatch):
    monkeypatch.setattr(router_module, "gateway_writes", StraightToTheStore)
    router = GatewayRouter()
    lost = losing(router.store, 100)
    with pytest.raises(Conflict, match="gateway shop is changing too often"):
        router.set_weight("default", release, 50, lambda: None)
    assert len(lost) == STATE_RACE.attempts and router.writes == 0
