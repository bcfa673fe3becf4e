"""The local stack's GET /api/v1/events/stream as a real text/event-stream: it stays open and sends
each event as it is stored (docs/decisions/0042), through chalice's HTTP server as `make run` serves it."""
from __future__ import annotations

import json
import threading

import pytest
import requests


@pytest.fixture()
def local_api(aws, tmp_path, monkeypatch):
    from local.stack import LocalStack, free_port

    monkeypatch.setenv("VAMP_GATEWAY_PORTS", "20000-24999")
    stack = LocalStack(api_port=free_port(), state_dir=tmp_path, persist=False, quiet=True, gateways=False)
    stack.start()
    yield stack
    stack.stop()


def _frames(response):
    """SSE frames as dicts of their fields, comments skipped."""
    fields: dict = {}
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value


def test_the_stream_sends_events_as_they_are_published(local_api):
    auth = {"Authorization": f"Bearer {local_api.token}"}
    url = f"{local_api.api_url}/api/v1/events/stream?tag=shop"
    with requests.get(url, headers={**auth, "Accept": "text/event-stream"}, stream=True, timeout=30) as r:
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        frames = _frames(r)
        published = []

        def publish():  # after the stream is open: these are new events
            for i, tags in enumerate((["shop", "a"], ["other"], ["shop", "b"])):
                body = {"tags": tags, "type": "deploy" if i else "event", "value": i}
                published.append(requests.post(f"{local_api.api_url}/api/v1/events", json=body, headers=auth,
                                               timeout=30).json())
        writer = threading.Thread(target=publish)
        writer.start()
        got = [next(frames), next(frames)]  # blocks until each is sent: the stream stays open
        writer.join()
    assert [f["id"] for f in got] == [published[0]["id"], published[2]["id"]]  # the filter holds: no "other"
    assert [f["event"] for f in got] == ["event", "deploy"]
    assert json.loads(got[1]["data"])["tags"][:2] == ["shop", "b"]


def test_a_refused_stream_is_the_endpoints_answer(local_api):
    r = requests.get(f"{local_api.api_url}/api/v1/events/stream?after=nope",
                     headers={"Authorization": f"Bearer {local_api.token}", "Accept": "text/event-stream"}, timeout=30)
    assert r.status_code == 400 and r.json()["errors"][0]["path"] == "after"
    r = requests.get(f"{local_api.api_url}/api/v1/events/stream", headers={"Accept": "text/event-stream"}, timeout=30)
    assert r.status_code == 401


def test_without_the_accept_header_it_is_the_long_poll(local_api):
    r = requests.get(f"{local_api.api_url}/api/v1/events/stream?wait=0",
                     headers={"Authorization": f"Bearer {local_api.token}"}, timeout=30)
    assert r.status_code == 200 and set(r.json()) == {"events", "cursor", "more"}


def test_a_stack_started_after_another_stopped_streams_too(local_api):
    # The earlier tests' stacks stopped in this process: their stop ended their streams, not this one's.
    test_the_stream_sends_events_as_they_are_published(local_api)
