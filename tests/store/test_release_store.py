"""The DynamoDB release store against moto's server: versions, transitions, lists."""
from __future__ import annotations

import threading

import pytest

from chalicelib.errors import Conflict, NotFound
from chalicelib.releases.model import Phase, ReleaseState, Snapshot
from chalicelib.releases.plan import Plan
from chalicelib.retry import STATE_RACE
from chalicelib.store import dynamodb_releases, table
from chalicelib.store.dynamodb_releases import DynamoDBReleaseStore
from chalicelib.store.release_store import GatewayHeld, StaleWrite

PLAN = Plan(weights=[50], interval=1, failures=1, minimum_requests=1, inconclusive_limit=1)


def state(name="r1", gateway="shop", rid=None) -> ReleaseState:
    return ReleaseState(id=rid or f"id-{name}", name=name, namespace="default", spec={"name": name}, plan=PLAN,
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
    assert store.calls == 11  # a delete reads the release and its gateway's lock first


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


def _lock(namespace="default", gateway="shop") -> dict | None:
    key = {"pk": {"S": table.release_lock_pk(namespace)}, "sk": {"S": gateway}}
    return table.client().get_item(TableName=table.table_name(), Key=key, ConsistentRead=True).get("Item")


def _finished(s: ReleaseState) -> ReleaseState:
    return s.model_copy(update={"phase": Phase.ROLLED_BACK})


def test_one_running_release_per_gateway_and_the_lock_goes_when_it_finishes(store):
    r1 = store.put("default", state("r1"), None)
    assert _lock()["release"]["S"] == "r1" and store.holder("default", "shop") == "r1"
    with pytest.raises(GatewayHeld, match="release r1 is already running on gateway shop") as e:
        store.put("default", state("r2"), None)
    assert e.value.holder == "r1" and e.value.errors[0].path == "gateway"
    assert store.get("default", "r2") is None  # nothing of the loser was written
    store.put("default", state("other", gateway="cart"), None)  # another gateway is free
    store.put("other-ns", state("r2"), None)  # so is the same gateway in another namespace

    r1 = store.put("default", r1.model_copy(update={"weight": 20}), r1.version)  # still its own
    assert store.holder("default", "shop") == "r1"
    store.put("default", _finished(r1), r1.version)  # finishing gives the gateway up in the same write
    assert _lock() is None and store.holder("default", "shop") is None
    r2 = store.put("default", state("r2"), None)
    assert store.holder("default", "shop") == "r2"
    store.delete("default", "r1", r1.version + 1)
    assert store.holder("default", "shop") == "r2"  # deleting a finished release leaves r2's lock alone

    # restarted under the same name (a new id): it takes the gateway again once r2 is done
    r2 = store.put("default", _finished(r2), r2.version)
    again = store.put("default", state("r2", rid="id-r2-again"), r2.version)
    assert _lock()["release_id"]["S"] == "id-r2-again"
    store.put("default", _finished(again), again.version)
    store.delete("default", "r2", again.version + 1)
    assert _lock() is None


def test_deleting_a_release_that_still_holds_its_gateway_deletes_the_lock(store):
    r1 = store.put("default", state("r1"), None)
    store.delete("default", "r1", r1.version)
    assert _lock() is None
    store.put("default", state("r2"), None)


def test_a_stale_lock_is_taken_over(store):
    store.put("default", state("r1"), None)
    # the release item is gone but its lock is not (a table restored from a save between the two)
    table.client().delete_item(TableName=table.table_name(), Key={"pk": {"S": table.release_pk("default")}, "sk": {"S": "r1"}})
    assert store.holder("default", "shop") is None
    store.put("default", state("r2"), None)
    assert _lock()["release"]["S"] == "r2"
    # a lock naming a release whose name is stored since under another id, finished: stale too
    r2 = store.get("default", "r2")
    store.put("default", _finished(r2.model_copy(update={"id": "id-r2-new"})), r2.version)
    assert _lock()["release_id"]["S"] == "id-r2" and store.holder("default", "shop") is None
    store.put("default", state("r3"), None)
    assert _lock()["release"]["S"] == "r3"
    # ... but never one naming a release still running under that id
    with pytest.raises(GatewayHeld, match="r3"):
        store.put("default", state("r1", rid="id-r1-new"), None)


def test_concurrent_puts_on_one_gateway_store_exactly_one(store):
    barrier = threading.Barrier(20)
    won, held, errors = [], [], []

    def start(i):
        barrier.wait()
        try:
            won.append(store.put("default", state(f"r{i}"), None).name)
        except GatewayHeld as e:
            held.append(e.holder)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(won) == 1 and len(held) == 19
    assert set(held) == set(won) and store.holder("default", "shop") == won[0]
    assert [s.name for s in store.list("default")] == won
