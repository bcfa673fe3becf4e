"""The table module's own helpers: the whole-table dump and load of the local stack, the
namespace registry on its Query."""
from __future__ import annotations

from chalicelib.store import namespaces, table
from chalicelib.store.artifact_store import Write
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from chalicelib.store.dynamodb_events import DynamoDBEventStore
from chalicelib.store.event_store import EventQuery, new_event
from chalicelib.store.tokens import DynamoDBTokenStore


def test_dump_then_load_into_an_empty_table_keeps_everything(aws):
    store = DynamoDBArtifactStore()
    store.apply("default", [Write("breeds", f"b{i:02d}", {"i": i}, None) for i in range(30)])  # > one batch
    DynamoDBEventStore().publish("default", [new_event(["a:b"], 1)])
    token, _ = DynamoDBTokenStore().create("ci", role="admin", namespaces=["*"])
    namespaces.register("deployments", "default")
    items = table.dump_items()
    assert len(items) == 30 + 1 + 1 + 1  # artifacts, counter, token, namespace: events have their own table

    table.client().delete_table(TableName=table.table_name())  # as a restarted moto starts: empty
    table.ensure_table()
    assert table.dump_items() == []
    table.load_items(items)
    assert sorted(map(str, table.dump_items())) == sorted(map(str, items))
    page = DynamoDBArtifactStore().list("default", "breeds", 1, 50)
    assert page.total == 30 and [a.document["i"] for a in page.items] == list(range(30))
    assert DynamoDBEventStore().query("default", EventQuery(tags=["a"])).total == 1  # never in the dump
    assert DynamoDBTokenStore().authenticate(token).name == "ci"
    assert namespaces.registered("deployments") == ["default"]


def test_events_live_in_their_own_table_and_an_old_dump_of_them_is_not_restored(aws):
    DynamoDBEventStore().publish("default", [new_event(["metrics:rate"], 1.5, "metrics")])
    events = table.client().scan(TableName=table.events_table_name())["Items"]
    assert len(events) == 3 and table.dump_items() == []  # all, metrics:rate, metrics

    old_dump = [*events, {"pk": {"S": table.artifact_pk("default", "breeds")}, "sk": {"S": "b"}}]
    assert table.load_items(old_dump) == 1
    assert [item["sk"]["S"] for item in table.dump_items()] == ["b"]


def test_the_namespace_registry_is_idempotent_and_per_purpose(aws):
    for ns in ("b", "a", "b"):
        namespaces.register("gateways", ns)
    namespaces.register("deployments", "c")
    assert namespaces.registered("gateways") == ["a", "b"]
    assert namespaces.registered("deployments") == ["c"]
    assert namespaces.registered("nothing") == []


def test_a_namespace_is_registered_once_per_process_and_table(aws):
    puts: list[str] = []
    undo = table.watch("before-call.dynamodb.PutItem", lambda **_: puts.append("PutItem"))
    try:
        for _ in range(3):
            namespaces.register("gateways", "once")
    finally:
        undo()
    assert puts == ["PutItem"] and namespaces.registered("gateways") == ["once"]
