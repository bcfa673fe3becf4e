"""Event schedules: a workflow runs when an event with all its tags is published through the API
or arrives on the EventBridge bus (app.py's handler, called directly: the bus's local delivery is
the automations helper's), not while suspended or once deleted, and never in a loop."""
from __future__ import annotations

import pytest

import app
from chalicelib.errors import ValidationFailed
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery


def _query(*tags):
    return event_store().query("default", EventQuery(tags=list(tags), per_page=100)).items


def _listen(api, name, tags, breed="metrics"):
    r = api.post("/api/v1/workflows", {"name": name, "breed": breed, "schedule": {"event": tags}})
    assert r.status_code == 202, r.body


def _publish(api, tags, value="x"):
    r = api.post("/api/v1/events", {"tags": tags, "value": value})
    assert r.status_code == 201, r.body
    return r.json


def test_an_event_with_all_the_tags_runs_the_workflow(api):
    _listen(api, "w", ["deploy", "sava"])
    _publish(api, ["deploy"])  # not all the tags
    assert _query("workflows:w", "started") == []
    published = _publish(api, ["deploy", "sava", "team:a"], {"image": "sava:1.1.0"})
    [started] = _query("workflows:w", "started")
    assert started["value"]["trigger"]["id"] == published["id"]
    assert started["value"]["trigger"]["value"] == {"image": "sava:1.1.0"}
    assert len(_query("workflows:w", "finished")) == 1


def test_not_while_suspended_nor_once_deleted(api):
    _listen(api, "w", ["deploy"])
    api.put("/api/v1/workflows/w/status", "suspended")
    _publish(api, ["deploy"])
    assert _query("workflows:w", "started") == []
    api.put("/api/v1/workflows/w/status", "running")
    _publish(api, ["deploy"])
    assert len(_query("workflows:w", "started")) == 1
    api.delete("/api/v1/workflows/w")
    _publish(api, ["deploy"])
    assert len(_query("workflows:w", "started")) == 1


def test_a_workflow_never_triggers_itself(api):
    # its own figures carry the tag it listens to; its own run events carry workflows:<name>
    _listen(api, "h", ["health"], breed="health")
    api.post("/api/v1/gateways", {"name": "g", "port": "9071/http", "routes": {"[127.0.0.1:8081]": {"weight": "100%"}}})
    _publish(api, ["health"])
    assert len(_query("workflows:h", "started")) == 1
    assert len([e for e in _query("gateways:g", "health") if e["type"] == "health"]) == 2  # it did publish
    _listen(api, "own", ["workflows:own"])
    _publish(api, ["workflows:own"])
    assert _query("workflows:own", "started") == []


def test_runs_chain_and_never_loop(api):
    """x and y both run after any run finishes: each runs after the other, never again after
    itself or after a run it led to."""
    _listen(api, "s", ["go"])
    _listen(api, "x", ["finished"])
    _listen(api, "y", ["finished"])
    _publish(api, ["go"])
    assert [len(_query(f"workflows:{n}", "started")) for n in "sxy"] == [1, 2, 2]
    origins = sorted(tuple(e["value"]["trigger"]["origin"]) for e in _query("workflows:x", "started"))
    assert origins == [("s",), ("s", "y")]


def test_the_chain_limit(api):
    names = [f"w{i}" for i in range(8)]
    _listen(api, names[0], ["go"])
    for before, name in zip(names, names[1:]):
        _listen(api, name, [f"workflows:{before}", "finished"])
    _publish(api, ["go"])
    from chalicelib.workflows.triggers import CHAIN_LIMIT

    ran = [n for n in names if _query(f"workflows:{n}", "started")]
    assert ran == names[:CHAIN_LIMIT]


def _bus_event(detail, source="vamp.user"):
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "vamp event",
            "source": source, "account": "123456789012", "time": "2026-12-04T01:00:00Z", "region": "us-east-1",
            "resources": [], "detail": detail}


def test_a_custom_event_on_the_bus_runs_the_workflows_it_matches(api):
    _listen(api, "w", ["deploy", "sava"])
    out = app.workflow_bus_event(_bus_event({"namespace": "default", "tags": ["deploy", "sava"], "value": 1}), None)
    assert len(out["runs"]) == 1 and out["runs"][0]["exit_code"] == 0
    [stored] = _query("deploy", "sava")
    assert stored["id"] == out["event"] and stored["value"] == 1
    [started] = _query("workflows:w", "started")
    assert started["value"]["trigger"]["id"] == out["event"]


@pytest.mark.parametrize("detail, path", [
    ({"tags": ["a"]}, "detail.namespace"),
    ({"namespace": "Bad NS", "tags": ["a"]}, "detail.namespace"),
    ({"namespace": "default", "tags": [{"a": 1}]}, "detail.tags[0]"),
    ({"namespace": "default", "tags": ["a"], "type": "metrics", "value": 1}, "detail.type"),
])
def test_a_bad_bus_event_is_refused_with_the_field(api, detail, path):
    with pytest.raises(ValidationFailed) as refused:
        app.workflow_bus_event(_bus_event(detail), None)
    assert path in [e.path for e in refused.value.errors]


def test_posts_read_the_listening_workflows_once_per_ttl_and_a_write_here_at_once(api, monkeypatch):
    # Agents post telemetry every window from every node: a post must not query the workflows.
    from chalicelib.workflows import triggers

    reads = []
    original = triggers._read_listeners
    monkeypatch.setattr(triggers, "_read_listeners", lambda store, ns: reads.append(ns) or original(store, ns))
    _publish(api, ["a"])
    _publish(api, ["a"])
    assert reads == ["default"]
    _listen(api, "w", ["a"])  # written in this process: listened for from the next post
    _publish(api, ["a"])
    assert len(reads) == 2 and len(_query("workflows:w", "started")) == 1
    later = triggers._clock() + triggers.LISTENERS_TTL + 1  # another instance's write: seen once the TTL ran out
    monkeypatch.setattr(triggers, "_clock", lambda: later)
    _publish(api, ["a"])
    assert len(reads) == 3
