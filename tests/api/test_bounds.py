"""Issue 10, findings 7, 8, 9 and 10, from the attacker's side: each hostile request through the
whole API gets a 400 naming the field and the reason, nothing is written (both tables scanned
before and after), and the server answers the next request (docs/decisions/0024)."""
from __future__ import annotations

import json

import pytest

from chalicelib.store import table
from tests.gateways.helpers import haproxy_check

BREED = {"name": "sava:1.0.0", "deployable": "magneticio/sava:1.0.0"}
EXT = "[127.0.0.1:8080]"

# 9 anchors of 9 aliases each: 9^9 = 387,420,489 strings once expanded (17 MB of response, 220 MB
# of memory before this fix).
ALIAS_BOMB = "\n".join(
    [f'a0: &a0 ["{"lol" * 3}", "{"lol" * 3}", "{"lol" * 3}", "{"lol" * 3}", "{"lol" * 3}"]']
    + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
) + "\n"


def everything() -> list:
    """Every item of the artifact table and of the events table."""
    events = table.client().get_paginator("scan").paginate(TableName=table.events_table_name())
    items = table.dump_items() + [item for page in events for item in page["Items"]]
    return sorted(json.dumps(item, sort_keys=True) for item in items)


def refused(r, status: int, field: str, reason: str) -> None:
    """`r` is a `status` whose errors hold `reason` at `field`."""
    assert r.status_code == status, r.body[:500]
    errors = r.json["errors"]
    assert any(e["path"] == field and reason in e["reason"] for e in errors), errors


@pytest.fixture()
def attack(api):
    """Send a hostile request: assert the 400 at `path` with `reason` in it, nothing written, and
    the server still serving (a valid write right after works)."""

    def send(method: str, path: str, body=None, *, field: str, reason: str, raw: str | None = None,
             content_type: str = "application/x-yaml"):
        before = everything()
        if raw is not None:
            r = api.request(method, path, yaml_body=raw, headers={"Content-Type": content_type})
        else:
            r = api.request(method, path, body)
        refused(r, 400, field, reason)
        assert len(r.body) < 10_000  # the refusal, not an echo of the expansion
        assert everything() == before
        ok = api.post("/api/v1/breeds", {**BREED, "name": f"alive-{len(before)}"})
        assert ok.status_code == 201, ok.body
        return r

    return send


# -- finding 7: bodies that killed the process ----------------------------------------------------

@pytest.mark.parametrize("raw, content_type", [
    ("[" * 40_000, "application/x-yaml"),  # libyaml's composer recursed in C: a segfault
    ("[" * 40_000 + "]" * 40_000, "application/x-yaml"),
    ("{a: " * 40_000, "text/plain"),  # sniffed bodies go through YAML too
    ("- " * 40_000 + "x", "application/x-yaml"),
    ("[" * 40_000 + "]" * 40_000, "application/json"),  # json's RecursionError was a 500
    ("[" * 1_000_000, "application/x-yaml"),  # the body size limit's worth (libyaml's scanner is quadratic in it)
], ids=["yaml-open", "yaml-closed", "sniffed-maps", "yaml-block", "json", "yaml-1mb"])
def test_deep_nesting_is_a_400(attack, raw, content_type):
    attack("POST", "/api/v1/breeds", raw=raw, content_type=content_type, field="body", reason="nested more than 64 levels")


def test_the_alias_bomb_is_a_400_not_17_mb(attack):
    assert len(ALIAS_BOMB) < 450
    attack("POST", "/api/v1/breeds", raw=ALIAS_BOMB, field="body", reason="aliases expand to more than")
    attack("POST", "/api/v1", raw=ALIAS_BOMB, field="body", reason="aliases expand to more than")  # the multi-document root


def test_an_alias_inside_its_own_anchor_is_a_400(attack):
    attack("POST", "/api/v1/breeds", raw="&a {name: x, deployable: *a}", field="body", reason="inside its own anchor")


def test_an_alias_deeper_than_the_limit_is_a_400(attack):
    deep = "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30
    attack("POST", "/api/v1/breeds", raw=deep, field="body", reason="nested more than 64 levels")


def test_too_many_values_is_a_400(attack):
    attack("POST", "/api/v1/events", raw="[" + "1," * 150_000 + "1]", content_type="application/json",
           field="body", reason="more than 100000 values")


@pytest.mark.parametrize("content_type", ["application/x-yaml", "application/json"])
def test_an_integer_of_5000_digits_is_a_400_not_a_500(attack, content_type):
    attack("POST", "/api/v1/scales", raw='{"name": "s", "cpu": 1, "memory": "1GB", "instances": ' + "1" * 5000 + "}",
           content_type=content_type, field="body", reason="4300 digits")


def test_aliases_within_the_budget_still_work(api):
    r = api.post("/api/v1/breeds", yaml_body="name: b:1\ndeployable: x/b:1\nenvironment_variables: &env {A: '1'}\n"
                 "constants: {<<: *env}\n")
    assert r.status_code == 201, r.body
    assert api.get("/api/v1/breeds/b:1").json["constants"] == {"A": "1"}


# -- finding 8: quadratic regexes (the work bound itself: tests/dsl/test_linear_regexes.py) --------

SPACES = " " * 40_000


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/gateways", {"name": "g", "port": "1" + SPACES + "x", "routes": {EXT: {}}}, "port"),
    ("/api/v1/breeds", {**BREED, "ports": {"web": "1" + SPACES + "x"}}, "ports.web"),
    ("/api/v1/scales", {"name": "s", "cpu": "1" + SPACES + "x", "memory": "1GB"}, "cpu"),
    ("/api/v1/scales", {"name": "s", "cpu": 1, "memory": "1" + SPACES + "x"}, "memory"),
    ("/api/v1/rewrites", {"name": "r", "path": "/a if true" + SPACES + "\x00"}, "path"),
    ("/api/v1/release-policies", {"name": "p", "steps": ["10%"], "metrics": {
        "latency": {"maximum": "1" + SPACES + "x"}}}, "metrics.latency.maximum"),
], ids=["gateway-port", "breed-port", "cpu", "memory", "rewrite", "latency"])
def test_the_slow_inputs_are_refused(attack, path, body, field):
    attack("POST", path, body, field=field, reason="invalid")


# -- finding 9: write amplification, missing bounds -----------------------------------------------

def test_an_event_of_401_tags_is_refused(attack):
    tags = [f"t{i}" for i in range(401)]  # a 3 KB POST that wrote 401 items
    assert len(json.dumps({"tags": tags})) < 3_500
    attack("POST", "/api/v1/events", {"tags": tags, "value": 1}, field="tags", reason="at most 16 tags")


def test_tags_of_more_than_1024_bytes_are_refused(attack):
    attack("POST", "/api/v1/events", {"tags": ["x" * 256] * 5, "value": 1}, field="tags", reason="1024 bytes")


def test_sixteen_tags_are_still_fine(api):
    r = api.post("/api/v1/events", {"tags": [f"t{i}:v" for i in range(16)], "value": 1})
    assert r.status_code == 201, r.body


def test_more_events_than_a_request_may_carry_are_refused(attack):
    attack("POST", "/api/v1/events", [{"tags": ["a"], "value": i} for i in range(1001)], field="body",
           reason="at most 1000 events per request")


def test_per_page_in_the_body_cannot_bypass_per_page_max(attack):
    attack("POST", "/api/v1/events/get", {"timestamp": {"per_page": 100_000_000}}, field="timestamp",
           reason="a map of gt, gte, lt, lte")
    attack("POST", "/api/v1/events/get", {"timestamp": {"page": 0}}, field="timestamp", reason="gt, gte")


@pytest.mark.parametrize("query, field", [("per_page=100000000", "per_page"), ("per_page=0", "per_page"),
                                          ("page=0", "page"), ("page=10000001", "page"), ("per_page=1e3", "per_page")])
def test_per_page_in_the_query_string_is_bounded(api, query, field):
    for path in ("/api/v1/events", "/api/v1/breeds", "/api/v1/deployments"):
        r = api.get(f"{path}?{query}")
        assert r.status_code == 400 and r.json["errors"][0]["path"] == field, (path, r.body)
    r = api.post(f"/api/v1/events/get?{query}", {"tags": ["a"]})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == field


def test_a_query_of_more_than_16_tags_is_refused(api):
    r = api.post("/api/v1/events/get", {"tags": [f"t{i}" for i in range(17)]})
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "tags"


@pytest.mark.parametrize("body, field, reason", [
    ({"name": "s", "cpu": 1, "memory": "1GB", "instances": 10**100}, "instances", "less than or equal to 10000"),
    ({"name": "s", "cpu": 1, "memory": "1GB", "instances": 10_001}, "instances", "10000"),
    ({"name": "s", "cpu": 1025, "memory": "1GB"}, "cpu", "more than 1024 cores"),
    ({"name": "s", "cpu": "2000000m", "memory": "1GB"}, "cpu", "more than 1024 cores"),
    ({"name": "s", "cpu": 1, "memory": "20000GB"}, "memory", "16 TiB"),
    ({"name": "s", "cpu": 1, "memory": 1e300}, "memory", "16 TiB"),
])
def test_scales_no_cluster_could_run_are_refused(attack, body, field, reason):
    attack("POST", "/api/v1/scales", body, field=field, reason=reason)


def test_a_blueprint_service_of_10_to_the_100_instances_is_refused(attack):
    blueprint = {"name": "bp", "clusters": {"web": {"services": [
        {"breed": BREED, "scale": {"cpu": 1, "memory": "1GB", "instances": 10**100}}]}}}
    attack("POST", "/api/v1/blueprints", blueprint, field="clusters.web.services[0].scale.instances", reason="10000")


@pytest.mark.parametrize("body, field", [
    ({"name": "e", "type": "scale_instances", "minimum": 1, "maximum": 10**9, "scale_by": 1}, "maximum"),
    ({"name": "e", "type": "scale_cpu", "minimum": 1, "maximum": 1e9, "scale_by": 1}, "maximum"),
    ({"name": "e", "type": "scale_memory", "minimum": "1MB", "maximum": "1MB", "scale_by": 1e12}, "scale_by"),
])
def test_escalations_beyond_any_cluster_are_refused(attack, body, field):
    attack("POST", "/api/v1/escalations", body, field=field, reason="at most")


@pytest.mark.parametrize("body, field, reason", [
    ({"name": "g", "port": 20001, "routes": {f"[127.0.0.1:{1000 + i}]": {"weight": "0%"} for i in range(65)}},
     "routes", "at most 64 routes"),
    ({"name": "g", "port": 20001, "routes": [f"[127.0.0.1:{1000 + i}]" for i in range(65)]}, "routes", "at most 64"),
    ({"name": "g", "port": 20001, "routes": {EXT: {}}, "virtual_hosts": [f"h{i}.example.com" for i in range(33)]},
     "virtual_hosts", "at most 32"),
    ({"name": "g", "port": 20001, "routes": {EXT: {"rewrites": ["/a if true"] * 17}}}, f"routes.{EXT}.rewrites",
     "at most 16"),
    ({"name": "g", "port": 20001, "routes": {EXT: {"condition": "has header X-" + "a" * 5000}}},
     f"routes.{EXT}.condition.condition", "longer than 4096"),
    ({"name": "g" * 256, "port": 20001, "routes": {EXT: {}}}, "name", "1..255 characters"),
])
def test_gateways_beyond_their_bounds_are_refused(attack, body, field, reason):
    attack("POST", "/api/v1/gateways", body, field=field, reason=reason)


def test_a_release_policy_of_17_webhooks_is_refused(attack):
    hooks = [{"name": f"h{i}", "type": "before_rollout", "url": "http://127.0.0.1:9/x"} for i in range(17)]
    attack("POST", "/api/v1/release-policies", {"name": "p", "steps": ["10%"], "webhooks": hooks},
           field="webhooks", reason="at most 16")


def test_a_document_larger_than_an_item_is_a_413_not_a_500(api):
    big = {"name": "big", "deployable": {"type": "command", "definition": "x" * 300_000}}
    before = everything()
    refused(api.post("/api/v1/breeds", big), 413, "", "bytes as stored, more than 262144")
    assert everything() == before


# -- finding 10: one gateway froze a namespace ----------------------------------------------------

BAD_BALANCES = [
    ("uri depth", "depth <n>"), ("uri len 0", "len <n>"), ("uri depth 3 depth 4", "given twice"),
    ("uri whole x", "not 'x'"), ("hdr()", "hdr(<argument>)"), ("hdr", "needs a header name"),
    ("random(0)", "random(<draws>)"), ("url_param", "needs a URL parameter name"),
    ("url_param id check_post 10", "not '10'"), ("roundrobin foo", "takes nothing after it"),
    ("rdp-cookie()", "rdp-cookie(<argument>)"), ("hash", "needs a sample expression"),
    ("hash req.hdr", "hash 'req.hdr'"), ("Roundrobin", "unknown algorithm"), ("static-rr(2)", "no parentheses"),
]


@pytest.mark.parametrize("balance, reason", BAD_BALANCES)
def test_a_balance_haproxy_would_refuse_is_a_400(attack, balance, reason):
    attack("POST", "/api/v1/gateways", {"name": "g", "port": 20001, "routes": {EXT: {"balance": balance}}},
           field=f"routes.{EXT}.balance", reason=reason)


def test_a_stored_route_with_a_bad_balance_is_a_400(attack):
    attack("POST", "/api/v1/routes", {"name": "r", "balance": "uri depth"}, field="balance", reason="depth <n>")


@pytest.mark.parametrize("balance", ["uri", "url_param id", "hdr(host)", "hash path", "hash req.cook(id)"])
def test_an_http_hash_on_a_tcp_gateway_is_a_400(attack, balance):
    attack("POST", "/api/v1/gateways", {"name": "g", "port": "20001/tcp", "routes": {EXT: {"balance": balance}}},
           field=f"routes.{EXT}.balance", reason="not on a /tcp port")


@pytest.mark.parametrize("port, reason", [
    (2379, "reserved"), (2380, "reserved"), (9180, "reserved"), (10250, "reserved"), (30080, "reserved"),
    (22, "outside the ports allowed"), (443, "outside the ports allowed"), (80, "virtual hosts port"),
])
def test_a_port_the_nodes_use_is_a_400(attack, port, reason):
    attack("POST", "/api/v1/gateways", {"name": "g", "port": port, "routes": {EXT: {}}}, field="port", reason=reason)


def test_a_blueprint_gateway_on_a_reserved_port_is_a_400(api):
    blueprint = {"name": "bp", "clusters": {"web": {"services": [{"breed": {**BREED, "ports": {"web": "8080/http"}}}]}},
                 "gateways": {"2379/http": "web/web"}}
    before = everything()
    r = api.post("/api/v1/deployments", blueprint)
    assert r.status_code == 400 and "reserved" in json.dumps(r.json), r.body
    assert everything() == before


def test_the_namespace_configuration_stays_valid(gw_api):
    """What froze a namespace: the bad gateway is refused, the good one published, and what the
    agents would apply passes `haproxy -c`."""
    ok = gw_api.post("/api/v1/gateways", {"name": "good", "port": 20002, "routes": {EXT: {"balance": "uri depth 2"}}})
    assert ok.status_code == 202, ok.body
    bad = gw_api.post("/api/v1/gateways", {"name": "bad", "port": 20003, "routes": {EXT: {"balance": "uri depth"}}})
    assert bad.status_code == 400
    text = gw_api.get("/api/v1/vga/haproxy/2.6/configuration", headers={"Accept": "text/plain"}).body.decode()
    assert "balance uri depth 2" in text and "bad" not in text
    valid, message = haproxy_check(text)
    assert valid, message


# -- the same through the local stack's HTTP server (chalice's, as `make run` serves it) ----------

@pytest.fixture()
def local_api(aws, tmp_path, monkeypatch):
    from local.stack import LocalStack, free_port

    monkeypatch.setenv("VAMP_GATEWAY_PORTS", "20000-24999")  # else the stack's default stays set
    stack = LocalStack(api_port=free_port(), state_dir=tmp_path, persist=False, quiet=True, gateways=False)
    stack.start()
    yield stack
    stack.stop()


@pytest.mark.parametrize("raw, content_type, reason", [
    ("[" * 40_000, "application/x-yaml", "nested more than 64 levels"),
    ("[" * 1_000_000, "application/x-yaml", "nested more than 64 levels"),
    ("[" * 40_000 + "]" * 40_000, "application/json", "nested more than 64 levels"),
    (ALIAS_BOMB, "application/x-yaml", "aliases expand to more than"),
], ids=["yaml-40k", "yaml-1mb", "json-40k", "alias-bomb"])
def test_the_http_server_refuses_and_keeps_serving(local_api, raw, content_type, reason):
    import requests

    auth = {"Authorization": f"Bearer {local_api.token}"}
    before = everything()
    r = requests.post(f"{local_api.api_url}/api/v1/breeds", data=raw.encode(), timeout=60,
                      headers={**auth, "Content-Type": content_type})
    assert r.status_code == 400 and len(r.content) < 10_000, r.text[:300]
    assert r.json()["errors"][0]["path"] == "body" and reason in r.json()["errors"][0]["reason"]
    assert everything() == before
    after = requests.post(f"{local_api.api_url}/api/v1/breeds", json=BREED, headers=auth, timeout=30)
    assert after.status_code == 201, after.text


def test_a_namespace_with_a_trailing_newline_is_refused(api):
    """`$` matches before a final newline: `re.match` took "default\\n" as a namespace of its own."""
    r = api.get("/default%0A/api/v1/breeds")
    assert r.status_code == 400 and r.json["errors"][0]["path"] == "namespace"
