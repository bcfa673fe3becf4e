"""Rendering: golden-ish assertions on the configuration, and `haproxy -c` on every one."""
from __future__ import annotations

import pytest

from chalicelib.contract.log_format import GLOBAL_LOG_LINE, LOG_FORMAT_LINE
from chalicelib.gateways import haproxy, spec
from chalicelib.gateways.haproxy import Instance, Options, render
from tests.gateways.helpers import haproxy_check

CANONICAL = {
    "name": "sava", "kind": "gateways", "metadata": {}, "port": "9070/http",
    "service": {"host": "10.0.0.1", "port": "8080/http"}, "virtual_hosts": ["sava.example.com"],
    "routes": {
        "sava/sava/webport": {"weight": "90%", "condition_strength": "0%", "rewrites": []},
        "other": {"reference": "stored-route"},
        "[1.2.3.4:8080]": {"condition": {"condition": "has header X-Canary"}, "condition_strength": "50%",
                           "rewrites": [{"path": "/v2/%[path] if has header X-Canary"}], "balance": "leastconn"},
    },
    "deployed": False,
}
STORED = {("routes", "stored-route"): {"name": "stored-route", "kind": "routes", "metadata": {}, "weight": "5%"}}


def specs(*docs, stored=None):
    lookup = {**STORED, **(stored or {})}
    return spec.from_documents(list(docs), lambda k, n: lookup.get((k, n)))


def lines(text: str, section: str) -> list[str]:
    """The lines of one section (`frontend gw.sava`), stripped."""
    out, inside = [], False
    for line in text.splitlines():
        if line and not line.startswith(" "):
            inside = line == section
            continue
        if inside and line.strip():
            out.append(line.strip())
    return out


def test_canonical_gateway():
    r = render("default", specs(CANONICAL), Options(virtual_hosts_port=8081))
    ok, message = haproxy_check(r.text)
    assert ok, message
    assert r.checksum.startswith("sha256:") and r.problems == ()
    assert GLOBAL_LOG_LINE in r.text and LOG_FORMAT_LINE in r.text
    assert "option redispatch" in r.text and "retries 3" in r.text
    fe = lines(r.text, "frontend gw.sava")
    assert fe[:3] == ["bind 127.0.0.1:9070", "mode http", "acl vamp_a1 req.hdr_cnt(X-Canary) gt 0"]
    assert "http-request set-var(txn.vamp_w) rand(100)" in fe
    # the condition with its strength, before the weights
    ext = "rt.sava._5B1_2E2_2E3_2E4:8080_5D"
    assert fe[-4:] == [
        f"use_backend {ext} if vamp_a1 {{ rand(100) -m int lt 50 }}",
        "use_backend rt.sava.sava__sava__webport if { var(txn.vamp_w) -m int lt 90 }",
        "use_backend rt.sava.other if { var(txn.vamp_w) -m int lt 95 }",  # the stored route's 5%
        f"use_backend {ext} if {{ var(txn.vamp_w) -m int lt 100 }}",  # the unassigned rest: 5%
    ]
    be = lines(r.text, f"backend {ext}")
    assert "balance leastconn" in be
    assert "http-request set-path /v2/%[path] if vamp_a2" in be
    assert "server 1.2.3.4:8080 1.2.3.4:8080 weight 100 check" in be
    # a deployment route has no instances yet: a backend without servers
    assert not [x for x in lines(r.text, "backend rt.sava.sava__sava__webport") if x.startswith("server")]
    vh = lines(r.text, "frontend vh.virtual-hosts")
    assert "bind 127.0.0.1:8081" in vh
    assert "use_backend vh.sava if { var(txn.vamp_host) -m str sava.example.com }" in vh
    assert "use_backend vh.sava if { var(txn.vamp_host) -m str sava.vamp }" in vh  # automatic
    assert "server gateway 127.0.0.1:9070" in lines(r.text, "backend vh.sava")


def test_rendering_is_deterministic_and_ordered_by_name():
    b = {"name": "b", "port": 9001, "routes": {"[127.0.0.1:1]": {}}}
    a = {"name": "a", "port": 9002, "routes": {"[127.0.0.1:2]": {}}}
    one, two = render("ns", specs(b, a)), render("ns", specs(a, b))
    assert one.text == two.text and one.checksum == two.checksum
    assert one.text.index("frontend gw.a") < one.text.index("frontend gw.b")


def test_zero_weight_gets_no_traffic_and_all_zero_routes_nothing():
    r = render("ns", specs({"name": "g", "port": 9000, "routes": {"[127.0.0.1:1]": {"weight": "0%"},
                                                                   "[127.0.0.1:2]": {"weight": "100%"}}}))
    fe = lines(r.text, "frontend gw.g")
    assert fe[-1] == "use_backend rt.g._5B127_2E0_2E0_2E1:2_5D if { var(txn.vamp_w) -m int lt 100 }"
    assert not any("_5B127_2E0_2E0_2E1:1_5D" in x for x in fe)
    r = render("ns", specs({"name": "g", "port": 9000, "routes": {"[127.0.0.1:1]": {"weight": "0%"}}}))
    assert not any(x.startswith("use_backend") for x in lines(r.text, "frontend gw.g"))
    assert haproxy_check(r.text)[0]


def test_sticky_route_and_instance():
    r = render("ns", specs({"name": "g", "port": 9000, "sticky": "instance",
                            "routes": {"[127.0.0.1:1]": {"weight": "50%"}, "[127.0.0.1:2]": {"weight": "50%"}}}))
    ok, message = haproxy_check(r.text)
    assert ok, message
    fe = lines(r.text, "frontend gw.g")
    cookie = next(x for x in fe if x.startswith("http-request set-var(txn.vamp_sticky)")).split("req.cook(")[1][:-1]
    assert cookie.startswith("vamp_rt_")
    assert "use_backend rt.g._5B127_2E0_2E0_2E1:1_5D if { var(txn.vamp_sticky) -m str _5B127_2E0_2E0_2E1:1_5D }" in fe
    be = lines(r.text, "backend rt.g._5B127_2E0_2E0_2E1:1_5D")
    assert any(x.startswith("cookie vamp_in_") and x.endswith("insert indirect nocache") for x in be)
    assert any(x.startswith(f'http-response add-header Set-Cookie "{cookie}=') for x in be)
    assert "server 127.0.0.1:1 127.0.0.1:1 weight 100 check cookie r0s0" in be
    route_only = render("ns", specs({"name": "g", "port": 9000, "sticky": "route", "routes": {"[127.0.0.1:1]": {}}}))
    assert "insert indirect nocache" not in route_only.text and "vamp_sticky" in route_only.text


def test_tcp_gateway_chaining_and_cycles():
    docs = [
        {"name": "front", "port": "9000/tcp", "routes": {"back": {}}},
        {"name": "back", "port": 9001, "routes": {"[127.0.0.1:7000]": {}}},
        {"name": "loop1", "port": 9002, "routes": {"loop2": {}}},
        {"name": "loop2", "port": 9003, "routes": {"loop1": {}}},
        {"name": "nowhere", "port": 9004, "routes": {"missing": {}}},
    ]
    r = render("ns", specs(*docs))
    ok, message = haproxy_check(r.text)
    assert ok, message
    assert "mode tcp" in lines(r.text, "frontend gw.front")
    assert "balance leastconn" in lines(r.text, "backend rt.front.back")
    assert "server gw-back 127.0.0.1:9001 weight 100 check" in lines(r.text, "backend rt.front.back")
    for backend in ("rt.loop1.loop2", "rt.loop2.loop1", "rt.nowhere.missing"):  # no server: never a loop
        assert not [x for x in lines(r.text, f"backend {backend}") if x.startswith("server")]
    assert '"status":0' in r.text  # the TCP log format stands in for HTTP fields


def test_instances_extension_point_feeds_deployment_routes():
    def instances(gateway, route):
        return [Instance("sava_1", "10.0.0.5", 31001), Instance("sava_2", "10.0.0.6", 31002, weight=50)]

    r = render("ns", specs({"name": "g", "port": 9000, "routes": {"sava/sava/web": {}}}), Options(instances=instances))
    be = lines(r.text, "backend rt.g.sava__sava__web")
    assert be[-2:] == ["server sava_1 10.0.0.5:31001 weight 100 check", "server sava_2 10.0.0.6:31002 weight 50 check"]


def test_dns_names_resolve_at_runtime_and_bind_is_configurable():
    r = render("ns", specs({"name": "g", "port": 9000, "routes": {"[backend.example.com:80]": {}}}),
               Options(bind="0.0.0.0"))
    ok, message = haproxy_check(r.text)
    assert ok, message
    assert "resolvers vamp" in r.text
    assert "server backend.example.com:80 backend.example.com:80 weight 100 check resolvers vamp resolve-prefer ipv4" in r.text
    assert "bind 0.0.0.0:9000" in r.text


def test_one_bad_gateway_never_blocks_the_others():
    docs = [{"name": "a", "port": 9000, "routes": {"[127.0.0.1:1]": {}}},
            {"name": "b", "port": 9000, "routes": {"[127.0.0.1:2]": {}}},  # same port (legacy data)
            {"name": "c", "port": 9001, "routes": {"[127.0.0.1:3]": {"condition": "< nope >"}}}]
    r = render("ns", specs(*docs))
    assert "frontend gw.a" in r.text and "frontend gw.b" not in r.text and "frontend gw.c" not in r.text
    assert len(r.problems) == 2
    assert haproxy_check(r.text)[0]


def test_missing_references_degrade_safely():
    doc = {"name": "g", "port": 9000, "routes": {"[127.0.0.1:1]": {"condition": "gone", "rewrites": ["gone-too"]},
                                                 "r": {"reference": "no-such-route"}}}
    (g,) = specs(doc)
    assert g.routes[0].missing == ("conditions/gone", "rewrites/gone-too")
    r = render("ns", [g])
    assert "use_backend rt.g._5B127_2E0_2E0_2E1:1_5D if FALSE" in r.text
    assert haproxy_check(r.text)[0]


def test_virtual_host_forms():
    doc = {"name": "shop/9050", "port": 9000, "virtual_hosts": ["*.shop.io", "Shop.io:8080", "a.shop.io"],
           "routes": {"[127.0.0.1:1]": {}}}
    r = render("ns", specs(doc), Options(virtual_hosts_port=8081))
    vh = lines(r.text, "frontend vh.virtual-hosts")
    assert "use_backend vh.shop__9050 if { var(txn.vamp_host) -m end .shop.io }" in vh
    assert "use_backend vh.shop__9050 if { req.hdr(host),lower -m str shop.io:8080 }" in vh
    assert "use_backend vh.shop__9050 if { var(txn.vamp_host) -m str 9050.shop.vamp }" in vh
    assert haproxy_check(r.text)[0]
    with pytest.raises(haproxy.RenderError):
        haproxy.check_virtual_host("a*b.shop.io")
