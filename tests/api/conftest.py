from __future__ import annotations

import json

import pytest
import yaml


class Api:
    """chalice's test client (the whole app: middleware, routing) with a token and helpers."""

    def __init__(self, client, token: str):
        self.client, self.token = client, token

    def request(self, method: str, path: str, body=None, *, yaml_body: str | None = None, token: str | None = "default",
                headers: dict | None = None):
        h = {}
        if token:
            h["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        raw = b""
        if yaml_body is not None:
            h["Content-Type"] = "application/x-yaml"
            raw = yaml_body.encode()
        elif body is not None:
            h["Content-Type"] = "application/json"
            raw = json.dumps(body).encode()
        h.update(headers or {})
        response = self.client.http.request(method, path, headers=h, body=raw)
        response.json = json.loads(response.body) if response.body and response.headers.get(
            "Content-Type", "").startswith("application/json") else None
        response.yaml = yaml.safe_load(response.body) if response.headers.get(
            "Content-Type", "").startswith("application/x-yaml") else None
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)


@pytest.fixture()
def api(aws):
    from chalice.test import Client

    import app
    from chalicelib.store.tokens import DynamoDBTokenStore

    token, _ = DynamoDBTokenStore().create("tests")
    with Client(app.app) as client:
        yield Api(client, token)
