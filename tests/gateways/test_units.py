"""Pure parts: weights, ports, the ACL compiler and its checks, the template filters."""
from __future__ import annotations

import itertools
import random

import pytest

from chalicelib.dsl import weights
from chalicelib.dsl.condition_grammar import parse_tree
from chalicelib.gateways import ports
from chalicelib.gateways.acl import Compiled, RenderError, check_new_path, check_raw
from chalicelib.settings import parse_port_range


@pytest.mark.parametrize("given, expected", [
    ([None, None, None], [33, 33, 34]),
    ([90, None], [90, 10]),
    ([None, 20, None], [40, 20, 40]),
    ([50, 50], [50, 50]),
    ([0, 0], [0, 0]),
    ([100, None], [100, 0]),
    ([], []),
])
def test_effective_weights(given, expected):
    assert weights.effective_weights(given) == expected


def test_effective_weights_agree_with_the_dsl():
    from chalicelib.dsl import fill_weights

    rng = random.Random(7)
    for _ in range(500):
        given = [rng.choice([None, rng.randint(0, 40)]) for _ in range(rng.randint(0, 5))]
        assert weights.effective_weights(given) == fill_weights(given)


def test_condition_strength_defaults():
    assert weights.condition_strength(None, True) == 100
    assert weights.condition_strength(None, False) == 0
    assert weights.condition_strength(30, True) == 30


def test_thresholds_give_each_route_exactly_its_share_of_100_draws():
    assert weights.thresholds([80, 20]) == [(0, 80), (1, 100)]
    assert weights.thresholds([0, 100]) == [(1, 100)]
    assert weights.thresholds([0, 0]) == []
    assert weights.thresholds([33, 0, 33, 34]) == [(0, 33), (2, 66), (3, 100)]


@pytest.mark.parametrize("raw, expected", [
    (9070, (9070, "http")), ("9070", (9070, "http")), ("9070/http", (9070, "http")),
    ("9023/tcp", (9023, "tcp")), (" 80 / TCP ", (80, "tcp")),
])
def test_parse_port(raw, expected):
    assert ports.parse_port(raw) == expected


@pytest.mark.parametrize("raw", ["0", "65536", "80/udp", "abc", "", None, True, "80\n"])
def test_parse_port_refuses(raw):
    with pytest.raises(ValueError):
        ports.parse_port(raw)


def test_port_range_and_choice():
    span = parse_port_range("40000-40009")
    assert list(span) == list(range(40000, 40010))
    for bad in ("", "5-1", "0-10", "1-70000", "a-b"):
        with pytest.raises(ValueError):
            parse_port_range(bad)
    rng = random.Random(1)
    used = set()
    for _ in range(10):
        port = ports.choose_free(span, used, rng)
        assert port in span and port not in used
        used.add(port)
    assert ports.choose_free(span, used, rng) is None


@pytest.mark.parametrize("condition, criteria, term", [
    ("user-agent == Firefox", ["req.fhdr(User-Agent) -m sub Firefox"], "vamp_a1"),
    ("user-agent = IE", ["req.fhdr(User-Agent) -m sub MSIE"], "vamp_a1"),
    ("user.agent != Safari", ["req.fhdr(User-Agent) -m sub Safari"], "!vamp_a1"),
    ("host == sava.example.com", ["req.hdr(host),field(1,:) -m str -i sava.example.com"], "vamp_a1"),
    ("host = sava.io:8080", ["req.hdr(host) -m str -i sava.io:8080"], "vamp_a1"),
    ("has cookie group", ["req.cook(group) -m found"], "vamp_a1"),
    ("misses cookie group", ["req.cook_cnt(group) eq 0"], "vamp_a1"),
    ("has header X-Canary", ["req.hdr_cnt(X-Canary) gt 0"], "vamp_a1"),
    ("misses header X-Canary", ["req.hdr_cnt(X-Canary) eq 0"], "vamp_a1"),
    ("cookie group has admin", ["req.cook(group) -m sub admin"], "vamp_a1"),
    ("header X-Version has v2", ["req.fhdr(X-Version) -m sub v2"], "vamp_a1"),
    ("< hdr(host) -m str -i example.com >", ["hdr(host) -m str -i example.com"], "vamp_a1"),
    ("true", [], "TRUE"),
    ("not false", [], "TRUE"),
    ("not has header A", ["req.hdr_cnt(A) gt 0"], "!vamp_a1"),
])
def test_predicates_compile_to_the_reference_table(condition, criteria, term):
    c = Compiled(itertools.count(1))
    assert c.term(parse_tree(condition)) == term
    assert [criterion for _, criterion in c.acls] == criteria
    assert c.rules == []


def test_and_or_trees_compile_to_variables_linearly():
    c = Compiled(itertools.count(1))
    term = c.term(parse_tree("has header A and (has cookie b or not user-agent == Chrome)"))
    assert [name for name, _ in c.acls] == ["vamp_a1", "vamp_a2", "vamp_a3", "vamp_a5", "vamp_a7"]
    assert c.rules == [("vamp_c4", "vamp_a2 or !vamp_a3"), ("vamp_c6", "vamp_a1 vamp_a5")]
    assert dict(c.acls)["vamp_a7"] == "var(txn.vamp_c6) -m bool"
    assert term == "vamp_a7"


def test_same_predicate_is_one_acl():
    c = Compiled(itertools.count(1))
    c.term(parse_tree("has header A or (has header A and has header B)"))
    assert [criterion for _, criterion in c.acls].count("req.hdr_cnt(A) gt 0") == 1


@pytest.mark.parametrize("raw", [
    "path_beg /api", "hdr(host) -m str -i example.com", "req.hdr_cnt(X-A) gt 0", "src 10.0.0.0/8",
    "url_param(id) -m found", "method GET POST", "req.hdr(host),lower -m end .example.com",
    "dst_port 80 8080:8090", "path -m beg /a /b", "req.cook(a) -m sub x",
])
def test_raw_acls_that_haproxy_accepts(raw):
    assert check_raw(raw) == raw


@pytest.mark.parametrize("raw", [
    "foo", "! hdr(host)", "hdr(host) -m reg .*", "src /api", "src 300.1.1.1", "req.hdr_cnt(A) gt x",
    "path_beg", "path_beg -m str /x", "url_param -m found", "hdr(a,b,c) x", "hdr(host),foo x",
    "path -m found x", "hdr(host) -f /etc/passwd", "method get", "path ||",
])
def test_raw_acls_refused(raw):
    with pytest.raises(RenderError):
        check_raw(raw)


@pytest.mark.parametrize("path, ok", [
    ("/v2/%[path]", True), ("/%[url_param(id)]/x", True), ("/%[hdr(host),lower]", True),
    ("/%[nope]", False), ("/%[path,regsub(a,b)]", False), ("/%[path(]", False),
])
def test_rewrite_paths(path, ok):
    if ok:
        assert check_new_path(path) == path
    else:
        with pytest.raises(RenderError):
            check_new_path(path)


@pytest.mark.parametrize("value", ["a\nb", "a#b", "a'b", 'a"b', "a\\b", "${X}", "a b", "", None, True])
def test_name_filter_refuses_what_could_break_a_line(value):
    from chalicelib.gateways.haproxy import FILTERS

    with pytest.raises(RenderError):
        FILTERS["ident"](value)


@pytest.mark.parametrize("value", ["x\nuse_backend evil", "a # comment", "a 'b'", "${HOME}", "a\\nb"])
def test_condition_and_format_filters_refuse_injection(value):
    from chalicelib.gateways.haproxy import FILTERS

    for name in ("cond", "fmt", "addr", "balance"):
        with pytest.raises(RenderError):
            FILTERS[name](value)


def test_a_template_value_without_a_filter_fails_the_render():
    from chalicelib.gateways.haproxy import environment

    with pytest.raises(RenderError):
        environment().from_string("bind {{ address }}").render(address="127.0.0.1")
