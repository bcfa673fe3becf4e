"""A workflow run's token, bound to its one workflow (docs/decisions/0044), used as an attacker
would: every write a workflow has no business making is a 403 saying why, what Vamp's workflows
do works, an expired or revoked token is a 401, and nobody mints one through the API."""
from __future__ import annotations

import time

import pytest

from chalicelib.deployments import sync
from chalicelib.store.event_backend import event_store
from chalicelib.store.event_store import EventQuery
from chalicelib.store.tokens import WORKFLOW, DynamoDBTokenStore
from chalicelib.workflows import script_runs
from tests.deployments.helpers import breed
from tests.deployments.test_summaries import Driver

GATEWAY = {"name": "wg", "port": "9077/http", "routes": {"[127.0.0.1:8081]": {"weight": "100%"}}}


@pytest.fixture()
def world(api, monkeypatch):
    """Namespace default with a breed and workflow `w` (its breed `job`), a gateway, a deployment
    `shop` (on a driver that runs what it is given), and a run token of `w`."""
    driver = Driver()
    monkeypatch.setattr(sync, "driver_for", lambda namespace: driver)
    assert api.post("/api/v1/breeds", {"name": "job", "deployable": {"type": "command", "definition": "true"}}
                    ).status_code == 201
    assert api.post("/api/v1/workflows", {"name": "w", "breed": "job", "schedule": {"event": {"tags": ["go"]}}}
                    ).status_code == 202
    assert api.post("/api/v1/gateways", GATEWAY).status_code == 202
    r = api.post("/api/v1/deployments", {"name": "shop", "clusters": {"web": {"services": [
        {"breed": breed("web:1.0.0"), "scale": {"cpu": 0.5, "memory": "256MB", "instances": 1}}]}}})
    assert r.status_code in (201, 202), r.body
    token, label = script_runs.mint_run_token("default", "w", int(time.time()) + 120)
    return token, label


def _reason(r) -> str:
    assert r.status_code == 403, (r.status_code, r.body)
    return " ".join(e["reason"] for e in r.json["errors"])


FORBIDDEN = [
    ("POST", "/api/v1/breeds", {"name": "evil", "deployable": {"type": "command", "definition": "id"}}, "breeds"),
    ("PUT", "/api/v1/breeds/job", {"name": "job", "deployable": {"type": "command", "definition": "id"}}, "breeds"),
    ("PUT", "/api/v1/breed/job", {"name": "job", "deployable": {"type": "command", "definition": "id"}}, "breeds"),
    ("DELETE", "/api/v1/breeds/job", None, "breeds"),
    ("POST", "/api/v1/workflows", {"name": "w2", "breed": "job", "schedule": {"event": {"tags": ["go"]}}},
     "workflow"),
    ("PUT", "/api/v1/workflows/w", {"name": "w", "breed": "job", "schedule": {"event": {"tags": ["go"]}}},
     "its own included"),
    ("DELETE", "/api/v1/workflows/w", None, "workflow"),
    ("POST", "/api/v1/blueprints", {"name": "b", "clusters": {"c": {"services": [{"breed": "job"}]}}}, "blueprints"),
    ("POST", "/api/v1/deployments", {"name": "d2", "clusters": {}}, "deployments"),
    ("PUT", "/api/v1/deployments/shop", {"name": "shop", "clusters": {}}, "deployments"),
    ("DELETE", "/api/v1/deployments/shop", None, "deployments"),
    ("PUT", "/api/v1/deployments/shop/clusters/web/sla", {"type": "escalation_only"}, "deployments"),
    ("POST", "/api/v1", None, "POST /"),  # the multi-document root writes any kind
    ("PUT", "/api/v1", None, "PUT /"),
    ("POST", "/api/v1/gateways", {**GATEWAY, "name": "new"}, "never create or delete"),
    ("DELETE", "/api/v1/gateways/wg", None, "never create or delete"),
    ("POST", "/api/v1/releases", {"name": "r"}, "releases"),
    ("POST", "/api/v1/slas", {"name": "s", "type": "escalation_only"}, "a run may only"),
    ("PUT", "/api/v1/workflows/other/status", "suspended", "its own workflow's status only"),
    ("POST", "/api/v1/tokens", {"name": "more", "role": "reader"}, "tokens permission"),
    ("GET", "/api/v1/tokens", None, "tokens permission"),
    ("DELETE", "/api/v1/tokens/tests", None, "tokens permission"),
    ("PUT", "/api/v1/vga/nodes/n1", {"generation": 1}, "report permission"),
    ("GET", "/other/api/v1/deployments", None, "namespace other"),
    ("POST", "/other/api/v1/events", {"tags": ["x"], "value": 1}, "namespace other"),
    ("PUT", "/other/api/v1/gateways/wg", GATEWAY, "namespace other"),
    ("POST", "/api/v1/events", {"tags": ["gateways:wg", "metrics:rate"], "type": "metrics", "value": 1},
     "agent tokens only"),
]


@pytest.mark.parametrize("method,path,body,why", FORBIDDEN, ids=[f"{m} {p}" for m, p, _, _ in FORBIDDEN])
def test_a_run_token_is_refused_what_a_workflow_may_not_do_with_the_reason(api, world, method, path, body, why):
    token, _ = world
    assert why in _reason(api.request(method, path, body, token=token))


def test_nothing_refused_was_written(api, world):
    token, _ = world
    for method, path, body, _ in FORBIDDEN:
        api.request(method, path, body, token=token)
    assert api.get("/api/v1/breeds/job").json["deployable"]["definition"] == "true"
    assert api.get("/api/v1/breeds/evil").status_code == 404
    assert api.get("/api/v1/workflows/w2").status_code == 404
    assert api.get("/api/v1/gateways/new").status_code == 404
    assert api.get("/api/v1/gateways/wg").status_code == 200
    assert api.get("/api/v1/deployments/shop").status_code == 200
    assert not [t for t in DynamoDBTokenStore().list() if t.name == "more"]


def test_a_put_of_a_gateway_that_does_not_exist_is_refused_a_run_never_creates_one(api, world):
    token, _ = world
    assert "existing gateways only" in _reason(api.put("/api/v1/gateways/fresh", {**GATEWAY, "name": "fresh"},
                                                       token=token))
    assert api.get("/api/v1/gateways/fresh").status_code == 404


def test_what_vamps_workflows_do_works(api, world):
    token, label = world
    assert api.get("/api/v1/deployments", token=token).status_code == 200
    assert api.get("/api/v1/workflows/w", token=token).status_code == 200
    assert api.get("/api/v1/events", token=token).status_code == 200
    # a canary step: the gateway's weights
    r = api.put("/api/v1/gateways/wg", {**GATEWAY, "routes": {"[127.0.0.1:8081]": {"weight": "60%"},
                                                               "[127.0.0.1:8082]": {"weight": "40%"}}}, token=token)
    assert r.status_code == 202, r.body
    assert api.get("/api/v1/gateways/wg").json["routes"]["[127.0.0.1:8082]"]["weight"] == "40%"
    r = api.put("/api/v1/deployments/shop/clusters/web/services/web:1.0.0/scale",
                {"cpu": 0.5, "memory": "256MB", "instances": 3}, token=token)
    assert r.status_code in (200, 202), r.body
    assert api.get("/api/v1/deployments/shop/clusters/web/services/web:1.0.0/scale").json["instances"] == 3
    assert api.post("/api/v1/events", {"tags": ["sla:escalate", "deployments:shop", "clusters:web"], "value": 1},
                    token=token).status_code == 201
    r = api.put("/api/v1/workflows/w/status", "suspended", token=token)  # its own: e.g. a canary that is done
    assert r.status_code == 202, r.body
    [posted] = event_store().query("default", EventQuery(tags=["sla:escalate"], per_page=10)).items
    assert posted["posted_by"]["workflow"] == "w" and posted["posted_by"]["name"] == label
    assert posted["posted_by"]["role"] == WORKFLOW and posted["posted_by"]["chain"] == ["w"]


def test_an_expired_or_revoked_run_token_is_a_401(api, world):
    token, label = world
    expired, _ = script_runs.mint_run_token("default", "w", int(time.time()) - 1)
    assert api.get("/api/v1/deployments", token=expired).status_code == 401
    assert api.get("/api/v1/deployments", token=token).status_code == 200
    DynamoDBTokenStore().revoke(label)
    from chalicelib.api import auth

    auth.VERIFIED.forget()  # the revoking process's own cache (another stops within 2 s)
    assert api.get("/api/v1/deployments", token=token).status_code == 401


def test_a_daemons_token_does_not_expire(api, world):
    token, label = script_runs.mint_run_token("default", "w", None)
    assert DynamoDBTokenStore().named(label).expires_at is None
    assert api.get("/api/v1/deployments", token=token).status_code == 200
    assert "breeds" in _reason(api.post("/api/v1/breeds", {"name": "e", "deployable": "x"}, token=token))


def test_no_one_mints_a_workflow_token_through_the_api(api, world):
    r = api.post("/api/v1/tokens", {"name": "wide", "role": WORKFLOW, "namespaces": ["default"]})
    assert "never through the API" in _reason(r)
    r = api.post("/api/v1/tokens", {"name": "wide", "role": WORKFLOW, "namespaces": ["default"], "workflow": "w"})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "workflow"  # unknown field
    assert not [t for t in DynamoDBTokenStore().list() if t.name == "wide"]
    # an admin sees and revokes run tokens: bound to their workflow, expiring
    [listed] = [t for t in api.get("/api/v1/tokens").json if t["name"] == world[1]]
    assert listed["role"] == WORKFLOW and listed["workflow"] == "w" and listed["expires_at"] > time.time()
    assert api.delete(f"/api/v1/tokens/{world[1]}").status_code == 204


def test_the_store_keeps_a_workflow_token_to_one_workflow_of_one_namespace(aws):
    from chalicelib.errors import ValidationFailed

    tokens = DynamoDBTokenStore()
    with pytest.raises(ValidationFailed, match="workflow"):
        tokens.create("a", role=WORKFLOW, namespaces=["default"])
    with pytest.raises(ValidationFailed, match="namespace"):
        tokens.create("b", role=WORKFLOW, namespaces=["*"], workflow="w")
    with pytest.raises(ValidationFailed, match="namespace"):
        tokens.create("c", role=WORKFLOW, namespaces=["a", "b"], workflow="w")
    with pytest.raises(ValidationFailed, match="workflow"):
        tokens.create("d", role="operator", namespaces=["default"], workflow="w")
    assert tokens.list() == []


def test_a_run_tokens_events_never_trigger_a_workflow_of_its_chain(api, world, monkeypatch):
    """A script listening for `go` that posts `go` through the API with its run's token does not
    run itself again (before 0044 each post ran it anew, in the posting request): the event
    carries the run's chain, and another listener sees the chain behind it."""
    from chalicelib import drivers
    from chalicelib.drivers.base import JobResult

    class Posting:
        name, calls = "posting", 0

        def run_job(self, namespace, spec, timeout):
            Posting.calls += 1
            if Posting.calls <= 3:  # bounded, so that a regression fails rather than recursing
                r = api.post("/api/v1/events", {"tags": ["go", "again"], "value": 1}, token=spec.env["VAMP_API_TOKEN"])
                assert r.status_code == 201, r.body
            return JobResult("succeeded", 0, ())

    monkeypatch.setattr(script_runs, "driver_for", lambda namespace: drivers.Guarded(Posting()))
    assert api.post("/api/v1/workflows", {"name": "after", "breed": "allocation",
                                          "schedule": {"event": {"tags": ["again"]}}}).status_code == 202
    assert api.post("/api/v1/events", {"tags": ["go"], "value": 0}).status_code == 201
    assert Posting.calls == 1
    started = event_store().query("default", EventQuery(tags=["workflows:w", "started"], per_page=5)).items
    assert len(started) == 1
    [after] = event_store().query("default", EventQuery(tags=["workflows:after", "started"], per_page=5)).items
    assert after["value"]["trigger"]["origin"] == ["w"]
