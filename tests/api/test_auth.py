"""No call succeeds without a valid token; tokens are created, listed and revoked."""
from __future__ import annotations

import pytest

from chalicelib.store import table


@pytest.mark.parametrize("path", ["/api/v1/info", "/api/v1/breeds", "/api/v1/events", "/api/v1/openapi.json",
                                  "/team-a/api/v1/breeds"])
def test_401_without_a_token(api, path):
    r = api.get(path, token=None)
    assert r.status_code == 401
    assert r.json["errors"][0]["path"] == "Authorization"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_401_with_a_wrong_token_or_scheme(api):
    assert api.get("/api/v1/info", token="vamp_not-a-real-token").status_code == 401
    r = api.client.http.get("/api/v1/info", headers={"Authorization": f"Basic {api.token}"})
    assert r.status_code == 401


def test_writes_without_a_token_write_nothing(api):
    r = api.post("/api/v1/breeds", {"name": "x", "deployable": "y"}, token=None)
    assert r.status_code == 401
    assert api.get("/api/v1/breeds").json == []


def test_tokens_are_stored_hashed_created_and_revoked(api):
    r = api.post("/api/v1/tokens", {"name": "ci", "role": "operator", "namespaces": ["default", "team-a"]})
    assert r.status_code == 201
    assert (r.json["role"], r.json["namespaces"]) == ("operator", ["default", "team-a"])
    new = r.json["token"]
    assert api.get("/api/v1/info", token=new).json["auth"] == {
        "mode": "token", "principal": "ci", "role": "operator", "namespaces": ["default", "team-a"]}
    listed = api.get("/api/v1/tokens").json
    assert [(t["name"], t["role"], t["namespaces"]) for t in listed] == [
        ("ci", "operator", ["default", "team-a"]), ("tests", "admin", ["*"])]
    assert all("token" not in t and t["created"] for t in listed)
    items = table.client().query(TableName=table.table_name(), KeyConditionExpression="pk = :p",
                                 ExpressionAttributeValues={":p": {"S": "#tokens"}})["Items"]
    assert all(new not in str(item) for item in items)  # only the hash is kept
    assert api.post("/api/v1/tokens", {"name": "ci", "role": "reader"}).status_code == 409
    assert api.delete("/api/v1/tokens/ci").status_code == 204
    assert api.get("/api/v1/info", token=new).status_code == 401
    assert api.delete("/api/v1/tokens/ci").status_code == 404


def test_token_names_are_checked(api):
    r = api.post("/api/v1/tokens", {"name": "bad name!", "role": "reader"})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "name"


def test_authorizer_function_refuses_without_a_valid_token(aws):
    """The API Gateway authorizer (used on AWS) runs the same check."""
    import app
    from chalicelib.store.tokens import DynamoDBTokenStore

    token, _ = DynamoDBTokenStore().create("gw", role="reader", namespaces=["default"])

    class Req:
        def __init__(self, t):
            self.token, self.method_arn = t, "arn:aws:execute-api:us-east-1:123:abc/api/GET/api/v1/info"

    ok = app.vamp_token.func(Req(f"Bearer {token}"))
    assert ok.principal_id == "gw"
    with pytest.raises(Exception, match="Unauthorized"):
        app.vamp_token.func(Req("Bearer nope"))


def test_iam_mode_trusts_only_api_gateways_sigv4_identity(monkeypatch):
    """VAMP_AUTH_MODE=iam (AWS only): API Gateway's IAM authorizer has verified the SigV4
    signature and put the caller in the request context; a Bearer token means nothing then.
    The caller's role is what VAMP_IAM_PRINCIPALS gives its ARN (or, for a role's session, the
    role's ARN); an ARN not there has no role, and the middleware refuses its every call."""
    import json
    from types import SimpleNamespace

    from chalicelib.api.auth import authenticate
    from chalicelib.settings import settings

    monkeypatch.setenv("VAMP_AUTH_MODE", "iam")
    monkeypatch.setenv("VAMP_IAM_PRINCIPALS", json.dumps({
        "arn:aws:iam::123456789012:user/ci": {"role": "operator", "namespaces": ["team-a"]},
        "arn:aws:iam::123456789012:role/deployer": {"role": "admin", "namespaces": ["*"]}}))
    settings.cache_clear()
    try:
        def who(arn):
            return SimpleNamespace(context={"identity": {"userArn": arn}}, headers={})

        unsigned = SimpleNamespace(context={"identity": {"sourceIp": "127.0.0.1"}},
                                   headers={"authorization": "Bearer vamp_whatever"})
        ci = authenticate(who("arn:aws:iam::123456789012:user/ci"))
        assert (ci.name, ci.role, ci.namespaces) == ("arn:aws:iam::123456789012:user/ci", "operator", ("team-a",))
        session = authenticate(who("arn:aws:sts::123456789012:assumed-role/deployer/s1"))
        assert (session.role, session.namespaces) == ("admin", ("*",))
        assert authenticate(who("arn:aws:iam::123456789012:user/someone-else")).role is None
        assert authenticate(who("arn:aws:sts::123456789012:assumed-role/other/s1")).role is None
        assert authenticate(unsigned) is None
        monkeypatch.setenv("VAMP_IAM_PRINCIPALS", "{not json")  # misconfigured: nobody is let in
        settings.cache_clear()
        assert authenticate(who("arn:aws:iam::123456789012:user/ci")).role is None
    finally:
        monkeypatch.delenv("VAMP_AUTH_MODE")
        monkeypatch.delenv("VAMP_IAM_PRINCIPALS")
        settings.cache_clear()
