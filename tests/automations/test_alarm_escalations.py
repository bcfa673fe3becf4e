"""A CloudWatch alarm naming a deployment cluster escalates its SLA on ALARM and de-escalates it
on OK (docs/decisions/0044), by the SLA pass's own rules (slas/check.escalate): cooldown, bounds,
once per delivery, never during a release; each action an event with the alarm's figures."""
from __future__ import annotations

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest

from chalicelib.automations import cloudwatch_alarms
from chalicelib.automations.cloudwatch_alarms import named_clusters, on_alarm
from tests.automations.conftest import ACCOUNT, REGION, put
from tests.slas.test_slas import T0, blueprint, instances, rtsw, world  # noqa: F401 - the fixture

ONLY = {"type": "escalation_only", "escalations": [instances(minimum=1, maximum=3)]}
REASON = "Threshold Crossed: 1 datapoint [12.0 (04/12/26 02:00:00)] was greater than the threshold (5.0)."
REASON_DATA = {"version": "1.0", "queryDate": "2026-12-04T02:01:00.000+0000", "statistic": "Sum", "period": 60,
               "recentDatapoints": [12.0], "threshold": 5.0}
METRICS = [{"id": "m1", "metricStat": {"metric": {"namespace": "shop", "name": "5xx", "dimensions": {"app": "web"}},
                                       "period": 60, "stat": "Sum"}, "returnData": True}]


def alarm_event(name, state, previous, *, description="", tags=None, event_id="e1"):
    detail = {"alarmName": name, "state": {"value": state, "reason": REASON, "reasonData": json.dumps(REASON_DATA),
                                           "timestamp": "2026-12-04T02:01:00Z"},
              "previousState": {"value": previous}, "configuration": {"description": description, "metrics": METRICS}}
    if tags is not None:
        detail["alarmTags"] = tags
    return {"id": event_id, "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change",
            "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"], "detail": detail}


def _alarm(world, state="ALARM", previous="OK", at=T0, event_id="e1", cluster="web"):  # noqa: F811
    event = alarm_event("shop-5xx", state, previous, tags={"vamp:cluster": f"{world.ns}/shop/{cluster}"},
                        event_id=event_id)
    return on_alarm(event, escalations={"store": world.store, "events": world.events, "releases": world.releases,
                                        "driver": world.driver, "clock": at})


def test_named_clusters_from_tags_and_description():
    tags = {"vamp:cluster": "team-a/shop/web", "vamp:cluster:2": "team-a/shop/db", "vamp:cluster:bad": "shop/web",
            "vamp:gateway": "team-a/shop/web/80"}
    described = "latency vamp:cluster=team-b/cart/api vamp:cluster=team-a/shop/web vamp:cluster=Bad/x/y"
    assert named_clusters(tags, described) == [("team-a", "shop", "web"), ("team-a", "shop", "db"),
                                               ("team-b", "cart", "api")]  # by tag key, then the description
    assert named_clusters({}, None) == []


def test_an_alarm_escalates_the_cluster_and_its_recovery_de_escalates_it_with_the_alarms_figures(world):  # noqa: F811
    world.deploy(blueprint(ONLY))
    [noted] = _alarm(world)
    assert world.scale()["instances"] == 3
    assert "alarm:escalated" in noted["tags"] and noted["value"]["escalation"]["actions"] == 1
    [sla] = world.tagged("sla:escalate")
    assert {"alarms:shop-5xx", "deployments:shop", "clusters:web"} <= set(sla["tags"])
    [mark] = world.tagged("escalation:scale_instances")
    alarm = mark["value"]["sla"]["alarm"]  # the action carries the figures that caused it
    assert alarm["alarm"] == "shop-5xx" and alarm["reason"] == REASON and alarm["state"] == "ALARM"
    assert alarm["reason_data"]["recentDatapoints"] == [12.0]
    assert alarm["metrics"] == [{"namespace": "shop", "name": "5xx", "dimensions": {"app": "web"}, "stat": "Sum",
                                 "period": 60}]
    assert (mark["value"]["before"], mark["value"]["after"]) == (2, 3)
    [noted] = _alarm(world, "OK", "ALARM", at=T0 + timedelta(seconds=5), event_id="e2")
    assert "alarm:deescalated" in noted["tags"]
    assert world.scale()["instances"] == 2
    assert len(world.tagged("sla:deescalate")) == 1


def test_within_the_slas_interval_and_cooldown_an_alarm_is_refused_saying_why(world):  # noqa: F811
    world.deploy(blueprint(rtsw([instances(minimum=1, maximum=5)], interval=60, cooldown=30)))
    _alarm(world, at=T0)
    assert world.scale()["instances"] == 3
    [noted] = _alarm(world, at=T0 + timedelta(seconds=30), event_id="e2")
    assert "alarm:refused" in noted["tags"] and "interval + cooldown (90 s)" in noted["value"]["escalation"]["reason"]
    assert world.scale()["instances"] == 3
    [noted] = _alarm(world, at=T0 + timedelta(seconds=91), event_id="e3")
    assert "alarm:escalated" in noted["tags"] and world.scale()["instances"] == 4
    # and the SLA check honours the alarm's event as its own: no check within its cooldown
    world.response_times([500, 500], T0 + timedelta(seconds=100))
    assert world.run(T0 + timedelta(seconds=100)).skipped == {"cooldown": 1}


def test_the_bounds_hold_and_a_redelivery_acts_once(world):  # noqa: F811
    world.deploy(blueprint(ONLY))
    _alarm(world, event_id="e1")
    assert _alarm(world, event_id="e1", at=T0 + timedelta(seconds=1)) == []  # EventBridge delivered it again
    assert world.scale()["instances"] == 3 and len(world.tagged("sla:escalate")) == 1
    _alarm(world, event_id="e2", at=T0 + timedelta(seconds=2))  # 3 + 1 passes the maximum: nothing
    assert world.scale()["instances"] == 3
    [none] = world.tagged("escalation:none")
    assert "outside [1, 3]" in json.dumps(none["value"]["why"])


def test_an_ok_that_recovers_from_no_alarm_changes_nothing(world):  # noqa: F811
    world.deploy(blueprint(ONLY))
    assert _alarm(world, "OK", "INSUFFICIENT_DATA") == []
    assert world.scale()["instances"] == 2 and world.tagged("sla") == []


def test_a_cluster_without_an_sla_or_unknown_is_refused_saying_why(world):  # noqa: F811
    world.deploy(blueprint(None))
    [noted] = _alarm(world)
    assert "alarm:refused" in noted["tags"] and "has no SLA" in noted["value"]["escalation"]["reason"]
    [noted] = _alarm(world, cluster="nope", event_id="e2")
    assert "no cluster nope" in noted["value"]["escalation"]["reason"]


def test_during_a_release_on_the_cluster_the_escalation_waits_for_it(world):  # noqa: F811
    world.deploy(blueprint(ONLY))
    world.releases.states = [SimpleNamespace(name="r1", gateway="shop/web/webport", stable="shop/web/web:1.0.0/webport",
                                             canary="shop/web/web:2.0.0/webport", holds_gateway=True)]
    [noted] = _alarm(world)
    assert "alarm:waiting" in noted["tags"] and world.scale()["instances"] == 2
    world.releases.states = []
    world.run(T0 + timedelta(seconds=60))  # the release is over: the pass applies the alarm's event
    assert world.scale()["instances"] == 3


def test_through_the_bus_an_alarm_escalates_and_its_outcome_triggers_workflows(api, world, bus,  # noqa: F811
                                                                                events_client, monkeypatch):
    """The whole path: moto's bus, app.py's handler (ALARM and OK both delivered), the SLA's
    escalation, and a workflow listening for the alarm's outcome."""
    world.deploy(blueprint(ONLY))
    r = api.post(f"/{world.ns}/api/v1/workflows", {"name": "paged", "breed": "allocation",
                                                   "schedule": {"event": ["alarm:escalated", "clusters:web"]}})
    assert r.status_code == 202, r.body
    description = f"5xx over 5 vamp:cluster={world.ns}/shop/web"
    for state, previous in (("ALARM", "OK"), ("OK", "ALARM")):
        event = alarm_event("shop-5xx", state, previous, description=description)
        put(events_client, bus, "aws.cloudwatch", "CloudWatch Alarm State Change", event["detail"],
            event["resources"])
        if state == "ALARM":
            assert world.scale()["instances"] == 3
    assert bus.deliveries["alarm_raised"] == 2
    assert world.scale()["instances"] == 2
    [run] = world.tagged("workflows:paged", "started")
    [escalated] = world.tagged("alarm:escalated")
    assert run["value"]["trigger"]["id"] == escalated["id"]


def test_the_rule_matches_alarm_and_ok():
    # app.py's handler has this pattern (tests/automations/test_local_delivery.py compares them)
    assert cloudwatch_alarms.PATTERN["detail"]["state"]["value"] == ["ALARM", "OK"]


@pytest.fixture(autouse=True)
def _fresh_listeners():
    from chalicelib.workflows import triggers

    triggers._cache.clear()
    yield


def test_an_ecr_pushs_outcome_triggers_the_workflows_listening_for_it(api, bus, events_client, sfn):
    """The automations' events run workflows as POST /events does: here an ECR refusal."""
    from tests.automations.conftest import automation_events, push
    from tests.automations.test_ecr import shop

    assert api.post("/api/v1/deployments", shop()).status_code == 202  # no release policy named: refused
    r = api.post("/api/v1/workflows", {"name": "notify", "breed": "allocation",
                                       "schedule": {"event": ["ecr:refused", "deployments:shop"]}})
    assert r.status_code == 202, r.body
    push(events_client, bus)
    (refused,) = automation_events(api, "ecr:refused")
    [run] = automation_events(api, "workflows:notify&tag=started")
    assert run["value"]["trigger"]["id"] == refused["id"]
