"""The store is the source of truth, not etcd's counter: after the table went back to an older
snapshot (a crashed local stack, a rebuilt table) while etcd kept a newer generation, writes
still reach etcd and HAProxy, and the scheduled pass repairs a namespace nobody writes to
(docs/decisions/0019-no-lost-generation.md)."""
from __future__ import annotations

import threading

import pytest

from chalicelib.contract.envelope import checksum
from chalicelib.gateways import publisher, snapshot, writes
from chalicelib.kv import etcd as kv_etcd
from chalicelib.store import table
from chalicelib.store.artifact_store import Write
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from tests.agent.helpers import free_port, wait_for
from tests.gateways.helpers import split_gateway, tally


def _go_back(items: list[dict]) -> None:
    """The table as a restarted local stack finds it: empty, then an older save loaded."""
    table.client().delete_table(TableName=table.table_name())
    table.ensure_table()
    table.load_items(items)


def _rendered(store, namespace: str) -> tuple[str, int]:
    snap, rendered = publisher.render_namespace(store, namespace, publisher.no_targets)
    return rendered.text, snap.generation


def test_a_write_after_the_table_went_back_reaches_haproxy(gw_api, publishing, namespace, start_agent, backends):
    a, b = backends
    agent = start_agent(namespace=namespace)
    port = free_port()
    path = f"/{namespace}/api/v1/gateways/shop"
    etcd = kv_etcd.at(publishing["VAMP_ETCD_ENDPOINT"])
    store = DynamoDBArtifactStore()

    assert gw_api.put(path, split_gateway("shop", port, a.port, b.port, (100, 0))).status_code == 202
    saved = table.dump_items()  # what the crashed stack had last saved: generation 1
    for weights in ((50, 50), (20, 80), (100, 0)):
        assert gw_api.put(path, split_gateway("shop", port, a.port, b.port, weights)).status_code == 202
    assert publisher.current(etcd, namespace, "2.6")[1] == 4
    _go_back(saved)
    assert snapshot.generation(store, namespace) == 1  # etcd is 3 ahead of the store

    assert gw_api.put(path, split_gateway("shop", port, a.port, b.port, (0, 100))).status_code == 202
    text, generation = publisher.current(etcd, namespace, "2.6")
    assert generation == 5 == snapshot.generation(store, namespace)  # past etcd's 4, in the store too
    assert (text, generation) == _rendered(store, namespace)
    wait_for(lambda: agent.healthz()[1]["config_checksum"] == checksum(text), 20, what="the agent serving it")
    assert tally(port, 200) == {"B": 200}

    # from here on the ordinary rule: the next write is one generation on
    assert gw_api.put(path, split_gateway("shop", port, a.port, b.port, (100, 0))).status_code == 202
    assert publisher.current(etcd, namespace, "2.6")[1] == 6


@pytest.fixture(params=["etcd", "relay"])
def way(request, publishing):
    """The control plane reaches etcd itself, or through the publisher function (0036)."""
    if request.param == "relay":
        request.getfixturevalue("relay")
    return publishing


def test_the_scheduled_pass_republishes_a_store_that_went_back(way, api, namespace):
    publishing = way
    etcd = kv_etcd.at(publishing["VAMP_ETCD_ENDPOINT"])
    store = DynamoDBArtifactStore()
    path = f"/{namespace}/api/v1/gateways/shop"
    assert api.put(path, {"name": "shop", "routes": {"[127.0.0.1:8080]": {}}}).status_code == 202
    saved = table.dump_items()
    assert api.put(path, {"name": "shop", "routes": {"[127.0.0.1:8081]": {}}}).status_code == 202
    assert api.put(f"/{namespace}/api/v1/gateways/gone", {"name": "gone", "routes": {"[127.0.0.1:8082]": {}}}).status_code == 202
    _go_back(saved)
    assert "gw.gone" in publisher.current(etcd, namespace, "2.6")[0]  # etcd serves what the store lost

    assert publisher.republish_all(store, publisher.no_targets) == {namespace: "published"}
    text, generation = publisher.current(etcd, namespace, "2.6")
    assert generation == 4 and (text, generation) == _rendered(store, namespace)
    assert "gw.gone" not in text and "127.0.0.1:8080" in text
    assert publisher.republish_all(store, publisher.no_targets) == {namespace: "current"}


def test_a_rebuilt_table_without_a_generation_item_publishes_past_etcd(publishing, api, namespace):
    etcd = kv_etcd.at(publishing["VAMP_ETCD_ENDPOINT"])
    empty = table.dump_items()  # only the API's token
    for port in (8080, 8081):
        body = {"name": "shop", "routes": {f"[127.0.0.1:{port}]": {}}}
        assert api.put(f"/{namespace}/api/v1/gateways/shop", body).status_code == 202
    _go_back(empty)  # a table rebuilt: the store starts again from generation 0
    body = {"name": "shop", "routes": {"[127.0.0.1:9090]": {}}}
    assert api.put(f"/{namespace}/api/v1/gateways/shop", body).status_code in (201, 202)
    text, generation = publisher.current(etcd, namespace, "2.6")
    assert generation == 3 and "127.0.0.1:9090" in text


def test_racing_writers_and_passes_after_the_store_went_back_leave_the_newest(way, api, namespace):
    publishing = way
    etcd = kv_etcd.at(publishing["VAMP_ETCD_ENDPOINT"])
    store = DynamoDBArtifactStore()
    for port in (8080, 8081, 8082):
        body = {"name": "shop", "routes": {f"[127.0.0.1:{port}]": {}}}
        assert api.put(f"/{namespace}/api/v1/gateways/shop", body).status_code in (201, 202)
        if port == 8080:
            saved = table.dump_items()
    _go_back(saved)
    assert publisher.current(etcd, namespace, "2.6")[1] == 3 and snapshot.generation(store, namespace) == 1

    barrier = threading.Barrier(6)
    errors: list[Exception] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            doc = {"name": f"w{i}", "routes": {f"[127.0.0.1:{9000 + i}]": {}}}
            writes.apply(store, namespace, [Write("gateways", f"w{i}", doc, None)])
            writes.after(store, namespace, [], lambda ns, events: None, publisher.no_targets)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def scheduled_pass() -> None:
        barrier.wait()
        try:
            publisher.republish_if_behind(store, namespace, publisher.no_targets)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=scheduled_pass) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    text, generation = publisher.current(etcd, namespace, "2.6")
    assert generation > 3 and (text, generation) == _rendered(store, namespace)  # the store's newest state
    assert all(f"gw.w{i}" in text for i in range(4))
