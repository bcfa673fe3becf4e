"""Hostile gateways, routes, conditions and rewrites through the API: a 400 with the path, and
nothing stored."""
from __future__ import annotations

import pytest

EXT = "[127.0.0.1:8080]"


def gw(**fields):
    body = {"name": "g", "port": 9070, "routes": {EXT: {}}}
    body.update(fields)
    return body


HOSTILE_GATEWAYS = [
    gw(name="g\n    bind :1"),
    gw(name="g#x"),
    gw(name="g'x"),
    gw(routes={"[127.0.0.1:80]\nlisten x": {}}),
    gw(routes={"[127.0.0.1:80 ]": {}}),
    gw(routes={"a b": {}}),
    gw(port="9070\n"),
    gw(port="9070/udp"),
    gw(virtual_hosts=["a.com\n  bind :1"]),
    gw(virtual_hosts=["a.com b.com"]),
    gw(virtual_hosts=["a*b.com"]),  # HAProxy has no such wildcard: refused by the gateway checks
    gw(sticky="cookie"),
    gw(routes={EXT: {"balance": "roundrobin\n  server x 1.2.3.4:1"}}),
    gw(routes={EXT: {"balance": "hdr(a b)"}}),
    gw(routes={EXT: {"condition": "has header X\n  use_backend evil"}}),
    gw(routes={EXT: {"condition": "has header X # comment"}}),
    gw(routes={EXT: {"condition": "header X has 'v'"}}),
    gw(routes={EXT: {"condition": "header X has -f"}}),
    gw(routes={EXT: {"condition": "< hdr(host) -f /etc/passwd >"}}),
    gw(routes={EXT: {"condition": "< nosuchfetch x >"}}),
    gw(routes={EXT: {"condition": "< hdr(host) -m reg (.* >"}}),
    gw(routes={EXT: {"condition": "< src not-an-ip >"}}),
    gw(routes={EXT: {"condition": "< ${HOME} >"}}),
    gw(routes={EXT: {"rewrites": ["/x\nuse_backend y if true"]}}),
    gw(routes={EXT: {"rewrites": ["/%[nosuchfetch] if true"]}}),
    gw(routes={EXT: {"rewrites": ["/%{+Q}r if true"]}}),
    gw(routes={EXT: {"rewrites": ["/x if < nosuchfetch >"]}}),
    gw(routes={EXT: {"weight": "101%"}}),
]


@pytest.mark.parametrize("body", HOSTILE_GATEWAYS)
def test_hostile_gateways_get_a_400_and_nothing_is_stored(api, body):
    r = api.post("/api/v1/gateways", body)
    assert r.status_code == 400, r.body
    assert r.json["errors"] and all(e["path"] and e["reason"] for e in r.json["errors"])
    assert api.get("/api/v1/gateways?per_page=5").json == []


def test_the_error_path_names_the_route(api):
    r = api.post("/api/v1/gateways", gw(routes={EXT: {"condition": "< nosuchfetch x >"}}))
    assert r.json["errors"][0]["path"] == f"routes.{EXT}.condition"


@pytest.mark.parametrize("kind, body", [
    ("conditions", {"name": "c", "condition": "< nosuchfetch >"}),
    ("conditions", {"name": "c", "condition": "has header A\nB"}),
    ("rewrites", {"name": "r", "path": "/%[nope] if true"}),
    ("rewrites", {"name": "r", "path": "/a if < src x >"}),
    ("routes", {"name": "r", "condition": "< hdr(host) -m reg x >"}),
    ("routes", {"name": "r", "rewrites": ["/%[path,regsub(a,b)] if true"]}),
])
def test_stored_conditions_rewrites_routes_are_checked_as_well(api, kind, body):
    r = api.post(f"/api/v1/{kind}", body)
    assert r.status_code == 400, r.body
    assert api.get(f"/api/v1/{kind}/{body['name']}").status_code == 404


def test_validate_only_runs_the_gateway_checks_too(api):
    r = api.post("/api/v1/gateways?validate_only=true", gw(routes={EXT: {"condition": "< nope >"}}))
    assert r.status_code == 400
    assert api.post("/api/v1/gateways?validate_only=true", gw()).status_code == 202
