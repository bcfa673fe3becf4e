"""EventBridge automations on moto: the local delivery of bus events to app.py's on_cw_event
handlers, the release state machine on moto (tests/releases), a fake agent acknowledging."""
from __future__ import annotations

import boto3
import pytest

from tests.releases.conftest import fake_agent, sfn  # noqa: F401 - fixtures, shared

ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
DIGEST1 = "sha256:" + "1" * 64
DIGEST2 = "sha256:" + "2" * 64


@pytest.fixture()
def bus(aws):
    from local import eventbridge

    eventbridge.install()
    eventbridge.reset()
    yield eventbridge
    eventbridge.reset()


@pytest.fixture()
def events_client(aws):
    return boto3.client("events", endpoint_url=aws, region_name=REGION)


def put(client, bus, source, detail_type, detail, resources=()):
    """Put one event on moto's default bus (as the AWS service would) and wait for its deliveries."""
    import json

    answer = client.put_events(Entries=[{"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail),
                                         "Resources": list(resources)}])
    assert answer["FailedEntryCount"] == 0, answer
    bus.drain()
    return answer["Entries"][0]["EventId"]


def push(client, bus, repository="shop/web", tag="2.0", digest=DIGEST2, result="SUCCESS", action="PUSH"):
    return put(client, bus, "aws.ecr", "ECR Image Action", {
        "result": result, "repository-name": repository, "image-digest": digest, "action-type": action,
        "image-tag": tag})


def automation_events(api, tag):
    r = api.get(f"/api/v1/events?tag={tag}")
    assert r.status_code == 200, r.body
    return r.json
