"""Every AWS operation the product code performs during the test run, checked against the policies
the deployed functions' roles get (issue 13; docs/decisions/0038-ecs-tasks-and-iam-recorded.md).

A pytest plugin (tests/conftest.py loads it). Each botocore client any session makes in a test
process gets a `before-parameter-build` handler (the call's own parameters, once per call,
before botocore's retries); it looks at the stack and records the call only when the
first frame outside botocore/boto3 is code that ships to Lambda (app.py, chalicelib/): a test
calling moto, the local stack's own set-up or a tool is not the product. A record is
(service, operation, caller, the IAM requirements the call's parameters imply), counted.
With pytest-xdist each worker writes its records to a file of the run's directory; the process
that ends the session (the controller, or the only process) merges them, writes
.pytest-aws-calls.json, prints one line, and fails the run (exit status 1) when a requirement is
allowed by no statement of some function's role in the packaged template (infra/template.py).

Limits (the ADR says them too): only botocore calls are seen (OpenSearch's signed HTTP, the EKS
token's presigned URL are not operations); product code running in a subprocess (tests/local's
`python -m local run`, the demo) is not recorded; conditions are evaluated only for the keys the
recorder knows (KNOWN_CONDITION_KEYS); resources are matched by type, not by exact name.
"""
from __future__ import annotations

import fnmatch
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / ".pytest-aws-calls.json"
DIR_KEY = "aws_calls_dir"  # xdist's workerinput key, the run's directory of worker files

# --- which calls are the product's -------------------------------------------------------------

_PRODUCT = (str(ROOT / "app.py"), str(ROOT / "chalicelib") + os.sep)


def _library_dirs() -> tuple[str, ...]:
    import boto3
    import botocore

    return tuple(str(Path(m.__file__).parent) + os.sep for m in (botocore, boto3)) + (__file__,)


_LIBRARIES: tuple[str, ...] = ()
_KIND: dict[str, int] = {}  # co_filename -> 0 library, 1 product, 2 anything else


def _kind(filename: str) -> int:
    kind = _KIND.get(filename)
    if kind is None:
        kind = 0 if filename.startswith(_LIBRARIES) else 1 if filename.startswith(_PRODUCT) else 2
        _KIND[filename] = kind
    return kind


def product_caller(frame: Any) -> tuple[str, int, str] | None:
    """(path relative to the root, line, function) of the first frame from `frame` outward that
    is outside botocore/boto3, when that frame is product code; else None."""
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if kind == 0:
            frame = frame.f_back
            continue
        if kind == 2:
            return None
        filename, line, function = frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name
        outer = frame  # a comprehension or lambda is named after the function around it
        while function.startswith("<") and outer.f_back is not None and outer.f_back.f_code.co_filename == filename:
            outer = outer.f_back
            function = outer.f_code.co_name
        return (os.path.relpath(filename, ROOT), line, function)
    return None


# Functions whose role is narrower than the others' because they run one entry only: a call with
# that entry on its stack is checked against that function's role, any other call against the
# roles of every function that is not confined (the publisher's role could not make the ECS calls).
CONFINED = {("chalicelib/kv/aws_lambda.py", "serve"): "GatewayPublish"}


def confined_function(frame: Any) -> str:
    """The confined function whose entry is on the stack from `frame` outward, or ""."""
    while frame is not None:
        if frame.f_code.co_name == "serve" and _kind(frame.f_code.co_filename) == 1:
            where = (os.path.relpath(frame.f_code.co_filename, ROOT), frame.f_code.co_name)
            if where in CONFINED:
                return CONFINED[where]
        frame = frame.f_back
    return ""


# --- what a call needs -------------------------------------------------------------------------

@dataclass(frozen=True)
class Need:
    """One IAM action on one kind of resource, with the condition keys the request supplies."""

    action: str
    resource: str  # a resource kind: "*" (no resource-level permission), "table:VampTable", "ecs:service", ...
    context: tuple[tuple[str, str], ...] = ()

    def text(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.context)
        return f"{self.action} on {self.resource}{extra}"


# Calls that need no permission, or run only where no deployed role does, each with the reason.
NO_PERMISSION = {
    ("sts", "GetCallerIdentity"): "answers for any credentials; IAM grants nothing for it",
}
EXCLUDED_CALLERS = {
    ("chalicelib/store/table.py", "ensure_table"):
        "the local stack and the tests make their tables; on AWS the stack does (infra/resources.yaml)",
    ("chalicelib/store/table.py", "dump_items"): "test tooling: no handler calls it (tests/test_aws_calls.py checks)",
    ("chalicelib/store/table.py", "load_items"): "test tooling: no handler calls it (tests/test_aws_calls.py checks)",
}
# Resource kinds by (IAM service prefix, operation) where the operation names its resource by
# a parameter the recorder does not read; default: the service's main kind below, else "*".
_ECS_KIND = {
    "RegisterTaskDefinition": "*", "ListServices": "*", "ListTasks": "*",  # no resource-level permission
    "CreateService": "ecs:service", "UpdateService": "ecs:service", "DeleteService": "ecs:service",
    "DescribeServices": "ecs:service", "DescribeTasks": "ecs:task",
    "RunTask": "ecs:task-definition", "StopTask": "ecs:task",  # workflow runs (0039)
}
_STATES_KIND = {"StartExecution": "states:stateMachine", "StopExecution": "states:execution",
                "DescribeExecution": "states:execution", "SendTaskSuccess": "*", "SendTaskFailure": "*",
                "SendTaskHeartbeat": "*"}
# ECS authorises the tags of a create action as ecs:TagResource with ecs:CreateAction
# ("tagging authorization"); the created thing's kind:
_ECS_TAG_ON_CREATE = {"RegisterTaskDefinition": "ecs:task-definition", "CreateService": "ecs:service",
                      "RunTask": "ecs:task"}
_TRANSACT_PARTS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                   "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def table_kind(name: str) -> str:
    """The stack's table a name stands for: the events table is `<table>-events` locally and in
    the tests (chalicelib/store/table.py), a table of its own in the stack."""
    return "table:VampEventsTable" if name.endswith("-events") else "table:VampTable"


def _ecs_arn_kind(arn: str) -> str:
    kind = arn.split(":", 5)[-1].split("/", 1)[0] if arn.count(":") >= 5 else ""
    return f"ecs:{kind}" if kind else "*"


def needs(service: str, operation: str, params: dict) -> tuple[Need, ...]:
    """What IAM must allow for `operation` of `service` (its IAM prefix) with `params`."""
    if (service, operation) in NO_PERMISSION:
        return ()
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            # a transaction is authorised as its parts, each on its table
            found = {Need(f"dynamodb:{_TRANSACT_PARTS[part]}", table_kind(body.get("TableName", "")))
                     for item in params.get("TransactItems", []) for part, body in item.items()
                     if part in _TRANSACT_PARTS}
            return tuple(sorted(found, key=Need.text))
        tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
        kinds = sorted({table_kind(t) for t in tables}) or ["*"]
        if params.get("IndexName"):
            kinds = [f"{k}/index" for k in kinds]
        return tuple(Need(f"dynamodb:{operation}", k) for k in kinds)
    if service == "ecs":
        out = [Need(f"ecs:{operation}", _ECS_KIND.get(operation) or
                    (_ecs_arn_kind(params["resourceArn"]) if "resourceArn" in params else "*"))]
        if params.get("tags") and operation in _ECS_TAG_ON_CREATE:
            out.append(Need("ecs:TagResource", _ECS_TAG_ON_CREATE[operation], (("ecs:CreateAction", operation),)))
        for key in ("executionRoleArn", "taskRoleArn"):
            if params.get(key):
                # the only role the product passes is the stack's (VAMP_ECS_EXECUTION_ROLE_ARN)
                out.append(Need("iam:PassRole", "role:EcsTaskExecutionRole",
                                (("iam:PassedToService", "ecs-tasks.amazonaws.com"),)))
        return tuple(out)
    if service == "states":
        return (Need(f"states:{operation}", _STATES_KIND.get(operation, "*")),)
    if service == "ssm":
        return (Need(f"ssm:{operation}", "ssm:parameter"),)
    if service == "secretsmanager":
        return (Need(f"secretsmanager:{operation}", "secretsmanager:secret"),)
    if service == "eks":
        return (Need(f"eks:{operation}", "eks:cluster"),)
    if service == "lambda":
        action = {"Invoke": "InvokeFunction"}.get(operation, operation)  # the API's name is not the action's
        # `${AWS::StackName}-gateway_publish` (or its ARN) is chalice's function GatewayPublish
        name = str(params.get("FunctionName", "")).rsplit(":function:", 1)[-1].split(":")[0].rsplit("-", 1)[-1]
        logical = "".join(w.capitalize() for w in name.split("_"))
        return (Need(f"lambda:{action}", f"function:{logical}" if logical else "lambda:function"),)
    if service == "scheduler":  # --- workflows (0039): schedules, and the role their target runs with
        out = [Need(f"scheduler:{operation}", "scheduler:schedule")]
        if (params.get("Target") or {}).get("RoleArn"):
            out.append(Need("iam:PassRole", "role:WorkflowSchedulerRole",
                            (("iam:PassedToService", "scheduler.amazonaws.com"),)))
        return tuple(out)
    # --- automations (0041) ---
    if service == "monitoring":  # CloudWatch signs as `monitoring`; IAM's prefix is cloudwatch
        return (Need(f"cloudwatch:{operation}", "cloudwatch:alarm"),)
    if service == "events":  # the control plane puts only on the stack's bus (VAMP_EVENT_BUS)
        return (Need(f"events:{operation}", "bus:VampEventBus"),)
    if service == "logs":  # --- workflow runs on ECS (0039): their tasks' log streams (awslogs)
        return (Need(f"logs:{operation}", "logs:log-stream"),)
    return (Need(f"{service}:{operation}", "*"),)


# --- the policies ------------------------------------------------------------------------------

# Where a kind of resource is in a rendered Resource (tests/infra/templates.render): every marker.
_MARKERS = {
    "ecs:service": (":ecs:", ":service/"), "ecs:task": (":ecs:", ":task/"),
    "ecs:task-definition": (":ecs:", ":task-definition/"), "ecs:cluster": (":ecs:", ":cluster/"),
    "states:stateMachine": (":states:", ":stateMachine:"), "states:execution": (":states:", ":execution:"),
    "ssm:parameter": (":ssm:", ":parameter/"), "secretsmanager:secret": (":secretsmanager:", ":secret:"),
    "eks:cluster": (":eks:", ":cluster/"), "lambda:function": (":lambda:", ":function:"),
    "scheduler:schedule": (":scheduler:", ":schedule/"),
    "cloudwatch:alarm": (":cloudwatch:", ":alarm:"),
    "logs:log-stream": (":logs:", ":log-stream:"),
}
KNOWN_CONDITION_KEYS = {"iam:PassedToService", "ecs:CreateAction"}
_OPERATORS = {"StringEquals": lambda v, p: v == p, "ArnEquals": lambda v, p: v == p,
              "StringLike": fnmatch.fnmatchcase, "ArnLike": fnmatch.fnmatchcase}


def resource_matches(kind: str, resource: str) -> bool:
    if resource == "*":
        return True
    if kind == "*":
        return False  # an action without resource-level permission is allowed only on "*"
    if kind.startswith(("table:", "role:", "function:", "bus:")):
        logical, _, sub = kind.partition(":")[2].partition("/")
        arn = f"{{GetAtt {logical}.Arn}}"
        return resource == arn if not sub else resource.startswith(f"{arn}/{sub}/")
    return all(m in resource for m in _MARKERS.get(kind, (kind,)))


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def conditions_hold(condition: dict | None, context: dict[str, str]) -> bool:
    """A statement's Condition for a request with `context`: keys the recorder knows are
    evaluated (absent from the request: false, as IAM has it); any other key is assumed to hold."""
    from tests.infra.templates import render

    for operator, tests in (condition or {}).items():
        for key, wanted in tests.items():
            if key not in KNOWN_CONDITION_KEYS:
                continue
            test = _OPERATORS.get(operator.removesuffix("IfExists"))
            if key not in context:
                if operator.endswith("IfExists"):
                    continue
                return False
            if test is None or not any(test(context[key], render(w)) for w in _as_list(wanted)):
                return False
    return True


@dataclass
class Role:
    """The Allow statements of one deployed role, and which functions have it."""

    name: str
    functions: list[str]
    statements: list[dict] = field(default_factory=list)

    def allows(self, need: Need) -> bool:
        from tests.infra.templates import render

        context = dict(need.context)
        for s in self.statements:
            if s.get("Effect") != "Allow":
                continue
            if not any(fnmatch.fnmatch(need.action.lower(), str(a).lower()) for a in _as_list(s.get("Action", []))):
                continue
            if not any(resource_matches(need.resource, render(r)) for r in _as_list(s.get("Resource", []))):
                continue
            if conditions_hold(s.get("Condition"), context):
                return True
        return False


def deployed_roles(template: dict | None = None) -> list[Role]:
    """The roles of the packaged template's functions (chalice makes one per function, each with
    .chalice/policy-<stage>.json's statements, or the function's own policy file)."""
    if template is None:
        from infra.template import functions, packaged

        template = packaged("dev")
    else:
        from infra.template import functions
    roles: dict[str, Role] = {}
    for name, function in functions(template).items():
        ref = function["Properties"].get("Role")
        if not (isinstance(ref, dict) and "Fn::GetAtt" in ref):
            raise AssertionError(f"{name}: a role the recorder cannot read: {ref!r}")
        logical = ref["Fn::GetAtt"][0]
        role = roles.setdefault(logical, Role(logical, []))
        role.functions.append(name)
        if not role.statements:
            for policy in template["Resources"][logical]["Properties"].get("Policies", []):
                role.statements += _as_list(policy["PolicyDocument"]["Statement"])
            for arn in template["Resources"][logical]["Properties"].get("ManagedPolicyArns", []):
                raise AssertionError(f"{logical}: a managed policy ({arn!r}) the recorder cannot read")
    return list(roles.values())


# --- checking ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    service: str
    operation: str
    caller: str  # path:line (function)
    needs: tuple[Need, ...]
    function: str = ""  # a CONFINED function whose entry made the call; "": any other function


def roles_for(record: Record, roles: list[Role]) -> list[Role]:
    """The roles a call must be allowed by: the confined function's own, or every other one."""
    if record.function:
        return [r for r in roles if record.function in r.functions]
    confined = set(CONFINED.values())
    return [r for r in roles if not confined & set(r.functions)]


def check(records: Iterable[Record], roles: list[Role]) -> tuple[list[str], list[str], list[str]]:
    """(refusals, excluded, granted and not reached): each refusal names the operation, what it
    needs, the roles that deny it and where it was called; actions the roles grant that no
    record needs are listed apart (not a failure)."""
    refused, excluded, reached = [], set(), set()
    for r in records:
        path, _, rest = r.caller.partition(":")
        function = rest.partition("(")[2].rstrip(")")
        if (path, function) in EXCLUDED_CALLERS:
            excluded.add(f"{r.service}:{r.operation} at {r.caller}: {EXCLUDED_CALLERS[(path, function)]}")
            continue
        if not r.needs and (r.service, r.operation) in NO_PERMISSION:
            excluded.add(f"{r.service}:{r.operation}: {NO_PERMISSION[(r.service, r.operation)]}")
        for need in r.needs:
            reached.add(need.action.lower())
            denying = [role.name for role in roles_for(r, roles) if not role.allows(need)]
            if denying:
                refused.append(f"{r.service}:{r.operation} needs {need.text()}, denied to {', '.join(denying)}; "
                               f"called at {r.caller}")
    granted = set()
    for role in roles:
        for s in role.statements:
            if s.get("Effect") == "Allow":
                granted |= {str(a) for a in _as_list(s.get("Action", []))}
    unreached = sorted(a for a in granted
                       if not any(fnmatch.fnmatch(action, a.lower()) for action in reached))
    return sorted(set(refused)), sorted(excluded), unreached


# --- recording --------------------------------------------------------------------------------

_LOCK = threading.Lock()
_RECORDS: dict[tuple, int] = {}


def _on_call(model: Any, params: dict, **_: Any) -> None:
    caller = product_caller(sys._getframe(1))
    if caller is None:
        return
    service_model = model.service_model
    service = service_model.signing_name or service_model.endpoint_prefix
    try:
        needed = needs(service, model.name, params)
    except Exception as e:  # noqa: BLE001 - a parameter shape the mapping misreads is a finding, not a crash
        needed = (Need(f"{service}:{model.name}", f"unreadable parameters: {e!r}"),)
    frame = sys._getframe(1)
    key = (service, model.name, f"{caller[0]}:{caller[1]} ({caller[2]})", needed, confined_function(frame))
    with _LOCK:
        _RECORDS[key] = _RECORDS.get(key, 0) + 1


def install() -> None:
    """Hook every botocore client made from now on, in this process."""
    global _LIBRARIES
    import botocore.session

    if getattr(botocore.session.Session.create_client, "_vamp_recorded", False):
        return
    _LIBRARIES = _library_dirs()
    original = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-parameter-build", _on_call)
        return client

    create_client._vamp_recorded = True  # type: ignore[attr-defined]
    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def _dump() -> list[dict]:
    with _LOCK:
        items = list(_RECORDS.items())
    return [{"service": s, "operation": o, "caller": c, "count": n, "function": f,
             "needs": [{"action": x.action, "resource": x.resource, "context": dict(x.context)} for x in needed]}
            for (s, o, c, needed, f), n in items]


def _load(rows: Iterable[dict]) -> dict[Record, int]:
    merged: dict[Record, int] = {}
    for row in rows:
        record = Record(row["service"], row["operation"], row["caller"],
                        tuple(Need(n["action"], n["resource"], tuple(sorted(n["context"].items())))
                              for n in row["needs"]), row.get("function", ""))
        merged[record] = merged.get(record, 0) + row["count"]
    return merged


# --- the plugin -------------------------------------------------------------------------------

install()  # at import (tests/conftest.py): before any test or fixture makes a client


def pytest_configure(config):
    if hasattr(config, "workerinput"):  # an xdist worker: the controller named the directory
        config._aws_calls_dir = Path(config.workerinput[DIR_KEY])
        return
    import tempfile

    config._aws_calls_dir = Path(tempfile.mkdtemp(prefix="vamp-aws-calls-"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):  # xdist's hook, in the controller, for each worker it starts
    node.workerinput[DIR_KEY] = str(node.config._aws_calls_dir)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    config = session.config
    run_dir: Path = config._aws_calls_dir
    worker = getattr(config, "workerinput", None)
    name = worker["workerid"] if worker else "main"
    (run_dir / f"{name}.json").write_text(json.dumps(_dump()))
    if worker:
        return  # the controller merges
    merged = _load(row for path in sorted(run_dir.glob("*.json")) for row in json.loads(path.read_text()))
    for path in run_dir.glob("*.json"):
        path.unlink()
    run_dir.rmdir()
    roles = deployed_roles()
    refused, excluded, unreached = check(merged, roles)
    OUTPUT.write_text(json.dumps({
        "roles": {r.name: r.functions for r in roles},
        "calls": [{"service": r.service, "operation": r.operation, "caller": r.caller, "count": n,
                   "needs": [x.text() for x in r.needs]} for r, n in sorted(merged.items(), key=lambda i: (
                       i[0].service, i[0].operation, i[0].caller))],
        "operations": sorted({f"{r.service}:{r.operation}" for r in merged}),
        "refused": refused, "excluded": excluded, "granted_not_reached": unreached,
    }, indent=1) + "\n")
    config._aws_calls_result = (merged, refused, unreached)
    if refused and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    result = getattr(config, "_aws_calls_result", None)
    if result is None:
        return
    merged, refused, unreached = result
    operations = {(r.service, r.operation) for r in merged}
    tr = terminalreporter
    if refused:
        tr.section("AWS calls the deployed policies do not allow", red=True)
        for line in refused:
            tr.line(line, red=True)
    tr.line(f"aws calls: {len(operations)} operations from product code ({sum(merged.values())} calls), "
            f"{len(refused)} not allowed, {len(unreached)} granted actions not reached; "
            f"{OUTPUT.relative_to(ROOT)}")
