"""Lambda cold start: `import app` plus the first request, against the floor no boto3 Lambda
can go below (`import boto3` plus creating a DynamoDB client), each in a fresh interpreter.

The API handler is measured as deployed: API Gateway's token authorizer (its own small Lambda,
verdict cached 60 s) has already put the principal in the request context. The authorizer's own
cold start is measured too."""
from __future__ import annotations

import compileall
import json
import os
import statistics
import subprocess
import sys

from bench.common import ROOT, local_aws, verdict

GOAL = 1.3
RUNS = 9

FLOOR = """
import time; t = time.perf_counter()
import boto3
boto3.client("dynamodb")
print(time.perf_counter() - t)
"""

APP = """
import json, os, sys, time; t = time.perf_counter()
import app
method, path, resource, params, body = json.loads(os.environ["BENCH_REQUEST"])
event = {
    "resource": resource, "path": path, "httpMethod": method,
    "headers": {"Authorization": "Bearer " + os.environ["BENCH_TOKEN"], "Content-Type": "application/json",
                "Accept": "application/json"},
    "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": params, "stageVariables": None, "body": body, "isBase64Encoded": False,
    "requestContext": {"resourcePath": resource, "httpMethod": method, "path": "/api" + path,
                       "stage": "api", "identity": {"sourceIp": "127.0.0.1"}, "requestId": "bench",
                       "authorizer": {"principalId": "bench"}},
}
response = app.app(event, None)
assert response["statusCode"] in (200, 201), response
print(time.perf_counter() - t)
"""

AUTHORIZER = """
import os, time; t = time.perf_counter()
import app
event = {"type": "TOKEN", "authorizationToken": "Bearer " + os.environ["BENCH_TOKEN"],
         "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef/api/GET/api/v1/info"}
policy = app.vamp_token(event, None)
assert policy["principalId"] == "bench", policy
print(time.perf_counter() - t)
"""


def _run(code: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def main() -> bool:
    with local_aws("vamp-bench-cold") as (endpoint, token):
        from chalicelib.store.artifact_store import Write
        from chalicelib.store.dynamodb_artifacts import DynamoDBArtifactStore

        breed = {"kind": "breeds", "name": "sava:1.0.0", "ports": {"webport": "8080/http"},
                 "deployable": {"type": "container/docker", "definition": "magneticio/sava:1.0.0"}}
        DynamoDBArtifactStore().apply("default", [Write("breeds", breed["name"], breed, expected_version=None)])
        # Lambda's /var/task is read-only: the bundle must carry compiled bytecode (`make package`
        # compiles it), so measure with it, as boto3 is measured with its own.
        compileall.compile_file(str(ROOT / "app.py"), quiet=1)
        compileall.compile_dir(str(ROOT / "chalicelib"), quiet=1)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(AWS_ENDPOINT_URL=endpoint, BENCH_TOKEN=token)
        requests = {
            "GET a breed": ("GET", "/api/v1/breeds/sava:1.0.0", "/api/v1/{kind}/{name}",
                            {"kind": "breeds", "name": "sava:1.0.0"}, None),
            "POST a breed": ("POST", "/api/v1/breeds", "/api/v1/{kind}", {"kind": "breeds"},
                             json.dumps({"name": "cold-{n}", "deployable": "x/y:1", "ports": {"web": "80/http"}})),
        }
        # Warm the OS file cache once, so the first measured run is not a disk read.
        _run(FLOOR, env)
        floor, measured = [], {k: [] for k in [*requests, "authorizer"]}
        for n in range(RUNS):
            floor.append(_run(FLOOR, env))
            measured["authorizer"].append(_run(AUTHORIZER, env))
            for label, (method, path, resource, params, body) in requests.items():
                request = [method, path, resource, params, body.replace("{n}", str(n)) if body else None]
                measured[label].append(_run(APP, {**env, "BENCH_REQUEST": json.dumps(request)}))
    f = statistics.median(floor)
    print(f"\n(a) Lambda cold start, median of {RUNS} fresh interpreters each")
    print(f"    floor: import boto3 + DynamoDB client       {f * 1000:7.1f} ms")
    ok = True
    for label, samples in measured.items():
        m = statistics.median(samples)
        ratio = m / f
        headline = label == "GET a breed"
        note = {"POST a breed": "   (a write also builds the DSL models)",
                "authorizer": "   (the token authorizer's Lambda: one GetItem)"}.get(label, "")
        print(f"    import app + first request ({label:12}) {m * 1000:7.1f} ms   ratio {ratio:4.2f}"
              + (f"   goal <= {GOAL}: {verdict(ratio <= GOAL)}" if headline else note))
        if headline:
            ok = ratio <= GOAL
    return ok


if __name__ == "__main__":
    main()
