"""Finding 11 of issue 10, from the attacker's side: secrets kept in the history. A reader of
the event store (archive events live 30 days after the artifact is gone) or of an error message
must never see an environment value or a webhook's credentials; secret references
(`${ssm:...}`, `${secretsmanager:...}`) are kept, they are names."""
from __future__ import annotations

import json

import pytest

from chalicelib.gateways import egress

PASSWORD = "hunter2"


def everything(api) -> str:
    """Every event of the namespace, as one text (what a reader of the history can see)."""
    r = api.get("/api/v1/events?tag=archive&per_page=1000")
    assert r.status_code == 200, r.body
    return json.dumps(r.json)


def breed(env_key: str = "environment_variables", **env) -> dict:
    return {"name": "db-client:1", "deployable": {"type": "command", "definition": "run"},
            env_key: {"DB_PASSWORD": PASSWORD, **env}}


def test_a_breeds_environment_never_reaches_its_archive_events(api):
    created = api.post("/api/v1/breeds", breed(API_KEY="${ssm:/shop/api-key}", DB_URL="pg://u:${ssm:/shop/db}@db/x"))
    assert created.status_code == 201, created.body
    assert api.put("/api/v1/breeds/db-client:1", breed("env", EXTRA="hunter3")).status_code == 200
    assert api.delete("/api/v1/breeds/db-client:1").status_code == 204
    history = everything(api)
    assert history.count("archive:") >= 3
    assert PASSWORD not in history and "hunter3" not in history
    assert "${ssm:/shop/api-key}" in history and "<redacted>" in history  # the reference, not the value


def test_inline_breeds_services_clusters_and_dialects_are_redacted_in_a_blueprints_archive(api):
    blueprint = {"name": "shop", "environment_variables": {"web.DB_PASSWORD": PASSWORD},
                 "clusters": {"web": {"services": [{
                     "breed": breed(), "environment_variables": {"DB_PASSWORD": "s3rv1ce-pw"},
                     "dialects": {"kubernetes": {"containers": [{"name": "x", "env": [
                         {"name": "TOKEN", "value": "d1al3ct-t0ken"}]}]}}}]}}}
    r = api.post("/api/v1/blueprints", blueprint)
    assert r.status_code == 201, r.body
    history = everything(api)
    assert "blueprints:shop" in history
    for secret in (PASSWORD, "s3rv1ce-pw", "d1al3ct-t0ken"):
        assert secret not in history


def test_webhook_credentials_never_reach_the_archive(api, monkeypatch):
    monkeypatch.setattr(egress, "resolver", lambda name: ["93.184.216.34"])  # no DNS from tests
    policy = {"name": "gated", "steps": ["50%"], "webhooks": [{
        "name": "ci", "type": "before_rollout", "url": "https://ci:t0psecret@hooks.example.com/gate?token=abc123def",
        "metadata": {"team": "shop", "api_token": "m3tadata-t0ken"}}]}
    assert api.post("/api/v1/release-policies", policy).status_code == 201
    history = everything(api)
    assert "hooks.example.com/gate" in history
    for secret in ("t0psecret", "abc123def", "m3tadata-t0ken"):
        assert secret not in history


@pytest.mark.parametrize("body", [
    breed("environment"),                                   # not Vamp's field: unknown
    breed(DB_PASSWORD=[PASSWORD]),                          # not a string
    breed(DB_PASSWORD={"value": PASSWORD}),
    breed(DB_PASSWORD=f"pa$$w0rd${PASSWORD}.x.y"),          # looks like a reference
    breed(DB_PASSWORD=f"${{ssm:{PASSWORD} x}}"),            # a malformed secret reference
    breed(DB_PASSWORD=f"${{{PASSWORD}.nope.x}}"),
])
def test_error_messages_never_repeat_an_environment_value(api, body):
    r = api.post("/api/v1/breeds", body)
    assert r.status_code == 400, r.body
    assert PASSWORD not in r.body.decode(), r.body
    assert api.get("/api/v1/events?tag=archive").json == []


def test_error_messages_never_repeat_a_webhooks_credentials(api):
    hooks = [{"name": "x", "type": "before_rollout", "url": "ftp://ci:t0psecret@hooks.example.com/?token=abc123def"}]
    for path, body in (("/api/v1/release-policies", {"name": "p", "steps": ["50%"], "webhooks": hooks}),
                       ("/api/v1/releases", {"name": "r", "gateway": "shop", "stable": "a/b", "canary": "a/c",
                                             "policy": {"steps": ["50%"], "webhooks": hooks}})):
        r = api.post(path, body)
        assert r.status_code == 400, r.body
        assert "t0psecret" not in r.body.decode() and "abc123def" not in r.body.decode(), r.body
