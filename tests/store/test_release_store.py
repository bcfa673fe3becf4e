"""The DynamoDB release store against moto's server: versions, transitions, lists."""
from __future__ import annotations

import pytest

from chalicelib.errors import Conflict, NotFound
from chalicelib.releases.model import Phase, ReleaseState, Snapshot
from chalicelib.releases.plan import Plan
from chalicelib.retry import STATE_RACE
from chalicelib.store import dynamodb_releases
from chalicelib.store.dynamodb_releases import DynamoDBReleaseStore
from chalicelib.store.release_store import StaleWrite

PLAN = Plan(weights=[50], interval=1, failures=1, minimum_requests=1, inconclusive_limit=1)


def state(name="r1", gateway="shop") -> ReleaseState:
    return ReleaseState(id=f"id-{name}", name=name, namespace="default", spec={"name": name}, plan=PLAN,
                        gateway=gateway, stable="a", canary="b", snapshot=Snapshot(stable={}, canary={}, pool=100),
                        phase=Phase.PROGRESSING, since="t", started="t", reason="started")


@pytest.fixture()
def store(aws):
    return DynamoDBReleaseStore(ReleaseState)


def test_put_get_and_the_conditional_writes(store):
    first = store.put("default", state(), None)
    assert first.version == 1 and first.updated
    got = store.get("default", "r1")
    assert got == first and got.phase is Phase.PROGRESSING
    with pytest.raises(StaleWrite):
        store.put("default", state(), None)  # one exists
    second = store.put("default", got, 1)
    assert second.version == 2
    with pytest.raises(StaleWrite):
        store.put("default", got, 1)
    with pytest.raises(StaleWrite):
        store.delete("default", "r1", 1)
    store.delete("default", "r1", 2)
    assert store.get("default", "r1") is None
    with pytest.raises(NotFound):
        store.require("default", "r1")
    assert store.calls == 9


def test_transition_changes_a_copy_and_stores_it(store):
    store.put("default", state(), None)
    seen = []

    def pause(s: ReleaseState) -> ReleaseState:
        seen.append(s)
        s.phase = Phase.PAUSED
        return s

    stored, changed = store.transition("default", "r1", pause)
    assert changed and stored.phase is Phase.PAUSED and stored.version == 2
    unchanged, changed = store.transition("default", "r1", lambda s: None)
    assert not changed and unchanged == stored


def test_transition_retries_a_lost_race_and_gives_up_after_its_attempts(store, monkeypatch):
    store.put("default", state(), None)
    real_put, raced = store.put, []

    def racing_put(namespace, new, expected_version):
        if len(raced) < 2:  # someone else writes between this read and this write
            raced.append(real_put(namespace, store.get(namespace, new.name), expected_version))
        return real_put(namespace, new, expected_version)

    monkeypatch.setattr(store, "put", racing_put)
    stored, changed = store.transition("default", "r1", lambda s: s.model_copy(update={"weight": 50}))
    assert changed and stored.weight == 50 and stored.version == 4

    def always_stale(namespace, new, expected_version):
        raced.append(expected_version)
        raise StaleWrite("release r1 was changed concurrently", [])

    raced.clear()
    monkeypatch.setattr(store, "put", always_stale)
    with pytest.raises(Conflict, match="changing too often"):
        store.transition("default", "r1", lambda s: s)
    assert len(raced) == STATE_RACE.attempts


def test_a_conflict_the_change_raises_is_not_retried(store):
    store.put("default", state(), None)
    calls = []

    def refuse(s):
        calls.append(s)
        raise Conflict("release r1 is progressing: cannot resume", [])

    with pytest.raises(Conflict, match="cannot resume"):
        store.transition("default", "r1", refuse)
    assert len(calls) == 1


def test_list_reads_every_page(store, monkeypatch):
    monkeypatch.setattr(dynamodb_releases, "PAGE", 2)
    for n in range(5):
        store.put("default", state(f"r{n}", gateway=f"g{n}"), None)
    store.put("other", state("x"), None)
    before = store.calls
    assert sorted(s.name for s in store.list("default")) == [f"r{n}" for n in range(5)]
    assert store.calls - before == 3
