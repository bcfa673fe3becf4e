from __future__ import annotations

import pytest

from chalicelib.dsl import Condition, ConditionRef, Gateway, Rewrite, RewriteRef, fill_weights, parse

from .helpers import errors_of, roundtrip


def test_gateway_roundtrip_and_canonical_form():
    dumped = roundtrip(
        "gateway",
        {
            "name": "sava",
            "port": 9070,
            "sticky": "none",
            "virtual_hosts": "sava.example.com",
            "service": {"host": "10.0.0.1", "port": 8080},
            "routes": {
                "sava/sava/webport": {"weight": "90%"},
                "other": {"ref": "stored-route"},
                "[1.2.3.4:8080]": {
                    "condition": "has header X-Canary",
                    "condition_strength": "50%",
                    "rewrites": {"path": "/v2/%[path] if has header X-Canary"},
                    "balance": "leastconn",
                },
            },
        },
    )
    assert dumped == {
        "name": "sava",
        "kind": "gateways",
        "metadata": {},
        "port": "9070/http",
        "service": {"host": "10.0.0.1", "port": "8080/http"},
        "virtual_hosts": ["sava.example.com"],
        "routes": {
            "sava/sava/webport": {"weight": "90%", "condition_strength": "0%", "rewrites": []},
            "other": {"reference": "stored-route"},
            "[1.2.3.4:8080]": {
                "condition": {"condition": "has header X-Canary"},
                "condition_strength": "50%",
                "rewrites": [{"path": "/v2/%[path] if has header X-Canary"}],
                "balance": "leastconn",
            },
        },
        "deployed": False,
    }


def test_gateway_port_may_be_left_out_and_names_have_1_to_4_segments():
    assert parse("gateway", {"name": "a/b/c/d"}).port is None
    assert parse("gateway", {"name": "d/c/p"}).internal
    assert errors_of("gateway", {"name": "a/b/c/d/e"}) == [
        ("name", "invalid gateway name 'a/b/c/d/e': 1 to 4 segments separated by `/`")
    ]


@pytest.mark.parametrize(
    "weights, filled",
    [
        ([None], [100]), ([None, None, None], [33, 33, 34]), ([50, None], [50, 50]), ([90, 10], [90, 10]),
        ([], []), ([0, None, None], [0, 50, 50]), ([100, None], [100, 0]),
    ],
)
def test_fill_weights(weights, filled):
    assert fill_weights(weights) == filled


@pytest.mark.parametrize(
    "routes",
    [{}, {"a": {}}, {"a": {}, "b": {}, "c": {}}, {"a": {"weight": "0%"}, "b": {"weight": "0%"}},
     {"a": {"weight": "30%"}, "b": {}}, {"a": {"weight": "100%"}, "b": {"weight": "0%"}}],
)
def test_standalone_weights_accepted(routes):
    assert parse("gateway", {"name": "g", "routes": routes}).name == "g"


@pytest.mark.parametrize(
    "routes, reason",
    [
        ({"a": {"weight": "30%"}}, "route weights sum to 30%; they must sum to 0% or 100%"),
        ({"a": {"weight": "60%"}, "b": {"weight": "50%"}, "c": {}}, "route weights sum to 110%, more than 100%"),
    ],
)
def test_standalone_weights_rejected(routes, reason):
    assert errors_of("gateway", {"name": "g", "routes": routes}) == [("routes", reason)]


def test_tcp_gateways_refuse_http_features():
    doc = {"name": "g", "port": "9023/tcp", "sticky": "route",
           "routes": {"a": {"condition": "has cookie x", "rewrites": ["/x if true"]}}}
    assert errors_of("gateway", doc) == [
        ("sticky", "sticky is only for /http ports"),
        ("routes.a.condition", "conditions are only for /http ports"),
        ("routes.a.rewrites", "rewrites are only for /http ports"),
    ]


@pytest.mark.parametrize(
    "key", ["a b", "a/b/c/d/e", "[host]", "[ho st:80]", "[host:99999]", "[a#b:80]", "x#y"]
)
def test_route_keys_rejected(key):
    assert [p for p, _ in errors_of("gateway", {"name": "g", "routes": {key: {}}})] == [f"routes.{key}"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("virtual_hosts", "evil.com\nbind :80"), ("virtual_hosts", "a b"), ("virtual_hosts", "a#b"),
        ("selector", "label(x)\n#"), ("selector", "x'y"), ("service", {"host": "h;rm", "port": 80}),
        ("port", "80\n"), ("sticky", "cookie"),
    ],
)
def test_hostile_gateway_fields(field, value):
    assert [p.split(".")[0].split("[")[0] for p in (e for e, _ in errors_of("gateway", {"name": "g", field: value}))] == [field]


@pytest.mark.parametrize(
    "balance", ["roundrobin\nbind :1", "leastconn # x", "source'", "hdr(a b)", "evil"]
)
def test_hostile_balance(balance):
    assert [p for p, _ in errors_of("route", {"name": "r", "balance": balance})] == ["balance"]


def test_route_defaults_and_forms():
    assert roundtrip("route", {"name": "r"}) == {
        "name": "r", "kind": "routes", "metadata": {}, "condition_strength": "0%", "rewrites": []
    }
    route = parse("route", {"name": "r", "weight": 25, "condition": "has cookie x", "rewrites": "stored-rewrite"})
    assert route.condition_strength == 100
    assert route.rewrites == [RewriteRef(reference="stored-rewrite")]
    assert parse("route", {"name": "r", "condition": "stored-condition"}).condition == ConditionRef(reference="stored-condition")
    assert parse("route", {"name": "r", "condition": {"ref": "c"}}).condition == ConditionRef(reference="c")
    assert parse("route", {"name": "r", "condition": {"condition": "true"}}).condition == Condition(condition="true")
    assert isinstance(parse("route", {"name": "r", "condition": "true"}).condition, Condition)


def test_condition_artifact():
    assert roundtrip("condition", {"name": "ff", "condition": " user-agent == Firefox "}) == {
        "name": "ff", "kind": "conditions", "metadata": {}, "condition": "user-agent == Firefox"
    }
    assert parse("conditions", {"name": "c", "condition": "has cookie a"}).tree.name == "a"
    assert errors_of("condition", {"name": "c", "condition": "has cookie"}) == [
        ("condition", "expected a cookie or header name, found the end at position 11")
    ]


def test_rewrite_artifact():
    rewrite = parse("rewrite", {"name": "r", "path": "/api/%[path] if has header X"})
    assert isinstance(rewrite, Rewrite)
    assert rewrite.new_path == "/api/%[path]"
    assert roundtrip("rewrite", {"name": "r", "path": "/b IF host == b"})["path"] == "/b IF host == b"


@pytest.mark.parametrize(
    "path",
    [
        "/new",  # no condition
        "/a if",  # no condition
        "-new if true",  # HAProxy could read a flag
        "/a\nhttp-request deny if true",
        "/a#b if true",
        "/a'b if true",
        '/a"b if true',
        "/a\\b if true",
        "/a{b} if true",
        "/%[src,lua.evil('x')] if true",
        "/%[a b] if true",
        "/%x if true",
        "/a if user-agent == 'x'",
        "/a if < -f /etc/passwd >",
    ],
)
def test_hostile_or_invalid_rewrites(path):
    assert [p for p, _ in errors_of("rewrite", {"name": "r", "path": path})] == ["path"]


def test_gateway_model_is_exposed():
    assert isinstance(parse("gateways", {"name": "g"}), Gateway)


INJECTIONS = ["\n", "\r", "#", "'", '"', "\\", "}", "{", "\x00", "%[", "$"]


@pytest.mark.parametrize("bad", INJECTIONS)
def test_injection_through_every_text_field_is_refused(bad):
    assert errors_of("route", {"name": "r", "condition": f"user-agent == a{bad}b"})
    assert errors_of("route", {"name": "r", "condition": f"has header X{bad}Y"})
    assert errors_of("route", {"name": "r", "rewrites": [f"/a{bad}b if true"]})
    assert errors_of("route", {"name": "r", "condition": f"< hdr(host) a{bad}b >"})
    assert errors_of("gateway", {"name": f"g{bad}"}) if bad not in ("%[", "$") else True
    assert errors_of("gateway", {"name": "g", "virtual_hosts": [f"a{bad}.com"]})
    assert errors_of("blueprint", {"name": "b", "clusters": {f"c{bad}": "x"}}) if bad not in ("%[", "$") else True


@pytest.mark.parametrize("raw", ["-f /etc/passwd", "hdr(host) -f /etc/passwd", "hdr(host) -M /m", "src -u 1 x"])
def test_file_loading_flags_refused_in_stored_conditions(raw):
    assert errors_of("condition", {"name": "c", "condition": f"< {raw} >"}) == [
        ("condition", "a raw ACL may not use the -f, -M or -u flags at position 1")
    ]
