"""50 writers PUT gateways of one namespace at once through the local API over HTTP (chalice's
threaded server as `make run` serves it, on moto, publishing to a real etcd): every answer is a
2xx or a 409 (a lost race), never a 5xx or a dropped connection, and no acknowledged write is lost."""
from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests

from chalicelib.gateways.snapshot import GENERATION_KIND, GENERATION_NAME
from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
from local.stack import LocalStack, free_port

WRITERS = 50


@pytest.fixture()
def local_api(publishing, tmp_path, monkeypatch):
    """The local stack's API alone (no etcd or agent of its own: `publishing` gives it etcd) on
    the test's moto tables."""
    monkeypatch.setenv("VAMP_GATEWAY_PORTS", "20000-24999")  # else the stack's default stays set
    stack = LocalStack(api_port=free_port(), state_dir=tmp_path, persist=False, quiet=True, gateways=False)
    stack.start()
    yield stack
    stack.stop()


def at_once(local_api, namespace: str, bodies: dict[int, tuple[str, dict]], headers: dict | None = None) -> dict:
    """PUT every (gateway, body) from its own thread, all released together: {writer: status}."""
    auth = {"Authorization": f"Bearer {local_api.token}", **(headers or {})}
    barrier = threading.Barrier(len(bodies))
    statuses: dict[int, int | str] = {}

    def put(i: int, name: str, body: dict) -> None:
        barrier.wait()
        try:
            statuses[i] = requests.put(f"{local_api.api_url}/{namespace}/api/v1/gateways/{name}", json=body,
                                       headers=auth, timeout=120).status_code
        except requests.RequestException as e:  # a reset connection is a failure too
            statuses[i] = type(e).__name__

    threads = [threading.Thread(target=put, args=(i, name, body)) for i, (name, body) in bodies.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def gateway(name: str, weight: int) -> dict:
    return {"name": name, "routes": {"[127.0.0.1:8080]": {"weight": f"{weight}%"},
                                     "[127.0.0.2:8080]": {"weight": f"{100 - weight}%"}}}


def test_fifty_writers_of_one_namespace_get_2xx_or_409_and_lose_nothing(local_api, namespace):
    statuses = at_once(local_api, namespace, {i: (f"w{i:02d}", gateway(f"w{i:02d}", i + 1)) for i in range(WRITERS)})
    assert set(statuses.values()) <= {202, 409}, Counter(statuses.values())
    written = [i for i, s in statuses.items() if s == 202]
    assert written

    store = DynamoDBArtifactStore()
    stored = {a.name: a for a in store.all_of_kind(namespace, "gateways")}
    assert sorted(stored) == sorted(f"w{i:02d}" for i in written)  # every 202 is there, nothing else
    for i in written:
        assert stored[f"w{i:02d}"].document["routes"]["[127.0.0.1:8080]"]["weight"] == f"{i + 1}%"
    ports = [a.document["port"] for a in stored.values()]
    assert len(set(ports)) == len(ports)  # no port given to two gateways
    # each acknowledged write bumped the namespace's generation once: none overwrote another
    assert store.get(namespace, GENERATION_KIND, GENERATION_NAME).version == len(written)


def test_fifty_conditional_writers_of_one_gateway_have_exactly_one_winner(local_api, namespace):
    assert at_once(local_api, namespace, {0: ("shared", gateway("shared", 50))}) == {0: 202}
    bodies = {i: ("shared", gateway("shared", i + 1)) for i in range(WRITERS)}
    statuses = at_once(local_api, namespace, bodies, {"If-Match": '"1"'})
    assert sorted(Counter(statuses.values()).items()) == [(202, 1), (409, WRITERS - 1)]
    (winner,) = [i for i, s in statuses.items() if s == 202]
    stored = DynamoDBArtifactStore().get(namespace, "gateways", "shared")
    assert stored.version == 2 and stored.document["routes"]["[127.0.0.1:8080]"]["weight"] == f"{winner + 1}%"


def test_a_stale_if_match_is_a_409_at_once_not_a_race_to_plan_again(api):
    from chalicelib.store import table

    assert api.put("/api/v1/gateways/shop", gateway("shop", 10)).status_code == 202
    assert api.put("/api/v1/gateways/shop", gateway("shop", 20)).status_code == 202
    calls: list[str] = []
    undo = table.watch("before-call.dynamodb.*", lambda event_name, **_: calls.append(event_name.rsplit(".", 1)[-1]))
    try:
        r = api.put("/api/v1/gateways/shop", gateway("shop", 30), headers={"If-Match": '"1"'})
    finally:
        undo()
    assert r.status_code == 409 and r.json["current_version"] == 2
    assert "TransactWriteItems" not in calls and calls.count("BatchGetItem") == 1  # planned once, nothing written
