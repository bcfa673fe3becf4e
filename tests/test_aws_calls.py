"""The recorder of AWS calls (tests/aws_calls.py, docs/decisions/0038): what a call needs, how a
policy is read, and that a call no role allows is reported with where it was made."""
from __future__ import annotations

import ast

import boto3
import pytest

from tests import aws_calls
from tests.aws_calls import ROOT, Need, Record, Role, check, deployed_roles, needs, product_caller

TABLE = "vamp-test-0123"


def role(*statements: dict) -> Role:
    return Role("FnRole", ["Fn"], list(statements))


def allow(actions, resources, condition=None) -> dict:
    s = {"Effect": "Allow", "Action": actions, "Resource": resources}
    if condition:
        s["Condition"] = condition
    return s


TABLE_ARN = {"Fn::GetAtt": ["VampTable", "Arn"]}
EVENTS_ARN = {"Fn::GetAtt": ["VampEventsTable", "Arn"]}


def test_a_transaction_needs_the_actions_of_its_parts_on_their_tables():
    found = needs("dynamodb", "TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": TABLE, "Item": {}}},
        {"Update": {"TableName": f"{TABLE}-events", "Key": {}}},
        {"ConditionCheck": {"TableName": TABLE, "Key": {}}},
        {"Put": {"TableName": TABLE, "Item": {}}},
    ]})
    assert found == (Need("dynamodb:ConditionCheckItem", "table:VampTable"),
                     Need("dynamodb:PutItem", "table:VampTable"),
                     Need("dynamodb:UpdateItem", "table:VampEventsTable"))
    assert needs("dynamodb", "TransactGetItems", {"TransactItems": [{"Get": {"TableName": TABLE}}]}) == \
        (Need("dynamodb:GetItem", "table:VampTable"),)
    assert needs("dynamodb", "BatchWriteItem", {"RequestItems": {TABLE: [], f"{TABLE}-events": []}}) == \
        (Need("dynamodb:BatchWriteItem", "table:VampEventsTable"), Need("dynamodb:BatchWriteItem", "table:VampTable"))
    assert needs("dynamodb", "Query", {"TableName": TABLE, "IndexName": "by-x"}) == \
        (Need("dynamodb:Query", "table:VampTable/index"),)


def test_ecs_tags_on_create_and_a_passed_role_are_needs_of_their_own():
    found = needs("ecs", "RegisterTaskDefinition", {"family": "f", "tags": [{"key": "k", "value": "v"}],
                                                    "executionRoleArn": "arn:aws:iam::1:role/r"})
    assert found == (Need("ecs:RegisterTaskDefinition", "*"),
                     Need("ecs:TagResource", "ecs:task-definition", (("ecs:CreateAction", "RegisterTaskDefinition"),)),
                     Need("iam:PassRole", "role:EcsTaskExecutionRole",
                          (("iam:PassedToService", "ecs-tasks.amazonaws.com"),)))
    assert needs("ecs", "RegisterTaskDefinition", {"family": "f"}) == (Need("ecs:RegisterTaskDefinition", "*"),)
    assert needs("ecs", "TagResource", {"resourceArn": "arn:aws:ecs:us-east-1:1:service/c/s", "tags": []}) == \
        (Need("ecs:TagResource", "ecs:service"),)
    assert needs("sts", "GetCallerIdentity", {}) == ()


def test_a_call_no_statement_allows_is_reported_with_its_caller():
    records = [
        Record("dynamodb", "PutItem", "chalicelib/store/x.py:10 (put)", (Need("dynamodb:PutItem", "table:VampTable"),)),
        Record("dynamodb", "Scan", "chalicelib/store/x.py:20 (scan)", (Need("dynamodb:Scan", "table:VampTable"),)),
        Record("ecs", "DescribeServices", "chalicelib/drivers/ecs.py:5 (d)", (Need("ecs:DescribeServices", "ecs:service"),)),
    ]
    policy = role(allow(["dynamodb:PutItem", "dynamodb:GetItem"], [TABLE_ARN]),
                  allow("ecs:Describe*", {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/c/*"}))
    refused, _, unreached = check(records, [policy])
    assert refused == ["dynamodb:Scan needs dynamodb:Scan on table:VampTable, denied to FnRole; "
                       "called at chalicelib/store/x.py:20 (scan)"]
    assert unreached == ["dynamodb:GetItem"]  # granted, reached by no record


@pytest.mark.parametrize("need, statement", [
    # the action on the other table only
    (Need("dynamodb:GetItem", "table:VampTable"), allow("dynamodb:GetItem", [EVENTS_ARN])),
    # the right action on a resource of another type
    (Need("ecs:DescribeTasks", "ecs:task"),
     allow("ecs:DescribeTasks", {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/c/*"})),
    # an action without resource-level permission, granted on a named resource only
    (Need("ecs:RegisterTaskDefinition", "*"), allow("ecs:RegisterTaskDefinition", "arn:aws:ecs:us-east-1:1:task-definition/x")),
    # a condition the request does not meet
    (Need("iam:PassRole", "role:EcsTaskExecutionRole", (("iam:PassedToService", "ecs-tasks.amazonaws.com"),)),
     allow("iam:PassRole", [{"Fn::GetAtt": ["EcsTaskExecutionRole", "Arn"]}],
           {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}})),
    # a condition key the request does not carry (tagging outside a create action)
    (Need("ecs:TagResource", "ecs:task-definition"),
     allow("ecs:TagResource", {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/*"},
           {"StringEquals": {"ecs:CreateAction": "RegisterTaskDefinition"}})),
    # a Deny is no grant
    (Need("states:StartExecution", "states:stateMachine"),
     {"Effect": "Deny", "Action": "states:*", "Resource": "*"}),
])
def test_what_a_statement_does_not_allow(need, statement):
    assert not role(statement).allows(need)


def test_what_a_statement_allows():
    passing = allow("iam:PassRole", [{"Fn::GetAtt": ["EcsTaskExecutionRole", "Arn"]}],
                    {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}})
    assert role(passing).allows(Need("iam:PassRole", "role:EcsTaskExecutionRole",
                                     (("iam:PassedToService", "ecs-tasks.amazonaws.com"),)))
    assert role(allow("DynamoDB:getitem", [TABLE_ARN])).allows(Need("dynamodb:GetItem", "table:VampTable"))


def test_the_deployed_roles_are_every_functions_and_deny_what_the_code_must_not_do():
    roles = deployed_roles()
    assert sorted(f for r in roles for f in r.functions) == sorted(
        ["APIHandler", "VampToken", "ScheduledPass", "ReleaseAnalyse", "ReleaseSetWeight", "ReleaseGate",
         "ReleasePromote", "ReleaseRollback", "GatewayPublish", "WorkflowRun",
         "WorkflowBusEvent", "EcrImagePushed", "AlarmRaised"])
    outside = aws_calls.roles_for(aws_calls.Record("dynamodb", "PutItem", "app.py:1 (f)", ()), roles)
    (publisher,) = aws_calls.roles_for(aws_calls.Record("lambda", "Invoke", "x", (), "GatewayPublish"), roles)
    assert publisher not in outside and len(outside) == len(roles) - 1
    # The publisher function reaches etcd only: no table, no release, no invoking anything.
    for need in (Need("dynamodb:GetItem", "table:VampTable"), Need("states:StartExecution", "states:stateMachine"),
                 Need("lambda:InvokeFunction", "function:GatewayPublish"), Need("ecs:CreateService", "ecs:service")):
        assert not publisher.allows(need)
    # --- automations (0041): the stack's bus only, the alarms' tags
    assert not publisher.allows(Need("events:PutEvents", "bus:VampEventBus"))
    for r in outside:
        assert r.allows(Need("events:PutEvents", "bus:VampEventBus"))
        assert not r.allows(Need("events:PutEvents", "bus:default"))
        assert r.allows(Need("cloudwatch:ListTagsForResource", "cloudwatch:alarm"))
    for r in outside:
        assert r.allows(Need("lambda:InvokeFunction", "function:GatewayPublish"))
        assert not r.allows(Need("lambda:InvokeFunction", "function:ReleaseAnalyse"))
        assert r.allows(Need("dynamodb:PutItem", "table:VampTable"))
        assert r.allows(Need("states:StartExecution", "states:stateMachine"))
        assert not r.allows(Need("dynamodb:Scan", "table:VampTable"))
        assert not r.allows(Need("dynamodb:DeleteTable", "table:VampTable"))
        assert not r.allows(Need("iam:PassRole", "role:EcsTaskExecutionRole"))  # only to ECS tasks


def test_excluded_callers_are_called_by_no_other_product_code():
    names = {function for _, function in aws_calls.EXCLUDED_CALLERS} | {"ensure_tables"}
    files = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    calls = [(str(path.relative_to(ROOT)), node.lineno) for path in files if path.name != "table.py"
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute | ast.Name) and (getattr(node, "attr", None) or getattr(node, "id", None)) in names]
    assert not calls


def _function_in(path: str, source: str):
    scope: dict = {}
    exec(compile(source, str(ROOT / path), "exec"), scope)  # noqa: S102 - a caller that seems to live there
    return scope["call"]


def test_only_calls_whose_first_frame_outside_botocore_is_product_code_count():
    import sys

    aws_calls.install()
    probe = "import sys\ndef call(f=None):\n    return f() if f else sys._getframe()\n"
    product = _function_in("chalicelib/recorder_probe.py", probe)
    assert product_caller(product()) == ("chalicelib/recorder_probe.py", 3, "call")
    assert product_caller(_function_in("tests/recorder_probe.py", probe)()) is None
    assert product_caller(_function_in("local/recorder_probe.py", probe)()) is None
    # botocore's and boto3's own frames are passed over
    import botocore

    library = _function_in(botocore.__file__.replace("__init__.py", "recorder_probe.py"), probe)
    assert product_caller(product(library)) == ("chalicelib/recorder_probe.py", 3, "call")
    assert product_caller(sys._getframe()) is None


def test_the_hook_records_a_product_call_and_not_a_tests(aws):
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws)
    caller = _function_in("chalicelib/recorder_probe.py", "def call(c, name):\n    return c.describe_table(TableName=name)\n")
    from chalicelib.store import table

    before = set(aws_calls._RECORDS)
    try:
        client.describe_table(TableName=table.table_name())
        assert set(aws_calls._RECORDS) == before
        caller(client, table.table_name())
        (new,) = set(aws_calls._RECORDS) - before
        assert new == ("dynamodb", "DescribeTable", "chalicelib/recorder_probe.py:2 (call)",
                       (Need("dynamodb:DescribeTable", "table:VampTable"),), "")
    finally:  # a probe's call is no product call: the session's check must not see it
        for key in set(aws_calls._RECORDS) - before:
            del aws_calls._RECORDS[key]


def test_a_call_under_the_publishers_entry_is_checked_against_its_role_only():
    # The publisher function (kv/aws_lambda.serve) has a narrower role than the others: a call it
    # made that only the others allow is a refusal, and the others' roles do not judge it.
    import sys

    frame = _function_in("chalicelib/kv/aws_lambda.py", "def serve(f):\n    return f()\ncall = serve\n")(sys._getframe)
    assert aws_calls.confined_function(frame) == "GatewayPublish"
    assert aws_calls.confined_function(sys._getframe()) == ""
    roles = deployed_roles()
    get = aws_calls.Record("dynamodb", "GetItem", "chalicelib/kv/x.py:1 (serve)",
                           (Need("dynamodb:GetItem", "table:VampTable"),), "GatewayPublish")
    refused, _, _ = aws_calls.check([get], roles)
    assert len(refused) == 1 and refused[0].endswith("denied to GatewayPublishRole; called at chalicelib/kv/x.py:1 (serve)")
    assert not aws_calls.check([aws_calls.Record(get.service, get.operation, get.caller, get.needs)], roles)[0]
