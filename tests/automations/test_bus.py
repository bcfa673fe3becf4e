"""The control plane's own events on the stack's bus (VAMP_EVENT_BUS), as a rule on it sees them;
a bus that is away never fails the write."""
from __future__ import annotations

import json
import uuid

import boto3
import pytest
from botocore.config import Config

from chalicelib.settings import settings
from chalicelib.store import eventbridge_events as bus_events
from chalicelib.store.event_store import EventQuery, new_event
from tests.automations.conftest import REGION
from tests.releases.conftest import make_gateway, release


@pytest.fixture()
def stack_bus(aws, monkeypatch):
    """A bus of its own, a rule on it for source `vamp` sending to an SQS queue (what moto delivers)."""
    events = boto3.client("events", endpoint_url=aws, region_name=REGION)
    sqs = boto3.client("sqs", endpoint_url=aws, region_name=REGION)
    name = f"vamp-test-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=name)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=name, EventPattern=json.dumps({"source": ["vamp"]}))
    events.put_targets(Rule="all", EventBusName=name, Targets=[{"Id": "q", "Arn": arn}])
    monkeypatch.setenv("VAMP_EVENT_BUS", name)
    settings.cache_clear()
    bus_events.failures.clear()

    def received() -> list[dict]:
        out = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return out
            out += [json.loads(m["Body"]) for m in messages]
            sqs.delete_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    yield received
    monkeypatch.delenv("VAMP_EVENT_BUS")  # before the other fixtures' teardown reads the settings
    settings.cache_clear()


def test_release_events_go_on_the_bus_and_posted_ones_do_not(api, sfn, stack_bus):
    make_gateway(api)
    r = api.post("/api/v1/events", [{"tags": ["release:progressing", "releases:fake"], "value": 1}])
    assert r.status_code == 201, r.body
    assert api.post("/api/v1/releases", release("r1", interval="30s")).status_code == 202
    assert api.post("/api/v1/releases/r1/abort").status_code == 202
    got = stack_bus()
    kinds = [e["detail-type"] for e in got]
    assert "release:progressing" in kinds and "release:rolled_back" in kinds, kinds
    started = next(e for e in got if e["detail-type"] == "release:progressing")
    assert started["source"] == "vamp"
    detail = started["detail"]
    assert detail["namespace"] == "default" and "releases:r1" in detail["tags"] and detail["type"] == "release"
    assert detail["value"]["phase"] == "progressing" and set(detail) == {"namespace", "id", "tags", "type", "value",
                                                                         "timestamp"}
    assert not any("releases:fake" in e["detail"]["tags"] for e in got)  # an API token posted it
    assert not any(e["detail-type"].startswith("archive") for e in got)  # artifact writes stay off the bus
    assert bus_events.failures == {}


def test_a_bus_that_is_away_fails_no_write(api, sfn, aws, monkeypatch):
    monkeypatch.setenv("VAMP_EVENT_BUS", "no-such-bus")
    settings.cache_clear()
    bus_events.failures.clear()
    make_gateway(api)
    r = api.post("/api/v1/releases", release("r1", interval="30s"))
    assert r.status_code == 202, r.body
    assert api.get("/api/v1/releases/r1").json["phase"] == "progressing"
    assert sum(bus_events.failures.values()) >= 1
    assert api.get("/api/v1/events?tag=release:progressing").json  # stored all the same
    assert api.post("/api/v1/releases/r1/abort").status_code == 202
    # no answer at all (nothing listens there): counted, never raised
    bus_events.failures.clear()
    closed = boto3.client("events", endpoint_url="http://127.0.0.1:9", region_name=REGION,
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    assert bus_events.put("default", [new_event(["release:check"], {})], bus="b", client=closed) == 0
    assert sum(bus_events.failures.values()) == 1
    monkeypatch.delenv("VAMP_EVENT_BUS")
    settings.cache_clear()


def test_batches_honour_ten_entries_and_256_kb():
    small = [bus_events.entry_of("ns", new_event(["release:check"], {"n": i}), "b", "vamp") for i in range(25)]
    assert [len(b) for b in bus_events.batches(small)] == [10, 10, 5]
    big = [bus_events.entry_of("ns", new_event(["release:check"], "x" * 100_000), "b", "vamp") for _ in range(5)]
    sized = list(bus_events.batches(big))
    assert [len(b) for b in sized] == [2, 2, 1]
    assert all(sum(bus_events._size(e) for e in b) <= bus_events.MAX_BYTES for b in sized)
    huge = bus_events.entry_of("ns", new_event(["release:check"], "x" * 300_000), "b", "vamp")
    assert json.loads(huge["Detail"])["truncated"] is True and bus_events._size(huge) <= bus_events.MAX_BYTES


def test_detail_types():
    dt = bus_events.detail_type
    assert dt(new_event(["releases:r", "gateways:g", "release:check"], {})) == "release:check"
    assert dt(new_event(["synchronization:deployed", "deployments:d"], {})) == "synchronization:deployed"
    assert dt(new_event(["sla:escalate", "deployments:d"], {})) == "sla:escalate"
    assert dt(new_event(["workflows:w", "scheduled"], {})) == "workflows:w"
    assert dt(new_event(["gateways:g", "publish-failed"], {})) == "gateways:publish-failed"
    assert dt(new_event(["ecr:refused", "deployments:d"], {})) == "ecr:refused"
    assert dt(new_event(["gateways:g", "deployed"], {})) is None  # artifact writes stay off the bus
    assert dt(new_event(["metrics:requests"], 1)) is None
    assert dt(new_event(["release:check"], {}, posted_by={"name": "t", "role": "admin"})) is None



def test_every_publish_through_the_event_store_is_forwarded(aws, stack_bus):
    """Synchronisation, SLAs, workflows publish through store/event_backend.event_store(), as the
    synchronisation's events (deployments/sync.py) do: each kind arrives with its detail-type."""
    from chalicelib.store.event_backend import event_store

    kinds = {"synchronization:deployed": ["synchronization:deployed", "deployments:shop", "clusters:web"],
             "sla:escalate": ["sla:escalate", "deployments:shop"], "workflows:metrics": ["workflows:metrics", "run"],
             "gateways:publish-failed": ["gateways:shop", "publish-failed"]}
    event_store().publish("team-a", [new_event(tags, {"n": 1}) for tags in kinds.values()] +
                          [new_event(["gateways:shop", "deployed"], {})])
    got = {e["detail-type"]: e for e in stack_bus()}
    assert set(got) == set(kinds)
    assert got["sla:escalate"]["detail"]["namespace"] == "team-a" and got["sla:escalate"]["detail"]["value"] == {"n": 1}
    stored = event_store().query("team-a", EventQuery())
    assert stored.total == 5  # the store has them all, the bus its share
