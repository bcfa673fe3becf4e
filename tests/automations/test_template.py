"""The automations in the packaged template (infra/resources.yaml merged into `chalice package`):
chalice's rules for the two handlers carry app.py's patterns (on the default bus), the stack has
a bus of its own that every publishing function names, and PutEvents is allowed on exactly it."""
from __future__ import annotations

from chalicelib.automations import cloudwatch_alarms, ecr
from infra.template import functions, packaged

BUS_NAME = {"Fn::GetAtt": ["VampEventBus", "Name"]}


def test_the_handlers_rules_and_the_stack_bus():
    template = packaged()
    found = functions(template)
    for name, pattern in (("EcrImagePushed", ecr.PATTERN), ("AlarmRaised", cloudwatch_alarms.PATTERN)):
        (event,) = found[name]["Properties"]["Events"].values()
        assert event["Type"] == "CloudWatchEvent" and event["Properties"]["Pattern"] == pattern
        assert "EventBusName" not in event["Properties"]  # the default bus: where ECR and CloudWatch put theirs
    bus = template["Resources"]["VampEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus" and bus["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-events"}
    for name, function in found.items():
        env = function["Properties"]["Environment"]["Variables"]
        if name == "GatewayPublish":  # it publishes no event, and knows nothing of the store
            assert "VAMP_EVENT_BUS" not in env, name
            continue
        assert env["VAMP_EVENT_BUS"] == BUS_NAME, name
        assert env["VAMP_EVENT_SOURCE"] == {"Fn::Sub": "vamp.${AWS::StackName}"}, name


def test_put_events_only_on_the_stack_bus():
    template = packaged()
    puts = []
    for resource in template["Resources"].values():
        for policy in (resource.get("Properties") or {}).get("Policies") or []:
            for s in policy.get("PolicyDocument", {}).get("Statement", []):
                if any(str(a).startswith("events:") for a in s["Action"]):
                    puts.append(s)
    assert puts and all(s["Action"] == ["events:PutEvents"] for s in puts)
    assert all(s["Resource"] == [{"Fn::GetAtt": ["VampEventBus", "Arn"]}] for s in puts)
