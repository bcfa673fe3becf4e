"""Step Functions locally: moto's interpreter runs infra/release.asl.json, and the Lambda task
invocations it makes are delivered to app.py's lambda functions in this process; so are the
control plane's own invocations of the gateway publisher (kv/aws_lambda.py), as on AWS.

moto cannot run Lambda code without Docker; its `use_docker: false` backend only echoes the
payload. `install()` replaces that backend's `invoke` with a dispatch by function name (an ARN,
`vamp-dev-release_analyse` or `release_analyse` all name app.py's `release_analyse`). The
interpreter reaches Lambda through boto3 at localhost:$MOTO_PORT, so MOTO_PORT must be the
embedded server's port. Wait states really wait: keep intervals short in tests.

Tests and the bench observe and break deliveries through `invocations` and `interceptors`.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import traceback
import urllib.request
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

log = logging.getLogger("vamp.local.stepfunctions")

ROOT = Path(__file__).resolve().parent.parent
ASL = ROOT / "infra" / "release.asl.json"
MACHINE_NAME = "vamp-release"
ROLE_ARN = "arn:aws:iam::123456789012:role/vamp-release"  # moto does not check it
# The ASL's ${...} placeholders -> the lambda functions of app.py (on AWS: DefinitionSubstitutions).
FUNCTIONS = {
    "ReleaseAnalyse": "release_analyse",
    "ReleaseSetWeight": "release_set_weight",
    "ReleaseGate": "release_gate",
    "ReleasePromote": "release_promote",
    "ReleaseRollback": "release_rollback",
}

invocations: Counter = Counter()  # function name -> deliveries
# Each interceptor wraps a delivery: interceptor(name, event, proceed) -> result; proceed(event) runs the handler.
interceptors: list[Callable[[str, dict, Callable[[dict], Any]], Any]] = []
_lock = threading.Lock()
_installed = False


def _functions() -> dict[str, Callable]:
    import app

    return {f.name: f for f in app.app.pure_lambda_functions}


def function_of(name_or_arn: str) -> str:
    """`arn:aws:lambda:r:a:function:vamp-dev-release_analyse[:qualifier]` -> `release_analyse`;
    the same for every lambda function of app.py (the gateway publisher's `vamp-local-gateway_publish`:
    docs/decisions/0036)."""
    name = name_or_arn
    if name.startswith("arn:"):
        name = name.split(":function:", 1)[-1].split(":", 1)[0]
    for known in (*FUNCTIONS.values(), *sorted(_functions(), key=len, reverse=True)):
        if name == known or name.endswith("-" + known):
            return known
    return name


def deliver(name: str, event: dict) -> Any:
    functions = _functions()
    if name not in functions:
        raise LookupError(f"no lambda function {name!r} in app.py")
    with _lock:
        invocations[name] += 1

    def run(e: dict, i: int = 0) -> Any:
        if i < len(interceptors):
            return interceptors[i](name, e, lambda e2: run(e2, i + 1))
        return functions[name](e, SimpleNamespace(function_name=name, aws_request_id="local"))

    return run(event)


def install() -> None:
    """Patch moto's lambda-simple backend (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        from moto.awslambda_simple.models import LambdaSimpleBackend

        def invoke(self, function_name, qualifier, body, headers, response_headers):
            name = function_of(function_name)
            try:
                event = json.loads(body) if body else {}
                result = deliver(name, event)
                return json.dumps(result).encode()
            except Exception as e:  # as Lambda reports an unhandled error
                log.info("lambda %s raised %s: %s", name, type(e).__name__, e)
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(e).__name__, "errorMessage": str(e),
                                   "stackTrace": traceback.format_exc().splitlines()[-5:]}).encode()

        LambdaSimpleBackend.invoke = invoke
        _snapshot_without_executions()
        _installed = True


def _snapshot_without_executions() -> None:
    """moto deep-copies the state machine on every StartExecution, running executions (threads,
    locks) included, which fails once one exists. The copy an execution keeps needs none of them."""
    import copy

    from moto.stepfunctions.models import StateMachineInstance

    def snapshot(self, memo):
        clone = copy.copy(self)
        clone.executions = []
        return clone

    StateMachineInstance.__deepcopy__ = snapshot


def configure(endpoint: str) -> None:
    """Turn on ASL execution and the Docker-less Lambda backend in moto's server."""
    body = json.dumps({"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}).encode()
    request = urllib.request.Request(f"{endpoint}/moto-api/config", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def definition() -> str:
    text = ASL.read_text()
    return re.sub(r"\$\{(\w+)\}", lambda m: FUNCTIONS[m.group(1)], text)


def create_machine(client=None) -> str:
    """Create (or update) the release state machine; returns its ARN."""
    if client is None:
        from chalicelib import aws

        client = aws.client("stepfunctions")
    for machine in client.list_state_machines().get("stateMachines", []):
        if machine["name"] == MACHINE_NAME:
            client.update_state_machine(stateMachineArn=machine["stateMachineArn"], definition=definition())
            return machine["stateMachineArn"]
    return client.create_state_machine(name=MACHINE_NAME, definition=definition(), roleArn=ROLE_ARN,
                                       type="STANDARD")["stateMachineArn"]


def setup(endpoint: str) -> str:
    """Everything at once (the local stack, tests, the bench): returns the state machine's ARN and
    points the project at it (VAMP_RELEASE_STATE_MACHINE)."""
    port = endpoint.rsplit(":", 1)[-1].strip("/")
    os.environ["MOTO_PORT"] = port
    install()
    configure(endpoint)
    arn = create_machine()
    os.environ["VAMP_RELEASE_STATE_MACHINE"] = arn
    from chalicelib.settings import settings

    settings.cache_clear()
    return arn
