"""A CloudWatch alarm going to ALARM aborts the release of the gateways it names."""
from __future__ import annotations

import boto3
import pytest

from chalicelib.automations.cloudwatch_alarms import alarm_tags, named_gateways
from tests.automations.conftest import ACCOUNT, REGION, automation_events, put
from tests.releases.conftest import make_gateway, release, run_until


def alarm(aws, name, tags=(), description=""):
    cw = boto3.client("cloudwatch", endpoint_url=aws, region_name=REGION)
    cw.put_metric_alarm(AlarmName=name, AlarmDescription=description, MetricName="errors", Namespace="shop",
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
                        ComparisonOperator="GreaterThanThreshold", Tags=[{"Key": k, "Value": v} for k, v in tags])
    return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"


def raise_alarm(events_client, bus, name, arn, description="", state="ALARM"):
    return put(events_client, bus, "aws.cloudwatch", "CloudWatch Alarm State Change", {
        "alarmName": name, "state": {"value": state, "reason": "Threshold Crossed", "timestamp": "2026-12-04T02:00:00Z"},
        "previousState": {"value": "OK"}, "configuration": {"description": description, "metrics": []}}, [arn])


@pytest.fixture()
def running(api, sfn):
    make_gateway(api)
    r = api.post("/api/v1/releases", release("r1", interval="30s"))
    assert r.status_code == 202, r.body
    return "r1"


def test_an_alarm_tagged_with_the_gateway_aborts_its_release(api, aws, bus, events_client, running):
    arn = alarm(aws, "shop-errors", tags=[("vamp:gateway", "default/shop"), ("team", "a")])
    raise_alarm(events_client, bus, "shop-errors", arn)
    assert bus.deliveries["alarm_raised"] == 1
    status = run_until(api, running, None, lambda s: s["phase"] == "rolled_back")
    assert status["phase"] == "rolled_back"
    (aborted,) = automation_events(api, "alarm:aborted")
    assert aborted["value"]["alarm"] == "shop-errors" and aborted["value"]["release"] == "r1"
    assert "alarms:shop-errors" in aborted["tags"] and "gateways:shop" in aborted["tags"]


def test_an_alarm_naming_the_gateway_in_its_description_aborts_its_release(api, aws, bus, events_client, running):
    arn = alarm(aws, "shop-latency")
    raise_alarm(events_client, bus, "shop-latency", arn, description="p99 too high vamp:gateway=default/shop")
    run_until(api, running, None, lambda s: s["phase"] == "rolled_back")
    (aborted,) = automation_events(api, "alarm:aborted")
    assert aborted["value"]["alarm"] == "shop-latency"


def test_an_alarm_back_to_ok_or_naming_another_gateway_aborts_nothing(api, aws, bus, events_client, running):
    arn = alarm(aws, "other", tags=[("vamp:gateway", "default/other")])
    raise_alarm(events_client, bus, "other", arn)
    raise_alarm(events_client, bus, "other", arn, description="vamp:gateway=default/shop", state="OK")
    assert bus.deliveries["alarm_raised"] == 2  # OK is delivered (it de-escalates, 0044) and aborts nothing
    assert api.get("/api/v1/releases/r1").json["phase"] == "progressing"
    (idle,) = automation_events(api, "alarm:idle")
    assert idle["value"]["gateway"] == "other"
    assert api.post("/api/v1/releases/r1/abort").status_code == 202


def test_named_gateways():
    tags = {"vamp:gateway": "default/shop", "vamp:gateway:2": "team-a/dep/web/port", "x": "default/no"}
    assert named_gateways(tags, "see vamp:gateway=default/shop and vamp:gateway=b/g\nvamp:gateway=bad") == [
        ("default", "shop"), ("team-a", "dep/web/port"), ("b", "g")]
    assert named_gateways({}, None) == []


def test_alarm_tags_propagated_read_or_unreadable(aws):
    assert alarm_tags({"detail": {"alarmTags": {"vamp:gateway": "default/shop"}}}) == {"vamp:gateway": "default/shop"}
    arn = alarm(aws, "tagged", tags=[("vamp:gateway", "default/shop")])
    assert alarm_tags({"detail": {}, "resources": [arn]}) == {"vamp:gateway": "default/shop"}

    class Refusing:
        def list_tags_for_resource(self, **kw):
            raise RuntimeError("AccessDenied")
    assert alarm_tags({"detail": {}, "resources": [arn]}, client=Refusing()) == {}  # the description is left
    assert alarm_tags({"detail": {}, "resources": []}) == {}
