"""GET /api/v1/events/stream as a long poll: events after a cursor, oldest first, GET /events'
filters, bounded (docs/decisions/0042). The waits are driven through the handler's sleep, never timed."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chalicelib.api.routes import event_stream


def _ago(seconds):
    """A timestamp `seconds` ago: events a millisecond apart at least (their ids order them)."""
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds)).isoformat()


def _publish(api, tags, type="event", value=1, timestamp=None):
    body = {"tags": tags, "type": type, "value": value, **({"timestamp": timestamp} if timestamp else {})}
    r = api.post("/api/v1/events", body)
    assert r.status_code == 201
    return r.json


@pytest.fixture()
def no_sleep(monkeypatch):
    """The handler must not wait: events are already there."""
    def refuse(seconds):
        raise AssertionError(f"slept {seconds} s although events were there")
    monkeypatch.setattr(event_stream.time, "sleep", refuse)


def test_answers_at_once_with_the_events_after_the_cursor_oldest_first(api, no_sleep):
    first = _publish(api, ["shop", "a"], timestamp=_ago(3))
    second = _publish(api, ["shop", "b"], timestamp=_ago(2))
    third = _publish(api, ["shop", "c"], timestamp=_ago(1))
    r = api.get(f"/api/v1/events/stream?after={first['id']}&wait=20")
    assert r.status_code == 200
    assert [e["id"] for e in r.json["events"]] == [second["id"], third["id"]]
    assert r.json["cursor"] == third["id"] and r.json["more"] is False


def test_filters_are_get_events_filters(api, no_sleep):
    start = _publish(api, ["x"], timestamp=_ago(5))
    _publish(api, ["shop", "a"], type="other")
    wanted = _publish(api, ["shop:1", "a"], type="deploy")
    _publish(api, ["a"], type="deploy")
    r = api.get(f"/api/v1/events/stream?after={start['id']}&tag=shop&tag=a&type=deploy")
    assert [e["id"] for e in r.json["events"]] == [wanted["id"]]  # shop:1 is also stored as shop


def test_at_most_limit_events_and_more_says_so(api, no_sleep):
    start = _publish(api, ["s"], timestamp=_ago(10))
    ids = [_publish(api, ["s"], value=i, timestamp=_ago(5 - i))["id"] for i in range(5)]
    r = api.get(f"/api/v1/events/stream?after={start['id']}&tag=s&limit=2").json
    assert [e["id"] for e in r["events"]] == ids[:2] and r["more"] is True
    r = api.get(f"/api/v1/events/stream?after={r['cursor']}&tag=s&limit=2").json
    assert [e["id"] for e in r["events"]] == ids[2:4]
    r = api.get(f"/api/v1/events/stream?after={r['cursor']}&tag=s&limit=2").json
    assert [e["id"] for e in r["events"]] == ids[4:] and r["more"] is False


def test_without_events_it_answers_empty_at_the_end_of_the_wait(api, monkeypatch):
    start = _publish(api, ["quiet"], timestamp=_ago(5))
    slept = []
    clock = [1000.0]
    monkeypatch.setattr(event_stream.time, "monotonic", lambda: clock[0])

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds
    monkeypatch.setattr(event_stream.time, "sleep", sleep)
    r = api.get(f"/api/v1/events/stream?after={start['id']}&tag=quiet&wait=3").json
    assert r == {"events": [], "cursor": start["id"], "more": False}
    assert sum(slept) == 3 and len(slept) == 3  # polled every second, for the whole wait


def test_an_event_stored_while_it_waits_ends_the_wait(api, monkeypatch):
    start = _publish(api, ["later"], timestamp=_ago(5))
    stored = []

    def sleep(seconds):  # while the handler waits, someone publishes
        if not stored:
            stored.append(_publish(api, ["later"], value="new"))
    monkeypatch.setattr(event_stream.time, "sleep", sleep)
    r = api.get(f"/api/v1/events/stream?after={start['id']}&tag=later&wait=20").json
    assert [e["id"] for e in r["events"]] == [stored[0]["id"]]


def test_without_a_cursor_it_starts_now_and_last_event_id_is_a_cursor(api, monkeypatch, no_sleep):
    old = _publish(api, ["now"], timestamp=_ago(5))
    monkeypatch.setattr(event_stream.time, "sleep", lambda s: None)
    r = api.get("/api/v1/events/stream?tag=now&wait=1").json
    assert r["events"] == [] and r["cursor"] > old["id"]
    newer = _publish(api, ["now"])
    r = api.get("/api/v1/events/stream?tag=now&wait=0", headers={"Last-Event-ID": old["id"]}).json
    assert [e["id"] for e in r["events"]] == [newer["id"]]


def test_bad_parameters_are_400s_naming_them(api):
    for query, field in (("after=nope", "after"), ("after=" + "Z" * 26, "after"), ("wait=21", "wait"),
                         ("wait=-1", "wait"), ("limit=0", "limit"), ("limit=1001", "limit"), ("type=a%20b", "type")):
        r = api.get(f"/api/v1/events/stream?{query}")
        assert r.status_code == 400 and r.json["errors"][0]["path"] == field, (query, r.json)


def test_a_reader_of_another_namespace_is_refused(api):
    reader = api.as_role("reader", namespaces=["other"])
    assert reader.get("/api/v1/events/stream?wait=0").status_code == 403
