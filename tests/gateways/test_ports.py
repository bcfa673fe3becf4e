"""Ports given or assigned from the range, never the same twice in a namespace, even when
requests race."""
from __future__ import annotations

import threading

import pytest

from chalicelib import artifacts
from chalicelib.artifacts import Document
from chalicelib.errors import Conflict
from chalicelib.gateways.publisher import no_targets


def _gateway(name, **extra):
    return {"name": name, "routes": {"[127.0.0.1:8080]": {}}, **extra}


@pytest.fixture()
def small_range(aws, monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_GATEWAY_PORTS", "41000-41019")
    monkeypatch.setenv("VAMP_VIRTUAL_HOSTS_PORT", "0")
    settings.cache_clear()
    yield range(41000, 41020)
    settings.cache_clear()


@pytest.mark.parametrize("writers", ["one process", "one process each"])
def test_concurrent_creates_without_port_get_distinct_ports(small_range, writers, monkeypatch):
    from chalicelib import dsl
    from chalicelib.gateways import writes

    if writers == "one process each":  # as Lambdas are: no queue in common, the claims' conditions decide
        monkeypatch.setattr(writes, "_writing", lambda namespace: threading.RLock())
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore
    from local import moto_speedups

    # DynamoDB transactions are atomic; stock moto's are not under concurrency (a failed one
    # restores a copy of the whole table taken before the others committed): serialise them.
    moto_speedups.apply()
    dsl.parse("gateways", _gateway("warm-up"))  # pydantic builds its models on first use, not thread-safely

    n, results, errors = 12, {}, []
    barrier = threading.Barrier(n)

    def create(i):
        barrier.wait()
        try:
            (o,) = artifacts.change(DynamoDBArtifactStore(), lambda ns, ev: None, "default",
                                    [Document("gateways", _gateway(f"g{i}"))], "create", targets=no_targets)
            results[i] = o.document["port"]
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    numbers = [int(p.split("/")[0]) for p in results.values()]
    assert len(numbers) == n and len(set(numbers)) == n
    assert all(p in small_range for p in numbers)


def test_ports_through_the_api(small_range, api):
    r = api.post("/api/v1/gateways", _gateway("a", port=9070))
    assert r.status_code == 202 and r.json["port"] == "9070/http"
    assert list(r.json)[:4] == ["name", "kind", "metadata", "port"]
    # an explicit duplicate is a conflict, naming the owner; nothing is written
    r = api.post("/api/v1/gateways", _gateway("b", port="9070/tcp"))
    assert r.status_code == 409 and "used by gateway a" in r.json["message"]
    assert api.get("/api/v1/gateways/b").status_code == 404
    # assigned from the range; a PUT without port keeps it
    r = api.post("/api/v1/gateways", _gateway("b"))
    assigned = r.json["port"]
    assert int(assigned.split("/")[0]) in small_range
    r = api.put("/api/v1/gateways/b", _gateway("b", virtual_hosts=["b.example.com"]))
    assert r.status_code == 202 and r.json["port"] == assigned
    # moving a frees the old port for others; deleting frees it too
    assert api.put("/api/v1/gateways/a", _gateway("a", port=9071)).status_code == 202
    assert api.post("/api/v1/gateways", _gateway("c", port=9070)).status_code == 202
    assert api.delete("/api/v1/gateways/c").status_code == 202
    assert api.post("/api/v1/gateways", _gateway("d", port=9070)).status_code == 202
    # a stale If-Match is still a plain 409 on the gateway itself
    r = api.put("/api/v1/gateways/d", _gateway("d", port=9070), headers={"If-Match": '"7"'})
    assert r.status_code == 409 and r.json["current_version"] == 1


def test_the_range_runs_out_cleanly(aws, monkeypatch):
    from chalicelib.settings import settings
    from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

    monkeypatch.setenv("VAMP_GATEWAY_PORTS", "41000-41001")
    settings.cache_clear()
    try:
        store = DynamoDBArtifactStore()
        for name in ("x", "y"):
            artifacts.change(store, lambda ns, ev: None, "default", [Document("gateways", _gateway(name))], "create", targets=no_targets)
        with pytest.raises(Conflict, match="no free gateway port"):
            artifacts.change(store, lambda ns, ev: None, "default", [Document("gateways", _gateway("z"))], "create", targets=no_targets)
    finally:
        settings.cache_clear()


def test_the_virtual_hosts_port_is_not_a_gateway_port(aws, api, monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_VIRTUAL_HOSTS_PORT", "8081")
    settings.cache_clear()
    try:
        r = api.post("/api/v1/gateways", _gateway("v", port=8081))
        assert r.status_code == 400 and "virtual hosts port" in r.json["errors"][0]["reason"]
    finally:
        settings.cache_clear()
