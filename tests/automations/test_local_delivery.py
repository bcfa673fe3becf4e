"""The local stack's EventBridge: PutEvents on moto's default bus reach app.py's on_cw_event
handlers whose pattern matches (EventBridge's matching: moto's own), and only those."""
from __future__ import annotations

import json
import os

import boto3
import pytest
from chalice.app import CloudWatchEventConfig

import app
from tests.automations.conftest import REGION, put

seen: list[dict] = []


def probe(event, context):  # a handler as chalice's on_cw_event wrapper calls it: (event dict, context)
    seen.append(event)


@pytest.fixture()
def probe_handler(bus):
    """An extra on_cw_event of app.py for the test's length (any handler is delivered, not only ours)."""
    pattern = {"source": [{"prefix": "acme."}], "detail-type": [{"anything-but": ["noise"]}],
               "detail": {"size": [{"numeric": [">", 10]}], "owner": [{"exists": True}]}}
    source = CloudWatchEventConfig("probe", f"{__name__}.probe", pattern)
    app.app.event_sources.append(source)
    seen.clear()
    yield
    app.app.event_sources.remove(source)


def test_matching_events_reach_the_handler_and_others_none(bus, events_client, probe_handler):
    put(events_client, bus, "acme.shop", "order", {"size": 11, "owner": "x"})
    assert [e["detail"] for e in seen] == [{"size": 11, "owner": "x"}]
    assert seen[0]["source"] == "acme.shop" and seen[0]["detail-type"] == "order" and seen[0]["region"] == REGION
    assert set(seen[0]) >= {"version", "id", "account", "time", "resources"}
    for source, kind, detail in [("other.shop", "order", {"size": 11, "owner": "x"}),  # prefix
                                 ("acme.shop", "noise", {"size": 11, "owner": "x"}),   # anything-but
                                 ("acme.shop", "order", {"size": 10, "owner": "x"}),   # numeric
                                 ("acme.shop", "order", {"size": 11})]:                # exists
        put(events_client, bus, source, kind, detail)
    assert len(seen) == 1
    assert bus.deliveries["probe"] == 1
    assert bus.deliveries["ecr_image_pushed"] == 0 and bus.deliveries["alarm_raised"] == 0


def test_another_bus_is_not_delivered(aws, bus, events_client, probe_handler):
    events_client.create_event_bus(Name="elsewhere")
    answer = events_client.put_events(Entries=[{"Source": "acme.shop", "DetailType": "order", "EventBusName": "elsewhere",
                                                "Detail": json.dumps({"size": 11, "owner": "x"})}])
    assert answer["FailedEntryCount"] == 0
    bus.drain()
    assert seen == []


def test_a_handler_that_raises_fails_no_put(bus, events_client, monkeypatch, probe_handler):
    def boom(event, context):
        raise RuntimeError("handler failed")
    monkeypatch.setattr(f"{__name__}.probe", boom)
    put(events_client, bus, "acme.shop", "order", {"size": 11, "owner": "x"})  # FailedEntryCount 0 all the same
    assert bus.deliveries["probe"] == 1


def test_the_app_declares_its_handlers_patterns(aws):
    from chalicelib.automations import cloudwatch_alarms, ecr
    from local import eventbridge

    patterns = {name: pattern for name, pattern, _ in eventbridge.handlers()}
    assert patterns["ecr_image_pushed"] == ecr.PATTERN
    assert patterns["alarm_raised"] == cloudwatch_alarms.PATTERN


def test_the_local_stack_setup_makes_its_bus(aws, monkeypatch):
    from chalicelib.settings import settings
    from local import eventbridge

    monkeypatch.delenv("VAMP_EVENT_BUS", raising=False)
    assert eventbridge.setup(aws) == eventbridge.LOCAL_BUS
    assert settings().event_bus == eventbridge.LOCAL_BUS
    names = [b["Name"] for b in boto3.client("events", endpoint_url=aws, region_name=REGION).list_event_buses()["EventBuses"]]
    assert eventbridge.LOCAL_BUS in names
    assert eventbridge.setup(aws) == eventbridge.LOCAL_BUS  # again: the bus exists
    os.environ.pop("VAMP_EVENT_BUS")  # setup set it: monkeypatch did not, and would restore it
    settings.cache_clear()
