"""Roles and namespaces, from the attacker's side (issue 10, findings 5 and 12): every request
below is one a token holder should not get through, and each asserts the refusal (403 with the
reason, in Vamp's error shape), that nothing was written, and that the API still answers.
Decision 0022 has the rules; api/authorization.py is the one place they are decided."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import app
from chalicelib.api import auth, authorization
from chalicelib.store.tokens import DynamoDBTokenStore

BREED = {"name": "sava", "deployable": "magneticio/sava:1.0.0"}
METRICS = [{"tags": ["gateways:shop", "routes:shop/v2/web", f"metrics:{m}"], "type": "metrics", "value": v}
           for m, v in (("requests", 1000), ("errors", 0))]


def forbidden(r, path: str, contains: str = "") -> None:
    assert r.status_code == 403, (r.status_code, r.body)
    assert r.json["message"] == "Forbidden"
    paths = [e["path"] for e in r.json["errors"]]
    assert path in paths, r.json
    assert contains in " ".join(e["reason"] for e in r.json["errors"]), r.json


def still_alive(api) -> None:
    assert api.get("/api/v1/info").status_code == 200


# -- one place, every route ------------------------------------------------------------------

def test_every_route_of_the_app_has_a_permission_and_every_permission_a_route():
    routes = {(method, path) for path, methods in app.app.routes.items() for method in methods}
    unmapped = sorted((m, p) for m, p in routes if authorization.permission_for(m, p) is None)
    assert not unmapped, f"routes without an entry in api/authorization.PERMISSIONS (refused to all): {unmapped}"
    below = {(m, authorization.route_of(p)) for m, p in routes}
    assert set(authorization.PERMISSIONS) <= below, set(authorization.PERMISSIONS) - below  # no stale entries
    assert all(p in authorization.GRANTS[authorization.ADMIN] or p in authorization.GRANTS[authorization.AGENT]
               for p in authorization.PERMISSIONS.values())  # every permission is someone's


def test_a_route_nobody_classified_is_refused_even_to_the_bootstrap_admin(api):
    from chalice.test import Client

    ran = []
    path = "/api/v1/zz-unclassified"

    def view():
        ran.append(True)
        return {"reached": True}

    app.app.route(path, methods=["GET"])(view)
    try:
        with Client(app.app, stage_name="local") as client:
            r = type(api)(client, api.token).get(path)
    finally:
        del app.app.routes[path]
    forbidden(r, "route", "not open to any role")
    assert ran == []  # the handler never ran
    still_alive(api)


# -- roles -----------------------------------------------------------------------------------

def test_a_reader_reads_but_every_write_is_refused_and_nothing_is_written(api):
    reader = api.as_role("reader", ["default"])
    assert reader.get("/api/v1/breeds").status_code == 200
    assert reader.post("/api/v1/events/get", {"tags": ["archive"]}).status_code == 200  # a query, not a write
    attempts = [
        ("POST", "/api/v1/breeds", BREED),
        ("PUT", "/api/v1/breeds/sava", BREED),
        ("DELETE", "/api/v1/breeds/sava", None),
        ("POST", "/api/v1", [{"kind": "breeds", **BREED}]),
        ("POST", "/api/v1/gateways", {"name": "shop", "port": "9050/http", "routes": {"a": {"weight": "100%"}}}),
        ("POST", "/api/v1/deployments", {"name": "d", "clusters": {}}),
        ("POST", "/api/v1/releases", {"name": "r1"}),
        ("POST", "/api/v1/releases/r1/abort", None),
        ("POST", "/api/v1/events", {"tags": ["deployments:sava"], "value": 1}),
        ("PUT", "/api/v1/vga/nodes/n1", {"status": "applied", "sent": 1}),
        ("GET", "/api/v1/tokens", None),
        ("POST", "/api/v1/tokens", {"name": "mine", "role": "reader"}),
    ]
    for method, path, body in attempts:
        forbidden(reader.request(method, path, body), "role", "a token with role reader may not")
    assert api.get("/api/v1/breeds").json == [] and api.get("/api/v1/gateways").json == []
    assert api.get("/api/v1/events?tag=deployments").json == [] and api.get("/api/v1/vga/nodes").json["nodes"] == []
    assert "mine" not in [t["name"] for t in api.get("/api/v1/tokens").json]
    still_alive(api)


def test_an_agent_token_cannot_create_a_blueprint_or_read_the_artifacts(api):
    agent = api.as_role("agent", ["default"])
    forbidden(agent.post("/api/v1/blueprints", {"name": "b", "clusters": {"c": {"breed": BREED}}}), "role",
              "role agent may not POST /{kind}")
    forbidden(agent.post("/api/v1", [{"kind": "breeds", **BREED}]), "role")
    forbidden(agent.get("/api/v1/blueprints"), "role")
    forbidden(agent.get("/api/v1/events"), "role")
    forbidden(agent.post("/api/v1/releases/r1/approve"), "role")
    assert api.get("/api/v1/blueprints").json == [] and api.get("/api/v1/breeds").json == []
    still_alive(api)


def test_an_agent_does_what_the_agent_does_and_posts_nothing_but_telemetry(api):
    """What agent/ calls (events.py, applier.py's rejection report, acknowledger.py) and the
    configuration it may read get through; any other event is refused, the whole batch with it."""
    agent = api.as_role("agent", ["default"])
    assert agent.post("/api/v1/events", METRICS).status_code == 201
    rejected = {"tags": ["gateways", "agent"], "type": "rejected", "value": {"node": "n1", "message": "x"}}
    assert agent.post("/api/v1/events", rejected).status_code == 201
    assert agent.put("/api/v1/vga/nodes/n1", {"status": "applied", "generation": 0, "sent": 1}).status_code == 200
    # Not 403: the route is the agent's (404 because no etcd is configured here).
    assert agent.get("/api/v1/vga/haproxy/2.6/configuration").status_code == 404
    forged = [
        {"tags": ["releases:r1", "release:promoted"], "type": "release", "value": {}},  # a release's history
        {"tags": ["archive", "breeds:sava"], "type": "archive", "value": "x"},
        {"tags": ["gateways:shop", "releases:r1", "metrics:requests"], "type": "metrics", "value": 1},
    ]
    for event in forged:
        forbidden(agent.post("/api/v1/events", [METRICS[0], event]), "[1].type", "an agent token posts only telemetry")
    assert api.get("/api/v1/events?tag=releases").json == [] and api.get("/api/v1/events?tag=archive").json == []
    assert len(api.get("/api/v1/events?tag=metrics").json) == 2  # the first post only


def test_an_agent_cannot_post_metrics_or_reports_into_another_namespace(api):
    agent = api.as_role("agent", ["team-a"])
    assert agent.post("/team-a/api/v1/events", METRICS).status_code == 201
    forbidden(agent.post("/team-b/api/v1/events", METRICS), "namespace", "may not touch namespace team-b")
    forbidden(agent.post("/api/v1/events", METRICS), "namespace", "may not touch namespace default")
    forbidden(agent.put("/team-b/api/v1/vga/nodes/n1", {"status": "applied", "sent": 1}), "namespace")
    forbidden(agent.get("/team-b/api/v1/vga/haproxy/2.6/configuration"), "namespace")
    for ns in ("team-b", "default"):
        prefix = f"/{ns}" if ns != "default" else ""
        assert api.get(f"{prefix}/api/v1/events?tag=metrics").json == []
        assert api.get(f"{prefix}/api/v1/vga/nodes").json["nodes"] == []
    still_alive(api)


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_telemetry_from_a_token_that_is_not_an_agent_is_refused(api, role):
    """An operator who could post metrics would promote its own failing canary."""
    poster = api.as_role(role, ["default"])
    forbidden(poster.post("/api/v1/events", METRICS), "[0].type", "posted by agent tokens only")
    # tagged but not typed metrics: still what the judges and health read
    forbidden(poster.post("/api/v1/events", {"tags": ["metrics:errors", "gateways:shop"], "value": 0}), "type")
    forbidden(poster.post("/api/v1/events?validate_only=true", METRICS), "[0].type")
    assert api.get("/api/v1/events?tag=metrics").json == [] and api.get("/api/v1/events?type=metrics").json == []
    assert poster.post("/api/v1/events", {"tags": ["deployments:sava"], "value": 1}).status_code == 201


def test_telemetry_not_posted_by_an_agent_is_not_judged(aws):
    """Defence in depth: what reached the event store without an agent token (written around
    the API, or stored before roles existed) is not what a release is judged on."""
    from chalicelib.releases.metrics import EventMetricSource
    from chalicelib.store.event_backend import event_store
    from chalicelib.store.event_store import new_event

    route, tags = "shop/v2/web", ["gateways:shop", "routes:shop/v2/web"]
    at = "2026-01-01T00:00:05Z"
    events = [new_event(tags + ["metrics:requests"], 100, "metrics", at, posted_by={"name": "n1", "role": "agent"}),
              new_event(tags + ["metrics:errors"], 50, "metrics", at, posted_by={"name": "n1", "role": "agent"}),
              new_event(tags + ["metrics:requests"], 100_000, "metrics", at, posted_by={"name": "op", "role": "operator"}),
              new_event(tags + ["metrics:requests"], 100_000, "metrics", at)]  # no poster: from before roles
    event_store().publish("default", events)
    seen = EventMetricSource().route("default", "shop", route, "2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", 99)
    assert (seen.requests, seen.errors) == (100, 50)


# -- namespaces and the token API ------------------------------------------------------------

def test_a_namespace_admin_cannot_see_or_revoke_another_namespaces_token(api):
    a_admin = api.as_role("admin", ["team-a"], name="a-admin")
    b_token = api.mint("operator", ["team-b"], name="b-ci")
    a_ci = a_admin.post("/team-a/api/v1/tokens", {"name": "a-ci", "role": "reader"}).json["token"]
    listed = [t["name"] for t in a_admin.get("/team-a/api/v1/tokens").json]
    assert listed == ["a-admin", "a-ci"]  # neither team-b's token nor the admin of every namespace
    r = a_admin.delete("/team-a/api/v1/tokens/b-ci")
    assert r.status_code == 404 and r.json["errors"][0]["path"] == "name"
    forbidden(a_admin.delete("/team-b/api/v1/tokens/b-ci"), "namespace", "may not touch namespace team-b")
    r = a_admin.delete("/team-a/api/v1/tokens/tests")  # the admin of every namespace
    assert r.status_code == 404
    assert api.get("/team-b/api/v1/breeds", token=b_token).status_code == 200  # still works
    assert api.get("/api/v1/info").status_code == 200
    assert a_admin.delete("/team-a/api/v1/tokens/a-ci").status_code == 204  # its own: yes
    assert api.get("/team-a/api/v1/breeds", token=a_ci).status_code == 401


def test_a_scoped_token_cannot_mint_a_wider_one(api):
    a_admin = api.as_role("admin", ["team-a"])
    before = api.get("/api/v1/tokens").json
    forbidden(a_admin.post("/team-a/api/v1/tokens", {"name": "x1", "role": "admin", "namespaces": ["*"]}),
              "namespaces", "beyond this token's own namespaces: *")
    forbidden(a_admin.post("/team-a/api/v1/tokens", {"name": "x2", "role": "agent", "namespaces": ["team-a", "team-b"]}),
              "namespaces", "team-b")
    operator = api.as_role("operator", ["*"])
    forbidden(operator.post("/api/v1/tokens", {"name": "x3", "role": "admin", "namespaces": ["*"]}), "role")
    forbidden(operator.post("/api/v1/tokens", {"name": "x4", "role": "operator"}), "role")
    agent = api.as_role("agent", ["*"])
    forbidden(agent.post("/api/v1/tokens", {"name": "x5", "role": "agent"}), "role")
    after = [t["name"] for t in api.get("/api/v1/tokens").json]
    assert not {"x1", "x2", "x3", "x4", "x5"} & set(after)
    assert len(after) == len(before) + 2  # the operator's and the agent's, minted by the test itself
    # within its scope it may: a reader of its namespace, by default the namespace it is made in
    r = a_admin.post("/team-a/api/v1/tokens", {"name": "a-reader", "role": "reader"})
    assert r.status_code == 201 and (r.json["role"], r.json["namespaces"]) == ("reader", ["team-a"])
    forbidden(api.get("/team-b/api/v1/breeds", token=r.json["token"]), "namespace")


@pytest.mark.parametrize("body, path", [
    ({"name": "t", "role": "root"}, "role"),
    ({"name": "t"}, "role"),
    ({"name": "t", "role": None}, "role"),
    ({"name": "t", "role": "reader", "namespaces": ["Team_A"]}, "namespaces[0]"),
    ({"name": "t", "role": "reader", "namespaces": ["team-a", "x" * 64]}, "namespaces[1]"),
    ({"name": "t", "role": "reader", "namespaces": ["*", "team-a"]}, "namespaces"),
    ({"name": "t", "role": "reader", "namespaces": "team-a"}, "namespaces"),
    ({"name": "t", "role": "reader", "namespaces": []}, "namespaces"),
    ({"name": "t", "role": "reader", "namespaces": [f"n{i}" for i in range(101)]}, "namespaces"),
    ({"name": "t", "role": "reader", "admin": True}, "admin"),
    ({"name": "bad name!", "role": "reader"}, "name"),
    ({"role": "reader"}, "name"),
])
def test_the_token_api_answers_400_with_the_field(api, body, path):
    r = api.post("/api/v1/tokens", body)
    assert r.status_code == 400, r.body
    assert path in [e["path"] for e in r.json["errors"]], r.json
    assert [t["name"] for t in api.get("/api/v1/tokens").json] == ["tests"]  # nothing created


# -- revocation (finding 12) -----------------------------------------------------------------

def test_a_revoked_token_is_refused_once_the_cache_window_has_passed(api, monkeypatch):
    """Revoked elsewhere (another Lambda container, or the offline tool): this process asks the
    store again after VERIFIED_FOR seconds at most; the clock is injected, nobody sleeps."""
    clock = {"t": 0.0}
    monkeypatch.setattr(auth, "VERIFIED", auth.VerifiedTokens(clock=lambda: clock["t"]))
    token = api.mint("operator", ["default"], name="leaving")
    assert api.get("/api/v1/breeds", token=token).status_code == 200
    DynamoDBTokenStore().revoke("leaving")  # not through this process
    clock["t"] = auth.VERIFIED_FOR - 0.5
    assert api.get("/api/v1/breeds", token=token).status_code == 200  # the bound the decision states
    clock["t"] = auth.VERIFIED_FOR + 0.01
    assert api.get("/api/v1/breeds", token=token).status_code == 401
    assert api.post("/api/v1/breeds", BREED, token=token).status_code == 401
    assert api.get("/api/v1/breeds").json == []
    assert auth.VERIFIED_FOR <= 2.0


def test_a_token_revoked_through_the_api_is_refused_at_once_by_this_process(api):
    token = api.mint("operator", ["default"], name="leaving")
    assert api.get("/api/v1/breeds", token=token).status_code == 200  # now in the cache
    assert api.delete("/api/v1/tokens/leaving").status_code == 204
    assert api.get("/api/v1/breeds", token=token).status_code == 401


def test_the_middleware_never_trusts_the_authorizers_cached_verdict(api):
    """API Gateway's authorizer context (principalId, cached up to its TTL) is not a credential:
    without a token the store knows now, the request is refused, and role and namespaces are
    the store's, whatever the context says."""
    revoked = SimpleNamespace(method="GET", uri_params={}, headers={"authorization": "Bearer vamp_revoked-long-ago"},
                              context={"resourcePath": "/api/v1/{kind}", "authorizer": {"principalId": "tests"}})
    status, body, _ = auth.refusal(revoked)
    assert status == 401 and body["errors"][0]["path"] == "Authorization"
    reader = api.mint("reader", ["default"])
    claims_admin = SimpleNamespace(method="POST", uri_params={}, headers={"authorization": f"Bearer {reader}"},
                                   context={"resourcePath": "/api/v1/{kind}",
                                            "authorizer": {"principalId": "tests", "role": "admin"}})
    status, body, _ = auth.refusal(claims_admin)
    assert status == 403 and body["errors"][0]["path"] == "role"


def test_the_authorizer_caches_its_verdict_for_seconds_not_a_minute():
    assert app.AUTHORIZER_TTL <= 5
    assert app.vamp_token.config.ttl_seconds == app.AUTHORIZER_TTL


def test_an_iam_principal_without_a_mapped_role_is_refused(monkeypatch):
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_AUTH_MODE", "iam")
    monkeypatch.setenv("VAMP_IAM_PRINCIPALS", '{"arn:aws:iam::123456789012:role/ci": '
                                              '{"role": "reader", "namespaces": ["team-a"]}}')
    settings.cache_clear()
    try:
        def call(arn, method="GET", ns=None):
            return auth.refusal(SimpleNamespace(method=method, headers={}, uri_params={"namespace": ns} if ns else {},
                                                context={"identity": {"userArn": arn},
                                                         "resourcePath": "/{namespace}/api/v1/{kind}"}))

        status, body, _ = call("arn:aws:iam::123456789012:user/intruder", ns="team-a")
        assert status == 403 and "has no Vamp role" in body["errors"][0]["reason"]
        assert call("arn:aws:sts::123456789012:assumed-role/ci/session", ns="team-a") is None
        assert call("arn:aws:sts::123456789012:assumed-role/ci/session", "POST", ns="team-a")[0] == 403
        assert call("arn:aws:sts::123456789012:assumed-role/ci/session", ns="team-b")[0] == 403
    finally:
        monkeypatch.delenv("VAMP_AUTH_MODE")
        monkeypatch.delenv("VAMP_IAM_PRINCIPALS")
        settings.cache_clear()
