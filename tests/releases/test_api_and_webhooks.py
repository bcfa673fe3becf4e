"""The release API's validation, references and conflicts; webhooks gating steps."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chalicelib.releases import webhooks
from chalicelib.releases.model import Phase, ReleaseState, Snapshot
from chalicelib.releases.plan import Plan, Webhook

from .conftest import CANARY, STABLE, finished, make_gateway, policy, release, run_until, weights


@pytest.fixture()
def hook_server():
    """A tiny webhook receiver on 127.0.0.1: /ok answers 200, /no 503; bodies are recorded."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, body))
            self.send_response(200 if self.path.startswith("/ok") else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_webhooks_gate_steps(api, sfn, traffic, hook_server):
    url, received = hook_server
    make_gateway(api)
    hooks = [{"name": "ready", "type": "before_rollout", "url": f"{url}/ok/ready"},
             {"name": "more", "type": "before_increase", "url": f"{url}/ok/more", "metadata": {"team": "shop"}},
             {"name": "ship", "type": "before_promotion", "url": f"{url}/no/ship"},
             {"name": "told", "type": "on_rollback", "url": f"{url}/no/told"}]
    assert api.post("/api/v1/releases", release(webhooks=hooks, failures=2)).status_code == 202
    status = run_until(api, "r1", traffic, finished)
    assert status["phase"] == "rolled_back", status  # the promotion was refused twice
    assert weights(api) == {STABLE: 100, CANARY: 0}
    paths = [p for p, _ in received]
    assert paths[:2] == ["/ok/ready", "/ok/more"] and paths.count("/no/ship") == 2 and paths[-1] == "/no/told"
    body = dict(received)["/ok/more"]
    assert body["name"] == "r1" and body["namespace"] == "default" and body["phase"] == "confirm-traffic-increase"
    assert body["metadata"]["team"] == "shop" and body["metadata"]["canary"] == CANARY and body["checksum"]
    refused = [c for c in status["checks"] if c["verdict"] == "fail"]
    # What the hook answered stays in the control plane's log: a release is no port scanner.
    assert all(c["reason"] == "webhook ship: failed" for c in refused), refused


def test_webhook_client_refuses_other_schemes_and_times_out(hook_server):
    url, _ = hook_server
    plan = Plan(weights=[50], interval=1, failures=1, minimum_requests=1, inconclusive_limit=1)
    state = ReleaseState(id="x", name="r", namespace="n", spec={}, plan=plan, gateway="g", stable="a", canary="b",
                         snapshot=Snapshot(stable={}, canary={}, pool=100), phase=Phase.PROGRESSING, since="t", started="t")
    assert not webhooks.call(Webhook("f", "before_rollout", "file:///etc/passwd", 1), {}).ok
    assert not webhooks.call(Webhook("g", "before_rollout", "gopher://127.0.0.1:1/", 1), {}).ok
    dead = webhooks.call(Webhook("d", "before_rollout", "http://127.0.0.1:9/", 1), {})
    assert not dead.ok and dead.status is None
    [ok] = webhooks.run([Webhook("o", "before_rollout", f"{url}/ok", 2)], state)
    assert ok.ok and ok.status == 200


def test_release_validation_and_validate_only(api, sfn):
    make_gateway(api)
    bad = api.post("/api/v1/releases", {"name": "r", "gateway": "shop", "stable": STABLE, "canary": STABLE,
                                        "policy": {"steps": ["50%", "20%"], "webhooks": [
                                            {"name": "x", "type": "before_rollout", "url": "ftp://x"}]}})
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json["errors"]} == {"policy.webhooks[0].url"}, bad.json
    bad = api.post("/api/v1/releases", {"name": "r", "gateway": "shop", "stable": STABLE, "canary": STABLE,
                                        "policy": {"steps": ["50%", "20%"]}})
    assert bad.status_code == 400 and {e["path"] for e in bad.json["errors"]} == {"policy.steps"}, bad.json
    bad = api.post("/api/v1/releases", {**release(), "canary": STABLE})
    assert bad.status_code == 400 and {e["path"] for e in bad.json["errors"]} == {"canary"}, bad.json
    missing = api.post("/api/v1/releases", {**release(), "canary": "shop/v3/web"})
    assert missing.status_code == 400 and missing.json["errors"][0]["path"] == "canary"
    nogw = api.post("/api/v1/releases", {**release(), "gateway": "nope"})
    assert nogw.status_code == 404
    dry = api.post("/api/v1/releases?validate_only=true", release())
    assert dry.status_code == 200 and dry.json["phase"] == "progressing"
    assert api.get("/api/v1/releases/r1").status_code == 404
    assert api.get("/api/v1/releases").json == []


def test_policy_by_reference_yaml_and_one_release_per_gateway(api, sfn):
    make_gateway(api)
    r = api.post("/api/v1/release-policies", yaml_body="name: slow\nsteps: {step: 25%, maximum: 50%}\ninterval: 30s\n")
    assert r.status_code == 201, r.body
    assert api.get("/api/v1/release-policies/slow").json["steps"] == {"step": "25%", "maximum": "50%"}
    unknown = api.post("/api/v1/releases", {**release(), "policy": "nope"})
    assert unknown.status_code == 400 and unknown.json["errors"][0]["path"] == "policy"
    started = api.post("/api/v1/releases", yaml_body=(
        f"name: r1\nkind: releases\ngateway: shop\nstable: {STABLE}\ncanary: {CANARY}\npolicy: slow\n"),
        headers={"Accept": "application/x-yaml"})
    assert started.status_code == 202 and started.yaml["weights"] == [25, 50], started.body
    again = api.post("/api/v1/releases", {**release(), "policy": {"ref": "slow"}})
    assert again.status_code == 409
    other = api.post("/api/v1/releases", {**release(name="r2"), "policy": "slow"})
    assert other.status_code == 409 and other.json["errors"][0]["path"] == "gateway"
    assert [x["name"] for x in api.get("/api/v1/releases").json] == ["r1"]
    assert api.post("/api/v1/releases/r1/explode").status_code == 404
    assert api.delete("/api/v1/releases/r1").status_code == 409  # running
    # Done once the node acknowledged it: the execution (not stopped meanwhile) finishes it.
    assert api.post("/api/v1/releases/r1/promote").json["phase"] in ("promoting", "promoted")
    assert run_until(api, "r1", None, finished)["phase"] == "promoted"
    assert weights(api) == {CANARY: 100}
    assert api.delete("/api/v1/releases/r1").status_code == 204
    assert api.get("/api/v1/releases/r1").status_code == 404
    _ = policy
