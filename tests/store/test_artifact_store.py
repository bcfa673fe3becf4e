"""The DynamoDB artifact store against moto's server: versions, conflicts, atomic batches, lists."""
from __future__ import annotations

import threading

import pytest

from chalicelib.errors import Conflict, NotFound, ValidationFailed
from chalicelib.store import table
from chalicelib.store.artifact_store import Write
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore


@pytest.fixture()
def store(aws):
    return DynamoDBArtifactStore()


@pytest.fixture()
def calls(aws):
    """Every DynamoDB operation name the code calls, in order."""
    seen: list[str] = []
    handler = lambda event_name, **_: seen.append(event_name.rsplit(".", 1)[-1])  # noqa: E731
    table.client().meta.events.register("before-call.dynamodb.*", handler)
    yield seen
    table.client().meta.events.unregister("before-call.dynamodb.*", handler)


def test_create_then_get(store):
    [created] = store.apply("default", [Write("breeds", "a", {"name": "a", "x": 1}, expected_version=None)])
    assert created.version == 1
    got = store.get("default", "breeds", "a")
    assert got.document == {"name": "a", "x": 1} and got.version == 1 and got.kind == "breeds"


def test_create_twice_is_a_conflict_with_the_current_version(store):
    store.apply("default", [Write("breeds", "a", {"name": "a"}, expected_version=None)])
    with pytest.raises(Conflict) as e:
        store.apply("default", [Write("breeds", "a", {"name": "a"}, expected_version=None)])
    assert e.value.current_version == 1


def test_update_bumps_the_version_and_a_stale_write_gets_409(store):
    store.apply("default", [Write("breeds", "a", {"v": 1}, expected_version=None)])
    [second] = store.apply("default", [Write("breeds", "a", {"v": 2}, expected_version=1)])
    assert second.version == 2
    with pytest.raises(Conflict) as e:
        store.apply("default", [Write("breeds", "a", {"v": 3}, expected_version=1)])
    assert e.value.current_version == 2
    assert store.get("default", "breeds", "a").document == {"v": 2}


def test_a_write_may_name_a_version_past_the_stored_one_never_one_before(store):
    # how the gateway generation jumps past one etcd holds (docs/decisions/0019)
    store.apply("default", [Write("gateway-generation", "generation", {"n": 1}, None)])
    (jumped,) = store.apply("default", [Write("gateway-generation", "generation", {"n": 2}, 1, version=68)])
    assert jumped.version == 68 == store.get("default", "gateway-generation", "generation").version
    with pytest.raises(Conflict):  # still conditional on the version read
        store.apply("default", [Write("gateway-generation", "generation", {"n": 3}, 1, version=70)])
    with pytest.raises(ValueError):
        store.apply("default", [Write("gateway-generation", "generation", {"n": 3}, 68, version=68)])
    assert store.get("default", "gateway-generation", "generation").document == {"n": 2}


def test_concurrent_writers_never_lose_an_update_silently(store):
    store.apply("default", [Write("breeds", "a", {"n": 0}, expected_version=None)])
    results: list[str] = []

    def writer(i: int) -> None:
        current = store.get("default", "breeds", "a")
        try:
            store.apply("default", [Write("breeds", "a", {"n": i}, expected_version=current.version)])
            results.append("ok")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = store.get("default", "breeds", "a")
    # Every successful write bumped the version exactly once: none was overwritten unseen.
    assert final.version == 1 + results.count("ok")
    assert results.count("ok") >= 1


def test_a_batch_is_all_or_nothing(store):
    store.apply("default", [Write("breeds", "taken", {"v": 1}, expected_version=None)])
    with pytest.raises(Conflict):
        store.apply("default", [
            Write("breeds", "new-one", {"v": 1}, expected_version=None),
            Write("scales", "new-two", {"v": 1}, expected_version=None),
            Write("breeds", "taken", {"v": 2}, expected_version=None),
        ])
    assert store.get("default", "breeds", "new-one") is None
    assert store.get("default", "scales", "new-two") is None
    assert store.list("default", "breeds", 1, 30).total == 1


def test_delete_and_missing(store):
    store.apply("default", [Write("breeds", "a", {"v": 1}, expected_version=None)])
    assert store.apply("default", [Write("breeds", "a", None)]) == [None]
    assert store.get("default", "breeds", "a") is None
    with pytest.raises(NotFound):
        store.apply("default", [Write("breeds", "a", None)])
    assert store.list("default", "breeds", 1, 30).total == 0


def test_duplicate_documents_in_one_batch_are_refused(store):
    with pytest.raises(ValidationFailed):
        store.apply("default", [Write("breeds", "a", {}, None), Write("breeds", "a", {}, None)])


def test_list_pages_sorted_by_name_with_totals(store, calls):
    names = [f"b{i:03d}" for i in range(23)]
    for i in range(0, 23, 10):
        store.apply("default", [Write("breeds", n, {"name": n}, None) for n in names[i:i + 10]])
    page1 = store.list("default", "breeds", 1, 10)
    page3 = store.list("default", "breeds", 3, 10)
    beyond = store.list("default", "breeds", 4, 10)
    assert [a.name for a in page1.items] == names[:10]
    assert [a.name for a in page3.items] == names[20:]
    assert beyond.items == [] and beyond.total == 23 == page1.total
    assert "Scan" not in calls


def test_namespaces_and_kinds_are_apart(store):
    store.apply("default", [Write("breeds", "a", {"ns": "default"}, None)])
    store.apply("team-b", [Write("breeds", "a", {"ns": "team-b"}, None), Write("scales", "a", {}, None)])
    assert store.get("default", "breeds", "a").document == {"ns": "default"}
    assert store.get("team-b", "breeds", "a").document == {"ns": "team-b"}
    assert store.list("default", "scales", 1, 10).total == 0
    assert store.list("team-b", "scales", 1, 10).total == 1


def test_get_many(store):
    store.apply("default", [Write("breeds", f"b{i}", {"i": i}, None) for i in range(5)])
    found = store.get_many("default", [("breeds", "b1"), ("breeds", "b4"), ("breeds", "nope")])
    assert sorted(found) == [("breeds", "b1"), ("breeds", "b4")]


def test_a_list_page_costs_the_counter_and_one_query_plus_one_keys_only_query_to_skip(store, calls):
    store.apply("default", [Write("breeds", f"b{i:03d}", {}, None) for i in range(23)])
    for page, expected in ((1, ["GetItem", "Query"]), (3, ["GetItem", "Query", "Query"]), (4, ["GetItem"])):
        calls.clear()
        store.list("default", "breeds", page, 10)
        assert calls == expected, page


def test_all_of_kind_reads_every_page_consistently_and_only_its_kind(store):
    seen: list[dict] = []
    pad = "x" * 120_000  # DynamoDB pages a Query at 1 MB: 20 of these take three pages
    names = [f"g{i:02d}" for i in range(20)]
    for i in range(0, 20, 5):
        store.apply("default", [Write("gateways", n, {"name": n, "pad": pad}, None) for n in names[i:i + 5]])
    store.apply("default", [Write("routes", "r", {}, None)])
    store.apply("other", [Write("gateways", "elsewhere", {}, None)])
    unwatch = table.watch("provide-client-params.dynamodb.Query", lambda params, **_: seen.append(params))
    found = store.all_of_kind("default", "gateways")
    unwatch()
    assert [a.name for a in found] == names and all(a.kind == "gateways" and a.version == 1 for a in found)
    assert found[0].document == {"name": "g00", "pad": pad}
    assert len(seen) >= 3 and all(p["ConsistentRead"] for p in seen)
    assert store.all_of_kind("default", "breeds") == []


def test_only_any_version_writes_read_before_writing(store, calls):
    store.apply("default", [Write("breeds", "a", {"v": 1}, expected_version=None),
                            Write("breeds", "b", {"v": 1}, expected_version=None)])
    calls.clear()
    store.apply("default", [Write("breeds", "a", {"v": 2}, expected_version=1), Write("breeds", "c", {"v": 1}, None)])
    assert calls == ["TransactWriteItems"]  # the versions are given: the conditions check them
    calls.clear()
    [b] = store.apply("default", [Write("breeds", "b", {"v": 2}, expected_version=0)])
    assert calls == ["BatchGetItem", "PutItem"] and b.version == 2
    with pytest.raises(Conflict) as e:  # a stale version still loses, and says what is stored
        store.apply("default", [Write("breeds", "a", {"v": 3}, expected_version=1)])
    assert e.value.current_version == 2
    assert store.list("default", "breeds", 1, 10).total == 3
